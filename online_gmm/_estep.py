"""The E-step: log-densities, tempered responsibilities, and a batch's sufficient statistics.

Written once against the array API (``xp``); on NumPy the numba kernels of
:mod:`online_gmm._kernels` finish what BLAS starts. Every function works chunk by chunk, so
the working memory is bounded by scikit-learn's ``working_memory`` and not by the batch.

Numerics: all quadratic forms are taken on data shifted by the mixture mean (so an offset of
1e8 does not cancel), squared distances are clipped at zero, the softmax is a log-sum-exp, and
the statistics leave each chunk as float64 centred moments merged by the pairwise rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _blocked, _kernels
from ._array_api import LOG_2PI, blas_threads_for, chunk_rows, device, logsumexp
from ._gaussian import log_det_cholesky
from ._stats import BatchStats, empty_stats, merge_stats


@dataclass(frozen=True)
class Prepared:
    """Parameters laid out for the quadratic forms, in the data's dtype and device."""

    covariance_type: str
    shift: Any  # (D,) float64: the mixture mean
    shift_dt: Any  # (D,) data dtype
    mu_c: Any  # (K, D) means minus shift
    prec_chol: Any
    const: Any  # (K,) log pi_k + log|U_k| - D/2 log 2 pi (-inf for weightless components)
    rhs: Any  # right-hand side of the one big matmul (or None for full)
    b: Any  # (K,)
    s: Any  # (K,)
    chol_mu: Any  # tied: mu_c @ U


def prepare(weights, means, prec_chol, covariance_type, dtype, xp) -> Prepared:
    """Precompute the per-component pieces once per batch (``O(K D)`` or ``O(K D^2)``)."""
    n_features = means.shape[1]
    dev = device(means)
    shift = weights @ means / xp.sum(weights)
    mu_c64 = means - shift
    with np.errstate(divide="ignore"):
        logw = xp.log(weights)
    const64 = logw + log_det_cholesky(prec_chol, covariance_type, n_features, xp)
    const64 = const64 - 0.5 * n_features * LOG_2PI
    # float64 arithmetic, one rounding to the data's dtype at the end (as the NumPy fast
    # path's layout kernels, online_gmm._block_kernels, compute the same values)
    mu_c = xp.astype(mu_c64, dtype)
    pc = xp.astype(prec_chol, dtype)
    const = xp.astype(const64, dtype)
    ones = xp.ones(means.shape[0], dtype=dtype, device=dev)
    rhs = chol_mu = None
    if covariance_type == "diag":
        prec = prec_chol * prec_chol
        rhs = xp.astype(xp.concat([prec, -2.0 * mu_c64 * prec], axis=1), dtype).T  # (2D, K)
        b = xp.astype(xp.sum(mu_c64 * mu_c64 * prec, axis=1), dtype)
        s = ones
    elif covariance_type == "spherical":
        rhs = xp.astype(-2.0 * mu_c64, dtype).T
        b = xp.astype(xp.sum(mu_c64 * mu_c64, axis=1), dtype)
        s = xp.astype(prec_chol * prec_chol, dtype)
    elif covariance_type == "tied":
        chol_mu64 = mu_c64 @ prec_chol
        chol_mu = xp.astype(chol_mu64, dtype)
        rhs = xp.astype(-2.0 * chol_mu64, dtype).T
        b = xp.astype(xp.sum(chol_mu64 * chol_mu64, axis=1), dtype)
        s = ones
    else:
        b = xp.zeros_like(ones)
        s = ones
    return Prepared(
        covariance_type,
        shift,
        xp.astype(shift, dtype),
        mu_c,
        pc,
        const,
        rhs,
        b,
        s,
        chol_mu,
    )


