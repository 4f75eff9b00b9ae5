"""CPU proxies of what a GPU pays for: host reads and blocking copies, and ops per call.

On CPU tensors, ``online_gmm.core.use_backend("reference")`` runs exactly the Python and the
aten ops a CUDA tensor runs (the numba backend is not used), so what is counted here is what
a CUDA call does:

- ``aten._local_scalar_dense`` (``.item()``, ``int()``, ``float()``, ``bool()`` of a tensor),
  ``aten.nonzero`` (boolean indexing), ``aten.is_nonzero``, ``aten.equal``: each a
  device-to-host read, i.e. a synchronisation on a GPU (caught by a ``TorchDispatchMode``);
- ``Tensor.tolist``, ``Tensor.numpy``, ``Tensor.cpu``: reads too (caught by a
  ``TorchFunctionMode``: ``tolist`` reaches no aten op);
- ``torch.tensor``/``as_tensor``/``asarray``/``from_numpy`` of host data: on a GPU a
  host-to-device copy (a blocking one from pageable memory).

:class:`PeakStorage` measures the memory a call holds at its peak the same way: the bytes
of the storages its ops create that are alive at once (what ``torch.cuda.max_memory_allocated``
counts on a GPU, less the allocator's rounding), exactly, whatever the machine.
"""

from __future__ import annotations

import collections
import traceback
import weakref

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

SYNC_OPS = {"aten._local_scalar_dense.default", "aten.nonzero.default",
            "aten.is_nonzero.default", "aten.equal.default"}
READS = {"tolist", "numpy", "cpu"}
CREATORS = {"tensor", "as_tensor", "asarray", "from_numpy"}


def _site() -> str:
    for frame in reversed(traceback.extract_stack()):
        if ("online_gmm" in frame.filename or "ssl_bridge" in frame.filename) and (
                "site-packages" not in frame.filename):
            return f"{frame.filename.rsplit('/', 2)[-2]}/{frame.filename.rsplit('/', 1)[-1]}" \
                   f":{frame.lineno}"
    return "?"


class _Dispatch(TorchDispatchMode):
    def __init__(self, counts: collections.Counter) -> None:
        super().__init__()
        self.counts = counts
        self.ops = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops += 1
        if str(func) in SYNC_OPS:
            self.counts[(str(func), _site())] += 1
        return func(*args, **(kwargs or {}))


class _Function(TorchFunctionMode):
    def __init__(self, counts: collections.Counter) -> None:
        super().__init__()
        self.counts = counts

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        if name in READS or (name in CREATORS and args
                             and not isinstance(args[0], torch.Tensor)):
            self.counts[(name, _site())] += 1
        return func(*args, **(kwargs or {}))


class DeviceCalls:
    """Context manager: ``syncs`` (Counter of ``(what, where)`` host reads and copies) and
    ``ops`` (aten ops dispatched) of the calls inside it."""

    def __enter__(self) -> DeviceCalls:
        self.syncs: collections.Counter = collections.Counter()
        self._function = _Function(self.syncs)
        self._dispatch = _Dispatch(self.syncs)
        self._function.__enter__()
        self._dispatch.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._dispatch.__exit__(*exc)
        self._function.__exit__(*exc)

    @property
    def n_syncs(self) -> int:
        return sum(self.syncs.values())

    @property
    def ops(self) -> int:
        return self._dispatch.ops


class PeakStorage(TorchDispatchMode):
    """Context manager: ``peak`` (bytes), the most storage held at once by the tensors the
    ops inside it created (a storage counted once, freed when its last tensor goes)."""

    def __enter__(self) -> PeakStorage:
        self.live: dict[int, int] = {}
        self.current = 0
        self.peak = 0
        return super().__enter__()

    def _free(self, key: int) -> None:
        self.current -= self.live.pop(key, 0)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in (out if isinstance(out, (tuple, list)) else (out,)):
            if not isinstance(t, torch.Tensor):
                continue
            storage = t.untyped_storage()
            key, n = storage.data_ptr(), storage.nbytes()
            if n == 0 or key in self.live:
                continue
            self.live[key] = n
            self.current += n
            self.peak = max(self.peak, self.current)
            weakref.finalize(storage, self._free, key)
        return out
