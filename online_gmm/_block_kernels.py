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

import numba
import numpy as np

from ._kernels import _FASTMATH, _row_posterior

_JIT = dict(cache=True, nogil=True, error_model="numpy")


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
    n = X.shape[0]
    n_blocks, rows, _ = A.shape
    d = X.shape[1]
    for blk in numba.prange(n_blocks):
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
