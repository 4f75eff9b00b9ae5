"""Numba kernels: the NumPy fast path of the E-step (prediction and the ``full`` type; the
``diag``/``spherical``/``tied`` update runs :mod:`online_gmm._block_kernels`, which shares
:func:`_row_posterior`).

Matrix products stay with BLAS; what numba fuses is everything around them: assembling the
log-densities from the quadratic-form pieces, the tempered softmax and the log-likelihood, in
one pass over each row, in place (no extra ``(n_samples, n_components)`` temporaries).
"""

from __future__ import annotations

import numba
import numpy as np

# no "nnan"/"ninf": -inf marks unseeded components
_FASTMATH = {"nsz", "contract", "reassoc", "arcp"}


#: Below these exponents ``exp`` is taken as 0: far below float32's smallest normal (1e-38)
#: and at float64's (2e-308).
EXP_FLOOR_F32 = -100.0
EXP_FLOOR_F64 = -708.0


@numba.njit(cache=True, fastmath=_FASTMATH, nogil=True, error_model="numpy", inline="always")
def _exp_nonpositive(d, floor):  # pragma: no cover - compiled
    """``exp(d)`` for ``d <= 0`` in plain float64 arithmetic, so that LLVM vectorises it
    (numba's ``exp`` is a scalar libm call without Intel SVML): a degree-12 Taylor polynomial
    of ``exp(d / 1024)`` squared ten times. Relative error below 1e-12 down to ``d = -100``
    (the squarings' rounding, about ``1024 eps``), below 1e-8 down to -708; ``d < floor``
    (and -inf) gives 0."""
    y = max(d, floor) * (1.0 / 1024.0)
    p = 1.0 / 479001600.0
    p = 1.0 / 39916800.0 + y * p
    p = 1.0 / 3628800.0 + y * p
    p = 1.0 / 362880.0 + y * p
    p = 1.0 / 40320.0 + y * p
    p = 1.0 / 5040.0 + y * p
    p = 1.0 / 720.0 + y * p
    p = 1.0 / 120.0 + y * p
    p = 1.0 / 24.0 + y * p
    p = 1.0 / 6.0 + y * p
    p = 0.5 + y * p
    p = 1.0 + y * p
    p = 1.0 + y * p
    for _ in range(10):
        p = p * p
    return p if d > floor else 0.0


@numba.njit(cache=True, fastmath=_FASTMATH, nogil=True, error_model="numpy", inline="always")
def _row_posterior(G, i, a, b, s, const, inv_temp, ll, floor):  # pragma: no cover
    """Row ``i`` of :func:`tempered_posterior`."""
    n_components = G.shape[1]
    ai = a[i]
    mx = -np.inf
    for k in range(n_components):
        q = max(ai + G[i, k] + b[k], 0.0)
        G[i, k] = const[k] - 0.5 * s[k] * q
        mx = max(mx, G[i, k])  # the stored (possibly float32-rounded) value
    acc = 0.0
    if inv_temp == 1.0:
        for k in range(n_components):
            e = _exp_nonpositive(G[i, k] - mx, floor)
            G[i, k] = e
            acc += e
        ll[i] = mx + np.log(acc)
    else:
        acc1 = 0.0
        for k in range(n_components):
            d = G[i, k] - mx
            acc1 += _exp_nonpositive(d, floor)
            e = _exp_nonpositive(d * inv_temp, floor)
            G[i, k] = e
            acc += e
        ll[i] = mx + np.log(acc1)
    inv = 1.0 / acc
    for k in range(n_components):
        G[i, k] *= inv


@numba.njit(parallel=True, cache=True, fastmath=_FASTMATH, nogil=True, error_model="numpy")
def _tempered_posterior_parallel(G, a, b, s, const, inv_temp, ll, floor):  # pragma: no cover
    for i in numba.prange(G.shape[0]):
        _row_posterior(G, i, a, b, s, const, inv_temp, ll, floor)


@numba.njit(cache=True, fastmath=_FASTMATH, nogil=True, error_model="numpy")
def _tempered_posterior_serial(G, a, b, s, const, inv_temp, ll, floor):  # pragma: no cover
    for i in range(G.shape[0]):
        _row_posterior(G, i, a, b, s, const, inv_temp, ll, floor)


#: Below this many (row, component) entries the kernel runs on one thread: numba's threads
#: cost more than they give there, and idle ones spin against BLAS's.
SMALL_KERNEL_WORK = 2**18


def tempered_posterior(G, a, b, s, const, inv_temp, ll) -> None:
    """In place: ``G[n, k] <- r_nk`` and ``ll[n] <- log sum_k exp(l_nk)``.

    With ``q = max(a[n] + G[n, k] + b[k], 0)`` (a squared Mahalanobis distance) the
    log-density is ``l_nk = const[k] - 0.5 * s[k] * q`` and the responsibilities are the
    softmax of ``l_nk * inv_temp``. ``ll`` is always the T = 1 log-likelihood. One ``exp``
    per entry at T = 1 (two while annealing), vectorised (:func:`_exp_nonpositive`);
    branch-free inner loops; rows in parallel for large work.
    """
    kernel = (
        _tempered_posterior_serial if G.size < SMALL_KERNEL_WORK
        else _tempered_posterior_parallel
    )
    floor = EXP_FLOOR_F32 if G.dtype == np.float32 else EXP_FLOOR_F64
    kernel(G, a, b, s, const, inv_temp, ll, floor)


@numba.njit(parallel=True, cache=True, fastmath=_FASTMATH, nogil=True, error_model="numpy")
def log_density(G, a, b, s, const):  # pragma: no cover - compiled
    """In place: ``G[n, k] <- l_nk`` (the weighted log-density, no softmax)."""
    n_samples, n_components = G.shape
    for i in numba.prange(n_samples):
        ai = a[i]
        for k in range(n_components):
            q = ai + G[i, k] + b[k]
            if q < 0.0:
                q = 0.0
            G[i, k] = const[k] - 0.5 * s[k] * q
