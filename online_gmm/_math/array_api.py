"""Array-namespace helpers: namespaces, devices, host copies, index arrays, log-sum-exp,
chunk sizes and the one-BLAS-thread context.

The mixture math is written once against the array API standard (``xp``); which backend runs
it is chosen in :mod:`online_gmm._backends`.
"""

from __future__ import annotations

import math
from typing import Any

import array_api_compat
import numpy as np


def input_namespace(X: Any) -> Any:
    """The namespace input is validated in: its own when scikit-learn's
    ``array_api_dispatch`` is on (as scikit-learn's estimators do), else NumPy."""
    from sklearn import get_config

    if get_config()["array_api_dispatch"]:
        try:
            return array_api_compat.array_namespace(X)
        except TypeError:
            pass
    return np


def device(x: Any) -> Any:
    return array_api_compat.device(x)


def to_numpy(x: Any) -> np.ndarray:
    """Copy an array of any namespace to host NumPy (small arrays only on hot paths)."""
    if isinstance(x, np.ndarray):
        return x
    if array_api_compat.is_torch_array(x):
        return x.detach().cpu().numpy()
    if array_api_compat.is_cupy_array(x):
        return x.get()
    try:
        return np.asarray(x)
    except Exception:  # array-api-strict refuses __array__ in recent versions
        return np.from_dlpack(x)


def asarray_like(a: Any, like: Any, xp: Any, dtype: Any = None) -> Any:
    """Put host data ``a`` into the namespace and on the device of ``like`` (an array of
    that namespace already, e.g. draws made on the device, is only cast and moved)."""
    dtype = like.dtype if dtype is None else dtype
    if array_api_compat.is_numpy_namespace(xp):
        return np.asarray(a, dtype=dtype)
    if not isinstance(a, np.ndarray) and array_api_compat.is_array_api_obj(a):
        return xp.asarray(a, dtype=dtype, device=device(like))
    return xp.asarray(np.ascontiguousarray(a), dtype=dtype, device=device(like))


#: NumPy's float dtypes by name (``dtype.name`` is a slow property: a hot path compares
#: dtypes instead).
_NUMPY_FLOATS = {"float32": np.dtype(np.float32), "float64": np.dtype(np.float64)}


def astype_all(arrays: dict, dtype_name: str | None) -> dict:
    """``arrays`` (a dict of fitted attributes) with each floating array cast to the
    floating dtype ``dtype_name`` ("float32", "float64") of its own namespace, on its own
    device; the arrays already of that dtype, and other values, as they are (no copy).
    ``None``: the dict as it is."""
    if dtype_name is None:
        return arrays
    target_np = _NUMPY_FLOATS.get(dtype_name) or np.dtype(dtype_name)
    out = {}
    for name, a in arrays.items():
        if type(a) is np.ndarray:  # (the hot path: no namespace look-up)
            if a.dtype is not target_np and a.dtype.kind == "f" and a.dtype != target_np:
                a = a.astype(target_np)
        elif isinstance(a, np.generic):  # a NumPy scalar stays one
            if a.dtype.kind == "f":
                a = a.astype(dtype_name)
        elif hasattr(a, "dtype") and hasattr(a, "shape"):
            xp = array_api_compat.array_namespace(a)
            target = getattr(xp, dtype_name)
            if a.dtype != target and xp.isdtype(a.dtype, "real floating"):
                a = xp.astype(a, target)
        out[name] = a
    return out


def float_name(dtype: Any, xp: Any) -> str:
    """``"float32"`` for ``xp``'s float32, else ``"float64"`` (validated data is one of them)."""
    return "float32" if dtype == xp.float32 else "float64"


def take_index(idx: np.ndarray, like: Any, xp: Any) -> Any:
    """Host indices ``idx`` as an index array for ``like``'s namespace and device."""
    if isinstance(like, np.ndarray):
        return idx
    return xp.asarray(idx, device=device(like))


class RowScatter:
    """Where rows ``comp_idx`` (host indices, distinct) of a (K, ...) array go, on the
    arrays' device, made once for every array a seeding writes (one host-to-device copy of
    the (K,) sources, where each :func:`scatter_rows` of host indices made two):
    ``source[k]`` is ``k``'s row in the new rows (``len(comp_idx)``: none), ``mask`` where
    one goes (made from it on the device)."""

    def __init__(self, comp_idx: np.ndarray, n_rows: int, like: Any, xp: Any) -> None:
        self.comp_idx = np.asarray(comp_idx)
        src = np.full(n_rows, len(self.comp_idx), dtype=np.int64)
        src[self.comp_idx] = np.arange(len(self.comp_idx))
        self.source = take_index(src, like, xp)
        self.mask = self.source < len(self.comp_idx)

    def __len__(self) -> int:
        return len(self.comp_idx)


