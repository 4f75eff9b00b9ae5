"""Section "syncs" of ``python -m benchmarks.gpu``: where ``GMMPrototypes.update`` (and
``targets``) make the host wait for the device.

Two counts over one steady-state call (every prototype seeded):

- ``host_reads``: every call that brings tensor data to the host (``int()``, ``float()``,
  ``bool()``, ``.item()``, ``.cpu()``, ``.numpy()``, ``.tolist()``, ``.to("cpu")``, a copy
  to a CPU tensor), caught by a ``TorchFunctionMode`` and attributed to the innermost line
  of ``online_gmm/`` or ``ssl_bridge/``; and host-to-device copies (on CUDA only: on CPU
  there is no device to copy to). On CUDA each read is a synchronisation; on CPU (smoke
  mode, the generic path) the same calls are counted as the proxy of the syncs CUDA would
  make. The update's one read of its fused flags (bad rows, a non-finite state, whether
  the next step seeds: ``flags.tolist()``) is the one allowed.
- the same ``update`` with the checks off (``nonfinite="ignore"``): none allowed (its
  seeding flag is a non-blocking copy, read at the next call).
- ``profiler``: on CUDA, ``torch.profiler`` event counts (``cudaStreamSynchronize``,
  ``cudaDeviceSynchronize``, ``cudaMemcpy*``, ``Memcpy DtoH``/``HtoD``,
  ``aten::_local_scalar_dense``) of the call, less those of an empty profiled region; on CPU
  ``aten::_local_scalar_dense`` only.
"""

from __future__ import annotations

import collections
import contextlib
import copy
import linecache
import traceback
import weakref
from pathlib import Path
from typing import Any

from ._common import REPO_ROOT
from ._gpu_util import generic_path, matmul_precision, synchronize

_READS = {"__bool__", "__int__", "__float__", "__index__", "item", "tolist", "numpy",
          "__array__", "cpu"}
_CREATORS = {"asarray", "tensor", "as_tensor"}
_PACKAGES = (REPO_ROOT / "online_gmm", REPO_ROOT / "ssl_bridge")
_POLICY_MARK = "flags.tolist()"  # the update's one fused read (ssl_bridge/_update_paths.py)


def _device_type(x: Any) -> str | None:
    import torch

    if isinstance(x, torch.Tensor):
        return x.device.type
    if isinstance(x, torch.device):
        return x.type
    if isinstance(x, str):
        try:
            return torch.device(x).type
        except RuntimeError:
            return None
    return None


def _site() -> str:
    """``path:line`` of the innermost frame in the packages, and of its caller there when
    the innermost is a helper of ``online_gmm/_math/array_api.py`` (``a <- b``)."""
    found = []
    for frame in reversed(traceback.extract_stack()):
        path = Path(frame.filename).resolve()
        if any(pkg in path.parents for pkg in _PACKAGES):
            found.append(f"{path.relative_to(REPO_ROOT)}:{frame.lineno}")
            if not found[0].startswith("online_gmm/_math/array_api.py") or len(found) == 2:
                break
    return " <- ".join(found) or "(outside the packages)"


def _classify(name: str, args: tuple, kwargs: dict, on_cpu: bool, host: Any) -> str | None:
    """"d2h", "h2d" or None for one torch call; ``host``: the tensors already brought to the
    host (reads of those are not transfers, on CPU as on CUDA)."""
    import torch

    first = args[0] if args else None
    if not isinstance(first, torch.Tensor) and name not in _CREATORS:
        return None
    if name in _READS:
        if host.get(id(first)) is first:
            return None
        return "d2h" if on_cpu or first.device.type != "cpu" else None
    if name in ("to", "cuda"):
        target = kwargs.get("device")
        for a in args[1:]:
            target = target or (a if _device_type(a) is not None else None)
        if name == "cuda":
            target = "cuda"
        tgt = _device_type(target) if target is not None else None
        if tgt == "cpu" and (on_cpu or first.device.type != "cpu"):
            return "d2h"
        if tgt not in (None, "cpu") and first.device.type == "cpu":
            return "h2d"
        return None
    if name == "copy_" and len(args) > 1 and isinstance(args[1], torch.Tensor):
        dst, src = first.device.type, args[1].device.type
        if dst == "cpu" and src != "cpu":
            return "d2h"
        if src == "cpu" and dst != "cpu":
            return "h2d"
        return None
    if name in _CREATORS:
        tgt = _device_type(kwargs.get("device"))
        src = _device_type(first)
        if tgt not in (None, "cpu") and src in (None, "cpu"):
            return "h2d"
    return None


