"""Study: one steady ``GMMPrototypes.update`` on the CUDA code path, run on CPU tensors
(the reference backend: the Python and the aten ops a CUDA tensor runs), for ``spherical``
and ``diag``: its time (median of ``--repeats``) and the aten ops it dispatches, in all and
the in-place adds among them (on a GPU each op is a kernel launch), also as a CUDA tensor
dispatches them (a mixed-dtype add in one op, not in the CPU's row blocks). The state is built
directly (``benchmarks._gpu_memory``), as the memory section of ``benchmarks.gpu`` does.

Usage::

    python -m benchmarks.device_path_step [--K 16384] [--D 256] [--B 4096] [--repeats 5]
    python -m benchmarks.device_path_step --smoke     # small and quick (the test's)

To compare two trees, run this file (by its path) with the other tree on ``PYTHONPATH``.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

TYPES = ("spherical", "diag")


def measure(K: int, D: int, B: int, covariance_type: str, repeats: int) -> dict[str, Any]:
    """``{"ms": median update time, "ops": aten ops of one update, "adds": in-place adds}``."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    from benchmarks._gpu_memory import _state_dict
    from benchmarks._gpu_util import generic_path
    from ssl_bridge import GMMPrototypes

    class Ops(TorchDispatchMode):
        def __init__(self) -> None:
            super().__init__()
            self.names: Counter = Counter()

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.names[func.overloadpacket.__name__] += 1
            return func(*args, **(kwargs or {}))

    head = GMMPrototypes(K, D, covariance_type=covariance_type, warmup_size=0)
    head.load_state_dict(_state_dict(K, D, covariance_type), strict=False)
    g = torch.Generator().manual_seed(0)
    x = torch.nn.functional.normalize(torch.randn(B, D, generator=g), dim=1)
    with generic_path():
        head.update(x)  # (untimed: the first steady step)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            head.update(x)
            times.append(time.perf_counter() - t0)
        with Ops() as ops:
            head.update(x)
        # the ops as a CUDA tensor dispatches them: its kernels cast an operand of another
        # dtype as they read, so a mixed-dtype add is not split in row blocks there
        with _as_on_an_accelerator(), Ops() as cuda_ops:
            head.update(x)
    return {"ms": 1000 * statistics.median(times), "ops": sum(ops.names.values()),
            "adds": ops.names["add_"], "ops_cuda": sum(cuda_ops.names.values()),
            "adds_cuda": cuda_ops.names["add_"]}


@contextlib.contextmanager
def _as_on_an_accelerator() -> Iterator[None]:
    """The E-step's device test answering "an accelerator" (its one CPU-only branch; a tree
    without it splits its adds on every device, and counts the same)."""
    from online_gmm._math import estep

    real = getattr(estep, "_on_accelerator", None)
    estep._on_accelerator = lambda x: True
    try:
        yield
    finally:
        if real is None:
            del estep._on_accelerator
        else:
            estep._on_accelerator = real


def main(argv: list[str] | None = None) -> dict[str, dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--K", type=int, default=16_384)
    parser.add_argument("--D", type=int, default=256)
    parser.add_argument("--B", type=int, default=4_096)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--smoke", action="store_true", help="K = 256, D = 32, B = 128")
    args = parser.parse_args(argv)
    if args.smoke:
        args.K, args.D, args.B, args.repeats = 256, 32, 128, 2
    out = {ct: measure(args.K, args.D, args.B, ct, args.repeats) for ct in TYPES}
    print(f"One steady update on the CUDA code path (CPU tensors), K = {args.K:,}, "
          f"D = {args.D}, B = {args.B:,}, median of {args.repeats}:")
    for ct, r in out.items():
        print(f"  {ct:9s} {r['ms']:8.1f} ms  {r['ops']:6d} aten ops, {r['adds']:5d} in-place adds"
              f"  (as on CUDA: {r['ops_cuda']:6d} ops, {r['adds_cuda']:5d} adds)")
    return out


if __name__ == "__main__":
    main()
