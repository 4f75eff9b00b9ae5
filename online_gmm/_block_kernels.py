"""Numba kernels for :mod:`online_gmm._blocked`: one whole E-step + statistics per row block.

Each kernel runs its row blocks in a ``prange``; a block is filled, multiplied (``np.dot``:
single-threaded BLAS, called from numba without the GIL), turned into responsibilities by
the same row kernel as :func:`online_gmm._kernels.tempered_posterior`, and multiplied again
into the block's raw sums. Buffers come from the caller, shaped ``(n_blocks, rows, ...)``;
rows past the end of the data are zero rows that add nothing to any sum.

Block data matrix ``A`` (the columns of :func:`online_gmm._blocked.layout`):

- ``diag``: ``[xc*xc, xc, 1]`` with ``rhs = [prec; -2 mu prec; b]``, so ``A @ rhs`` is the
  squared Mahalanobis distance itself;
- ``spherical``: ``[xc, |xc|^2, 1]`` with ``rhs = [-2 mu^T; 1; b]``, likewise;
- ``tied``: ``[xc, 1]``; ``Z = A @ [U; 0]``, then ``Z @ (-2 U^T mu^T) + |Z|^2 + b``.

and the sums ``S = R^T @ (w * A)``: every first and second moment and, from the ones
column, the masses, in one product.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from ._kernels import _FASTMATH, _row_posterior

_JIT = dict(cache=True, nogil=True, error_model="numpy")
_LN2 = math.log(2.0)


@numba.njit(fastmath=_FASTMATH, inline="always", **_JIT)
def _fill(X, lo, hi, shift, kind, A):  # pragma: no cover - compiled
    """Rows ``lo:hi`` of ``X`` minus ``shift`` into ``A`` in the layout of ``kind``
    (0 diag, 1 spherical, 2 tied); the rows after ``hi - lo`` are zeros."""
    rows, n_cols = A.shape
    d = X.shape[1]
    for i in range(rows):
        if lo + i >= hi:
            for j in range(n_cols):
                A[i, j] = 0.0
            continue
        sq = 0.0
        for j in range(d):
            x = X[lo + i, j] - shift[j]
            if kind == 0:
                A[i, j] = x * x
                A[i, d + j] = x
            else:
                A[i, j] = x
                sq += x * x
        if kind == 1:
            A[i, d] = sq
        A[i, n_cols - 1] = 1.0


@numba.njit(parallel=True, fastmath=_FASTMATH, **_JIT)
def block_statistics(X, w, unit, kind, shift, rhs, U, a0, b, s, const, inv_temp, floor,
                     A, B, Z, G, ll, S, x64, T2, loglik):  # pragma: no cover - compiled
    """Fill the per-block sums: ``S[blk] = R^T @ (w * A)``, ``loglik[blk] = sum w log p``,
    and for ``tied`` (``kind == 2``) the float64 scatter ``T2[blk] = sum w x x^T``.

    ``a0``/``b`` are the kernel's row and column offsets (zeros where ``rhs`` folds them in);
    ``B`` is used only when not ``unit`` (weights not all one); ``U``, ``Z``, ``x64``,
    ``T2`` only for ``tied``.
    """
    n_blocks = A.shape[0]
    # the parallel loop holds one call, so numba's parfor passes see a few lines, not the
    # block's whole body; int64 index: the parfor's own (unsigned) index would compile
    # _one_block a second time (each compile ~2.4 s of a cold start)
    for blk in numba.prange(n_blocks):
        _one_block(np.int64(blk), X, w, unit, kind, shift, rhs, U, a0, b, s, const, inv_temp, floor,
                   A, B, Z, G, ll, S, x64, T2, loglik)


@numba.njit(fastmath=_FASTMATH, **_JIT)
def _one_block(blk, X, w, unit, kind, shift, rhs, U, a0, b, s, const, inv_temp, floor,
               A, B, Z, G, ll, S, x64, T2, loglik):  # pragma: no cover - compiled
    """Row block ``blk`` of :func:`block_statistics`."""
    n = X.shape[0]
    rows = A.shape[1]
    d = X.shape[1]
    lo = blk * rows
    hi = min(lo + rows, n)
    Ab = A[blk]
    Gb = G[blk]
    llb = ll[blk]
    _fill(X, lo, hi, shift, kind, Ab)
    if kind == 2:
        Zb = Z[blk]
        np.dot(Ab, U, Zb)
        np.dot(Zb, rhs, Gb)
        ab = np.empty(rows, dtype=llb.dtype)
        for i in range(rows):
            acc = 0.0
            for j in range(d):
                acc += Zb[i, j] * Zb[i, j]
            ab[i] = acc
    else:
        np.dot(Ab, rhs, Gb)
        ab = a0
    for i in range(rows):
        _row_posterior(Gb, i, ab, b, s, const, inv_temp, llb, floor)
    acc = 0.0
    for i in range(hi - lo):
        if w[lo + i] != 0.0:
            acc += w[lo + i] * np.float64(llb[i])
    loglik[blk] = acc
    if unit:
        np.dot(Gb.T, Ab, S[blk])
    else:
        Bb = B[blk]
        for i in range(rows):
            wi = w[lo + i] if lo + i < hi else 0.0
            for j in range(Ab.shape[1]):
                Bb[i, j] = Ab[i, j] * wi
        np.dot(Gb.T, Bb, S[blk])
    if kind == 2:
        xb = x64[blk]
        for i in range(rows):
            sw = np.sqrt(np.float64(w[lo + i])) if lo + i < hi else 0.0
            for j in range(d):
                xb[i, j] = sw * np.float64(Ab[i, j])
        np.dot(xb.T, xb, T2[blk])


@numba.njit(**_JIT)
def _shift(weights, means, shift_dt):  # pragma: no cover - compiled
    """The mixture mean (float64), also written to ``shift_dt`` in the data's dtype."""
    K, d = means.shape
    total = 0.0
    for k in range(K):
        total += weights[k]
    shift = np.zeros(d)
    for k in range(K):
        for j in range(d):
            shift[j] += weights[k] * means[k, j]
    for j in range(d):
        shift[j] /= total
        shift_dt[j] = shift[j]
    return shift