def _quadratic_pieces(Xc, p: Prepared, xp):
    """``(G, a)`` with the squared Mahalanobis distance ``q = max(a[:, None] + G + b, 0)``."""
    ct = p.covariance_type
    n = Xc.shape[0]
    if ct == "diag":
        G = xp.concat([Xc * Xc, Xc], axis=1) @ p.rhs
        a = xp.zeros(n, dtype=Xc.dtype, device=device(Xc))
    elif ct == "spherical":
        G = Xc @ p.rhs
        a = xp.sum(Xc * Xc, axis=1)
    elif ct == "tied":
        Z = Xc @ p.prec_chol
        G = Z @ p.rhs
        a = xp.sum(Z * Z, axis=1)
    else:
        cols = []
        for k in range(p.mu_c.shape[0]):
            Y = (Xc - p.mu_c[k, :]) @ p.prec_chol[k, ...]
            cols.append(xp.sum(Y * Y, axis=1))
        G = xp.stack(cols, axis=1)
        a = xp.zeros(n, dtype=Xc.dtype, device=device(Xc))
    return G, a


def _finish(G, a, p: Prepared, inv_temp: float, xp, fast: bool, softmax: bool = True):
    """Responsibilities (or log-densities) and the T = 1 log-likelihood of each row."""
    if fast:
        G = np.ascontiguousarray(G)
        if not softmax:
            _kernels.log_density(G, a, p.b, p.s, p.const)
            return G, None
        ll = np.empty(G.shape[0], dtype=G.dtype)
        _kernels.tempered_posterior(G, a, p.b, p.s, p.const, float(inv_temp), ll)
        return G, ll
    if _is_torch(G) and not G.requires_grad:
        return _finish_torch_inplace(G, a, p, inv_temp, softmax)
    q = xp.maximum(a[:, None] + G + p.b, xp.zeros_like(G))
    logp = p.const - 0.5 * p.s * q
    if not softmax:
        return logp, None
    ll = logsumexp(logp, xp, axis=1)
    if inv_temp == 1.0:
        return xp.exp(logp - ll[:, None]), ll
    lt = logp * inv_temp
    return xp.exp(lt - logsumexp(lt, xp, axis=1)[:, None]), ll


def _is_torch(x) -> bool:
    import array_api_compat

    return array_api_compat.is_torch_array(x)


def _finish_torch_inplace(G, a, p: Prepared, inv_temp: float, softmax: bool):
    """PyTorch (CUDA) specialisation of :func:`_finish`: the same math, in place on ``G``
    with fused reductions, so no (n, K) temporary is allocated."""
    import torch

    logp = G.add_(a[:, None]).add_(p.b).clamp_(min=0).mul_(-0.5 * p.s).add_(p.const)
    if not softmax:
        return logp, None
    ll = torch.logsumexp(logp, dim=1)
    if inv_temp == 1.0:
        return logp.sub_(ll[:, None]).exp_(), ll
    logp.mul_(inv_temp)
    return logp.sub_(torch.logsumexp(logp, dim=1)[:, None]).exp_(), ll


def _chunks(n_samples: int, n_components: int, n_features: int, itemsize: int):
    row_bytes = itemsize * (3 * n_components + 4 * n_features)
    step = chunk_rows(n_samples, row_bytes)
    for start in range(0, n_samples, step):
        yield slice(start, min(start + step, n_samples))


def posterior(X, p: Prepared, xp, fast: bool, inv_temp: float = 1.0):
    """``(resp, log_likelihood)`` of every row, in the data's dtype."""
    n, d = X.shape
    K = p.mu_c.shape[0]
    resp_parts, ll_parts = [], []
    with blas_threads_for(n * K * d, fast):
        for sl in _chunks(n, K, d, X.dtype.itemsize if fast else 8):
            G, a = _quadratic_pieces(X[sl, ...] - p.shift_dt, p, xp)
            r, ll = _finish(G, a, p, inv_temp, xp, fast)
            resp_parts.append(r)
            ll_parts.append(ll)
    if len(resp_parts) == 1:
        return resp_parts[0], ll_parts[0]
    return xp.concat(resp_parts, axis=0), xp.concat(ll_parts, axis=0)


