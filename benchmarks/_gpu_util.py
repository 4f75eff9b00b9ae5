"""Pieces shared by the sections of ``python -m benchmarks.gpu``: the time budget, device
synchronisation, the switch to the generic (array-API) path, and relative differences."""

from __future__ import annotations

import contextlib
import math
import platform
import time
from collections.abc import Iterator
from typing import Any


class Budget:
    """The whole run's wall-clock allowance: sections ask :meth:`left` before more work, and
    timing loops stop adding repetitions once :meth:`expired` (keeping what they have)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = float(seconds)
        self.t0 = time.perf_counter()
        self.hit = False  # set when some loop stopped early because of the budget

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def left(self) -> float:
        return self.seconds - self.elapsed()

    def expired(self, reserve: float = 0.0) -> bool:
        """Whether less than ``reserve`` seconds are left (recorded in :attr:`hit`)."""
        if self.left() <= reserve:
            self.hit = True
            return True
        return False


def synchronize(device: Any) -> None:
    """Wait for the device's queued work (a no-op on CPU)."""
    import torch

    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


@contextlib.contextmanager
def generic_path() -> Iterator[None]:
    """Run CPU tensors through the reference (array-API) backend, the code CUDA runs,
    rather than the numba backend: the one switch the smoke mode's "device" side uses."""
    from online_gmm.core import use_backend

    with use_backend("reference"):
        yield


@contextlib.contextmanager
def matmul_precision(tf32: bool) -> Iterator[None]:
    """float32 products in TF32 (``tf32=True``) or in full float32, restored on exit."""
    import torch

    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
             torch.get_float32_matmul_precision())
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    torch.set_float32_matmul_precision("high" if tf32 else "highest")
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved[:2]
        torch.set_float32_matmul_precision(saved[2])


def rel_diff(value: Any, reference: Any) -> float:
    """``max |value - reference| / max |reference|`` (float64; 0 when both are all zero):
    the largest difference, relative to the reference's largest entry."""
    import torch

    v = value.detach().to("cpu", torch.float64)
    r = reference.detach().to("cpu", torch.float64)
    num = float((v - r).abs().max()) if r.numel() else 0.0
    den = float(r.abs().max()) if r.numel() else 0.0
    if den == 0.0:
        return 0.0 if num == 0.0 else math.inf
    return num / den


def device_info(device: str) -> dict[str, Any]:
    """Device name, torch and CUDA versions (what the report's head shows)."""
    import torch

    from ._machine import _cpu_model

    out: dict[str, Any] = {
        "device": device,
        "torch": torch.__version__,
        "cuda_runtime": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "cuda_available": torch.cuda.is_available(),
        "cpu": _cpu_model(),
        "platform": platform.platform(),
        "name": None,
        "capability": None,
        "memory_gib": None,
        "torch_threads": torch.get_num_threads(),
    }
    if torch.device(device).type == "cuda":
        props = torch.cuda.get_device_properties(device)
        out.update(
            name=props.name,
            capability=f"{props.major}.{props.minor}",
            memory_gib=round(props.total_memory / 2**30, 1),
            multiprocessors=props.multi_processor_count,
        )
    else:
        out["name"] = f"CPU: {out['cpu']}"
    return out