@numba.njit(**_JIT)
def prepare_diag(weights, means, prec_chol, logdet, log_2pi, rhs_t, b, s, const, shift_dt):
    """The E-step's per-batch layout for ``diag``, into the caller's buffers (data dtype):
    ``rhs_t = [prec, -2 mu prec, b]`` (K, 2D + 1), the transpose of the module docstring's
    ``rhs``; ``b`` zeros (folded into ``rhs``), ``s`` ones, ``const = log pi + logdet -
    D/2 log 2 pi``; returns the float64 shift. Float64 arithmetic, one rounding to the data's
    dtype: the values of :func:`online_gmm._estep.prepare`.

    ``logdet``: ``log|U|`` per component, or ``None``: computed here as the log of the
    product of ``U``'s diagonal, one ``log`` per component instead of ``D`` (numba's and,
    without AVX-512, NumPy's ``log`` are scalar libm calls). Factors within ``[1e-100,
    1e100]`` are multiplied, the running product kept within ``[1e-100, 1e100]`` by moving
    its binary exponent out (``frexp``, exact), so nothing overflows or underflows; factors
    outside are added as logs. About ``D`` roundings of relative size ``eps``: the accuracy
    of a sum of ``D`` logs."""  # pragma: no cover - compiled
    K, d = means.shape
    shift = _shift(weights, means, shift_dt)
    for k in range(K):
        bk = 0.0
        p = 1.0
        e2 = 0
        extra = 0.0
        for j in range(d):
            pc = prec_chol[k, j]
            prec = pc * pc
            mu = means[k, j] - shift[j]
            rhs_t[k, j] = prec
            rhs_t[k, d + j] = -2.0 * mu * prec
            bk += mu * mu * prec
            if logdet is None:
                if pc >= 1e-100 and pc <= 1e100:
                    p *= pc
                    if p > 1e100 or p < 1e-100:
                        p, e = math.frexp(p)
                        e2 += e
                else:
                    extra += np.log(pc)  # also propagates NaN
        rhs_t[k, 2 * d] = bk
        b[k] = 0.0
        s[k] = 1.0
        logw = np.log(weights[k]) if weights[k] > 0 else -np.inf
        if logdet is None:
            ld = np.log(p) + e2 * _LN2 + extra
        else:
            ld = logdet[k]
        const[k] = logw + ld - 0.5 * d * log_2pi
    return shift