def weighted_log_density(X, p: Prepared, xp, fast: bool):
    """``log pi_k + log N(x_n | mu_k, Sigma_k)`` for every row and component."""
    n, d = X.shape
    parts = []
    K = p.mu_c.shape[0]
    with blas_threads_for(n * K * d, fast):
        for sl in _chunks(n, K, d, X.dtype.itemsize if fast else 8):
            G, a = _quadratic_pieces(X[sl, ...] - p.shift_dt, p, xp)
            parts.append(_finish(G, a, p, 1.0, xp, fast, softmax=False)[0])
    return parts[0] if len(parts) == 1 else xp.concat(parts, axis=0)


def batch_statistics(X, w, p: Prepared, inv_temp: float, xp, fast: bool) -> BatchStats:
    """E-step at temperature ``1 / inv_temp`` and the batch's weighted sufficient statistics.

    ``w`` is the (n,) sample weight in the data's dtype. The returned masses, means and
    centred moments are float64; the log-likelihood is taken at T = 1.
    """
    n, d = X.shape
    K = p.mu_c.shape[0]
    ct = p.covariance_type
    if fast and ct in _blocked.BLOCKED_TYPES:
        return _blocked.batch_statistics(X, w, p, inv_temp)
    total = empty_stats(K, d, ct, xp, device(X))
    with blas_threads_for(n * K * d, fast):
        for sl in _chunks(n, K, d, X.dtype.itemsize if fast else 8):
            Xc = X[sl, ...] - p.shift_dt
            wc = w[sl]
            G, a = _quadratic_pieces(Xc, p, xp)
            R, ll = _finish(G, a, p, inv_temp, xp, fast)
            part = _chunk_statistics(Xc, wc, R, ll, p, xp)
            total = merge_stats(total, part, ct, xp)
    return total


def _chunk_statistics(Xc, w, R, ll, p: Prepared, xp) -> BatchStats:
    f64 = xp.float64
    ct = p.covariance_type
    d = Xc.shape[1]
    wX = Xc * w[:, None]
    m = xp.astype(w @ R, f64)
    safe = xp.where(m > 0, m, xp.ones_like(m))
    if ct == "diag":
        S = xp.astype(R.T @ xp.concat([wX, wX * Xc], axis=1), f64)
        xbc = S[:, :d] / safe[:, None]
        Mb = xp.maximum(S[:, d:] - m[:, None] * xbc * xbc, xp.zeros_like(xbc))
    else:
        xbc = xp.astype(R.T @ wX, f64) / safe[:, None]
        if ct == "spherical":
            s2 = xp.astype(xp.sum(wX * Xc, axis=1) @ R, f64)
            Mb = xp.maximum(s2 - m * xp.sum(xbc * xbc, axis=1), xp.zeros_like(m)) / d
        elif ct == "tied":
            # D x D scatters in float64: a float32 sum of outer products of a rank-deficient
            # batch is not positive semi-definite (O(n D^2), cheap next to the E-step)
            Xc64 = xp.astype(Xc, f64)
            T2 = (Xc64 * xp.astype(w, f64)[:, None]).T @ Xc64
            Mb = T2 - (xbc * m[:, None]).T @ xbc
            Mb = 0.5 * (Mb + Mb.T)
        else:
            Xc64 = xp.astype(Xc, f64)
            wR = xp.astype(w, f64)[:, None] * xp.astype(R, f64)
            mats = []
            for k in range(xbc.shape[0]):
                Y = (Xc64 - xbc[k, :]) * xp.sqrt(wR[:, k])[:, None]
                mats.append(Y.T @ Y)
            Mb = xp.stack(mats, axis=0)
    ll64 = xp.astype(ll, f64)
    w64 = xp.astype(w, f64)
    return BatchStats(
        mass=m,
        mean=xbc + p.shift,
        moment=Mb,
        weight=float(xp.sum(w64)),
        loglik=float(xp.sum(w64 * ll64)),
        n_samples=int(Xc.shape[0]),
    )
