"""Numba kernels: the NumPy fast path of the E-step.

Matrix products stay with BLAS; what numba fuses is everything around them: assembling the
log-densities from the quadratic-form pieces, the tempered softmax and the log-likelihood, in
one pass over each row, in place (no extra ``(n_samples, n_components)`` temporaries).
"""

from __future__ import annotations

import numba
import numpy as np

_FASTMATH = {"nsz", "contract", "reassoc"}  # no 'nnan'/'ninf': -inf marks unseeded components


@numba.njit(parallel=True, cache=True, fastmath=_FASTMATH, nogil=True)
def tempered_posterior(G, a, b, s, const, inv_temp, ll):  # pragma: no cover - compiled
    """In place: ``G[n, k] <- r_nk`` and ``ll[n] <- log sum_k exp(l_nk)``.

    With ``q = max(a[n] + G[n, k] + b[k], 0)`` (a squared Mahalanobis distance) the
    log-density is ``l_nk = const[k] - 0.5 * s[k] * q`` and the responsibilities are the
    softmax of ``l_nk * inv_temp``. ``ll`` is always the T = 1 log-likelihood.
    """
    n_samples, n_components = G.shape
    for i in numba.prange(n_samples):
        ai = a[i]
        mx = -np.inf
        for k in range(n_components):
            q = ai + G[i, k] + b[k]
            if q < 0.0:
                q = 0.0
            lk = const[k] - 0.5 * s[k] * q
            G[i, k] = lk
            if lk > mx:
                mx = lk
        acc = 0.0
        for k in range(n_components):
            acc += np.exp(G[i, k] - mx)
        lse = mx + np.log(acc)
        ll[i] = lse
        if inv_temp == 1.0:
            for k in range(n_components):
                G[i, k] = np.exp(G[i, k] - lse)
        else:
            mxt = mx * inv_temp
            acc = 0.0
            for k in range(n_components):
                acc += np.exp(G[i, k] * inv_temp - mxt)
            lset = mxt + np.log(acc)
            for k in range(n_components):
                G[i, k] = np.exp(G[i, k] * inv_temp - lset)


@numba.njit(parallel=True, cache=True, fastmath=_FASTMATH, nogil=True)
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