@numba.njit(**_JIT)
def prepare_spherical(weights, means, prec_chol, log_2pi, rhs_t, b, s, const, shift_dt):
    """As :func:`prepare_diag` for ``spherical``: ``rhs_t = [-2 mu, 1, b]`` (K, D + 2),
    ``s = 1 / variance``."""  # pragma: no cover - compiled
    K, d = means.shape
    shift = _shift(weights, means, shift_dt)
    for k in range(K):
        bk = 0.0
        for j in range(d):
            mu = means[k, j] - shift[j]
            rhs_t[k, j] = -2.0 * mu
            bk += mu * mu
        rhs_t[k, d] = 1.0
        rhs_t[k, d + 1] = bk
        b[k] = 0.0
        pc = prec_chol[k]
        s[k] = pc * pc
        logw = np.log(weights[k]) if weights[k] > 0 else -np.inf
        const[k] = logw + d * np.log(pc) - 0.5 * d * log_2pi
    return shift


@numba.njit(**_JIT)
def centred_moments(S, n_used, kind, shift):
    """``(mass, mean, moment)`` in float64 from the first ``n_used`` blocks' raw sums ``S``
    (``diag``: kind 0, ``spherical``: 1; the centred moment per the layout of
    :mod:`online_gmm._stats`). Components without mass get a zero mean (as merging into empty
    statistics gives). The blocks' sums are added in block order, row by row (the loops over
    the features vectorise)."""
    _, K, n_cols = S.shape
    d = shift.shape[0]
    mass = np.zeros(K)
    mean = np.zeros((K, d))
    moment = np.zeros((K, d)) if kind == 0 else np.zeros((K, 1))
    first = d if kind == 0 else 0
    s1 = np.empty(d)
    s2 = np.empty(d)
    for k in range(K):
        m = 0.0
        for blk in range(n_used):
            m += np.float64(S[blk, k, n_cols - 1])
        mass[k] = m
        if not m > 0:
            continue
        s1[:] = 0.0
        s2[:] = 0.0
        spherical_s2 = 0.0
        for blk in range(n_used):
            for j in range(d):
                s1[j] += np.float64(S[blk, k, first + j])
            if kind == 0:
                for j in range(d):
                    s2[j] += np.float64(S[blk, k, j])
            else:
                spherical_s2 += np.float64(S[blk, k, d])
        if kind == 0:
            for j in range(d):
                xb = s1[j] / m
                mean[k, j] = xb + shift[j]
                moment[k, j] = max(s2[j] - m * xb * xb, 0.0)
        else:
            sq_sum = 0.0
            for j in range(d):
                xb = s1[j] / m
                mean[k, j] = xb + shift[j]
                sq_sum += xb * xb
            moment[k, 0] = max(spherical_s2 - m * sq_sum, 0.0) / d
    return mass, mean, moment


@numba.njit(**_JIT)
def unit_weights(w):  # pragma: no cover - compiled
    """Whether every weight is exactly one."""
    for i in range(w.shape[0]):
        if w[i] != 1.0:
            return False
    return True