def scatter_rows(old: Any, comp_idx: Any, new_rows: Any, xp: Any) -> Any:
    """Copy of ``old`` with rows ``comp_idx`` (host indices, or a :class:`RowScatter` of
    them) replaced by ``new_rows`` (gathers only, so it runs on any array-API namespace)."""
    K = old.shape[0]
    rows = comp_idx if isinstance(comp_idx, RowScatter) else RowScatter(comp_idx, K, old, xp)
    pad = xp.zeros((1, *old.shape[1:]), dtype=old.dtype, device=device(old))
    stacked = xp.concat([xp.astype(new_rows, old.dtype), pad], axis=0)
    gathered = xp.take(stacked, rows.source, axis=0)
    m = xp.reshape(rows.mask, (K,) + (1,) * (old.ndim - 1))
    return xp.where(m, gathered, old)


def scatter_any(index: Any, values: Any, size: int, xp: Any) -> Any:
    """(size,) bool array: ``out[i]`` is whether any ``values[j]`` with ``index[j] == i`` is
    True (a scatter with OR, on the arrays' device; the array API has no scatter)."""
    if array_api_compat.is_numpy_namespace(xp):
        out = np.zeros(size, dtype=bool)
        np.logical_or.at(out, index, values)
        return out
    if array_api_compat.is_torch_namespace(xp):
        import torch

        counts = torch.zeros(size, dtype=torch.int32, device=index.device)
        return counts.index_add_(0, index, values.to(torch.int32)) > 0
    out = np.zeros(size, dtype=bool)  # other namespaces: on the host
    np.logical_or.at(out, to_numpy(index), to_numpy(values).astype(bool))
    return xp.asarray(out, device=device(index))


def logsumexp(a: Any, xp: Any, axis: int = -1) -> Any:
    """Stable log-sum-exp along ``axis`` (rows whose entries are all -inf give -inf)."""
    amax = xp.max(a, axis=axis, keepdims=True)
    amax = xp.where(xp.isfinite(amax), amax, xp.zeros_like(amax))
    out = xp.log(xp.sum(xp.exp(a - amax), axis=axis, keepdims=True)) + amax
    return xp.squeeze(out, axis=axis)


def chunk_rows(n_rows: int, row_bytes: int, working_memory_mib: float | None = None) -> int:
    """Rows per chunk so that one chunk's working set stays within scikit-learn's
    ``working_memory`` (MiB, see :func:`sklearn.set_config`)."""
    if working_memory_mib is None:
        from sklearn import get_config

        working_memory_mib = get_config()["working_memory"]
    rows = int(working_memory_mib * 2**20 // max(row_bytes, 1))
    return max(1, min(n_rows, rows))


LOG_2PI = math.log(2.0 * math.pi)

#: Below this many multiply-adds per batch, BLAS runs single-threaded (its threads cost more
#: than they give on small products, and idle ones spin against numba's; see
#: docs/benchmarks.md, "Threads").
SMALL_BLAS_WORK = 2**24
_blas_libs = None


class _OneBlasThread:
    """Context: every loaded BLAS on one thread, restored on exit. (threadpoolctl's
    ``limit`` re-reads every library's info on entry and exit, ~20 us; this calls only the
    libraries' own get/set functions, ~2 us. threadpoolctl still finds the libraries.)"""

    __slots__ = ("saved",)

    def __enter__(self):
        self.saved = [(lib, lib.get_num_threads()) for lib in _blas_controllers()]
        for lib, n in self.saved:
            if n != 1:
                lib.set_num_threads(1)
        return self

    def __exit__(self, *exc):
        for lib, n in self.saved:
            if n != 1:
                lib.set_num_threads(n)
        return False


def _blas_controllers():
    global _blas_libs
    if _blas_libs is None:
        import scipy.linalg  # noqa: F401  (scipy's own BLAS, used by numba's np.dot)
        from threadpoolctl import ThreadpoolController

        _blas_libs = ThreadpoolController().select(user_api="blas").lib_controllers
    return _blas_libs


def blas_threads_for(work: int):
    """A context limiting BLAS to one thread for small NumPy work (else a no-op)."""
    import contextlib

    if work >= SMALL_BLAS_WORK:
        return contextlib.nullcontext()
    return _OneBlasThread()