def _counter_mode(on_cpu: bool):
    import torch
    from torch.overrides import TorchFunctionMode

    class Transfers(TorchFunctionMode):
        def __init__(self) -> None:
            super().__init__()
            self.sites: collections.Counter = collections.Counter()
            self.host: weakref.WeakValueDictionary = weakref.WeakValueDictionary()

        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            name = getattr(func, "__name__", "")
            kind = _classify(name, args, kwargs, on_cpu, self.host)
            if kind is not None:
                self.sites[(kind, _site())] += 1
            out = func(*args, **kwargs)
            if kind == "d2h" and name in ("cpu", "to") and isinstance(out, torch.Tensor):
                self.host[id(out)] = out
            return out

    return Transfers()


def _profile_counts(fn, device: str) -> dict[str, int]:
    import torch
    from torch.profiler import ProfilerActivity, profile

    acts = [ProfilerActivity.CPU]
    if torch.device(device).type == "cuda":
        acts.append(ProfilerActivity.CUDA)

    def counts(body) -> collections.Counter:
        synchronize(device)
        with profile(activities=acts) as prof:
            body()
        out: collections.Counter = collections.Counter()
        for evt in prof.key_averages():
            key = evt.key
            if (key == "aten::_local_scalar_dense" or key.startswith("Memcpy")
                    or (key.startswith("cuda") and ("Synchronize" in key or "Memcpy" in key))):
                out[key] += evt.count
        return out

    empty = counts(lambda: None)
    used = counts(fn)
    return {k: v - empty.get(k, 0) for k, v in sorted(used.items()) if v - empty.get(k, 0)}


def _report(mode, on_cpu: bool) -> dict[str, Any]:
    sites = []
    for (kind, site), n in sorted(mode.sites.items(), key=lambda kv: kv[0][1]):
        path, _, line = site.split(" <- ")[-1].partition(":")
        text = linecache.getline(str(REPO_ROOT / path), int(line)).strip() if line else ""
        policy = kind == "d2h" and path.startswith("ssl_bridge/") and _POLICY_MARK in text
        sites.append({"kind": kind, "site": site, "count": n, "code": text,
                      "nonfinite_policy": policy})
    d2h = sum(s["count"] for s in sites if s["kind"] == "d2h")
    allowed = sum(s["count"] for s in sites if s["nonfinite_policy"])
    return {
        "host_reads": d2h,
        "host_reads_beyond_policy": d2h - allowed,
        "host_to_device": None if on_cpu else sum(
            s["count"] for s in sites if s["kind"] == "h2d"),
        "sites": sites,
    }


def run(*, K: int, D: int, B: int, device: str, seed: int = 0) -> dict[str, Any]:
    """Count the transfers of one ``update`` and one ``targets`` call on a seeded head."""
    from ssl_bridge import GMMPrototypes

    from ._gpu_timing import TARGETS_TEMPERATURE, teacher_pool

    on_cpu = device == "cpu"
    pool = teacher_pool(K, D, B, -(-K // B) + 3, device, seed)
    path = generic_path() if on_cpu else contextlib.nullcontext()
    out: dict[str, Any] = {"K": K, "D": D, "B": B, "path": (
        "generic array-API path on CPU tensors (proxy: what CUDA would synchronise on)"
        if on_cpu else f"{device}")}
    with path, matmul_precision(tf32=False):
        # (no warm-up: the steady step after the seeding, what a long run does)
        head = GMMPrototypes(K, D, warmup_size=0).to(device)
        for t, _ in pool[:-2]:
            head.update(t)
        probe, _ = pool[-1]
        unchecked = copy.deepcopy(head)  # (the checks off: nonfinite="ignore")
        unchecked.nonfinite = "ignore"
        unchecked.update(pool[-3][0])  # (a copy reads its buffers at its first update)
        calls = {"update": lambda: head.update(pool[-2][0]),
                 "targets": lambda: head.targets(probe, temperature=TARGETS_TEMPERATURE),
                 "update_unchecked": lambda: unchecked.update(pool[-2][0])}
        for name, call in calls.items():
            mode = _counter_mode(on_cpu)
            with mode:
                call()
            out[name] = _report(mode, on_cpu)
        try:
            out["profiler"] = {
                "update": _profile_counts(lambda: head.update(probe), device),
                "update_unchecked": _profile_counts(lambda: unchecked.update(probe), device)}
        except Exception as exc:  # no CUPTI, say: the host reads above still stand
            out["profiler"] = {"update": {}, "error": f"{type(exc).__name__}: {exc}"[:500]}
        out["seeded_all"] = bool(head.seeded.all())
    out["target"] = ("update: one host read (its fused flags), none beyond; "
                     "nonfinite='ignore': none")
    out["met"] = (out["update"]["host_reads_beyond_policy"] == 0
                  and out["update_unchecked"]["host_reads"] == 0)
    return out
