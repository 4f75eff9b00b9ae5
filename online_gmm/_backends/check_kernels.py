"""Numba kernels that check a batch: every entry finite (:func:`all_finite`), every weight
one (:func:`unit_weights`). They inline nothing of :mod:`~online_gmm._backends.kernels`, so
numba's cache of each file stays valid on its own."""

from __future__ import annotations

import numba
import numpy as np

from .kernels import _FASTMATH


@numba.njit(cache=True, fastmath=_FASTMATH, nogil=True, error_model="numpy")
def _zero_if_finite(a):  # pragma: no cover - compiled
    """``sum(a * 0)``: 0 when every entry of the 1-d ``a`` is finite, NaN otherwise (inf * 0
    is NaN; without the ``nnan``/``ninf`` flags LLVM may not fold ``x * 0`` to 0). Never
    overflows, unlike a plain sum; vectorises."""
    zero = a.dtype.type(0.0)
    acc = zero
    for k in range(a.shape[0]):
        acc += a[k] * zero
    return acc


@numba.njit(cache=True, nogil=True)
def _all_zero_if_finite(arrays):  # pragma: no cover - compiled
    """:func:`_zero_if_finite` of each 1-d array of the tuple ``arrays`` is 0."""
    for a in arrays:
        if _zero_if_finite(a) != 0:
            return False
    return True


def all_finite(*arrays: np.ndarray) -> bool:
    """Whether every entry of the float NumPy arrays is finite: one vectorised pass over
    each, no temporary (``np.isfinite(a).all()`` makes a boolean array of ``a``'s size),
    one compiled call for arrays of one dtype."""
    flat = []
    for a in arrays:
        if not (a.flags.c_contiguous or a.flags.f_contiguous):
            if not np.isfinite(a).all():
                return False
            continue
        flat.append(a.ravel(order="K"))
    if not flat:
        return True
    if len({a.dtype for a in flat}) > 1:
        return all(bool(_zero_if_finite(a) == 0) for a in flat)
    return bool(_all_zero_if_finite(tuple(flat)))


@numba.njit(cache=True, nogil=True, error_model="numpy")
def unit_weights(w):  # pragma: no cover - compiled
    """Whether every weight is exactly one."""
    for i in range(w.shape[0]):
        if w[i] != 1.0:
            return False
    return True
