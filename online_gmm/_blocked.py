"""The NumPy fast path of :func:`online_gmm._estep.batch_statistics` (``diag``,
``spherical``, ``tied``): row blocks in parallel, each in reused buffers.

A batch is cut into row blocks, one per numba thread. Each block runs the whole E-step and
its statistics product on its own thread (:func:`online_gmm._block_kernels.block_statistics`:
single-threaded BLAS for the two matrix products, the numba row kernel between them, no
GIL), so that

- every core works even when each product is too small for BLAS's own threads
  (scikit-learn's k-means does the same: OpenMP over row chunks, one-threaded BLAS inside);
- nothing of size ``(n, K)`` or ``(n, D)`` is allocated per step: the buffers live in a
  per-thread workspace across steps. Fresh multi-megabyte temporaries cost page faults at
  every step (the allocator hands big blocks back to the OS), which at workload 1's size was
  as much as the arithmetic itself.

Each block returns its raw sums about the common shift (the mixture mean) in the data's dtype,
as BLAS computes them; the blocks' sums are added in float64 in block order, so the result
does not depend on which thread ran which block, and the centred moments are formed once at
the end, as one chunk of the generic path forms them.

Blocks: as many as numba has threads (``numba.set_num_threads``, ``NUMBA_NUM_THREADS``), but
none below :data:`MIN_BLOCK_ROWS` rows, and one when the batch's work is below
:data:`MIN_PARALLEL_WORK`; a batch beyond scikit-learn's ``working_memory`` goes through in
rounds. Results are deterministic for a given thread count; across thread counts they agree
to rounding, as BLAS's own results do.
"""

from __future__ import annotations

import threading

import numba
import numpy as np

from . import _block_kernels
from ._array_api import blas_threads_for, chunk_rows
from ._kernels import EXP_FLOOR_F32, EXP_FLOOR_F64
from ._stats import BatchStats

#: Fewest rows a block keeps (below it the products lose BLAS efficiency).
MIN_BLOCK_ROWS = 128
#: Below this many multiply-adds (rows x K x D) a batch is one block.
MIN_PARALLEL_WORK = 2**21
#: Workspaces above this size (bytes, per thread) are not kept between steps.
MAX_CACHED_BYTES = 64 * 2**20

BLOCKED_TYPES = ("diag", "spherical", "tied")
_KIND = {"diag": 0, "spherical": 1, "tied": 2}


def layout(ct: str, d: int) -> tuple[slice, int, int]:
    """Columns of a block's data matrix ``A``: ``(first moments, second moments, n_cols)``;
    the last column is ones (its sum is the mass)."""
    if ct == "diag":  # [xc*xc, xc, 1]
        return slice(d, 2 * d), 0, 2 * d + 1
    if ct == "spherical":  # [xc, |xc|^2, 1]
        return slice(0, d), d, d + 2
    return slice(0, d), -1, d + 1  # tied: [xc, 1]


def n_threads() -> int:
    return numba.get_num_threads()


def block_plan(n: int, n_components: int, n_features: int, itemsize: int) -> tuple[int, int]:
    """``(blocks per round, rows per block)`` for an ``n``-row batch."""
    work = n * n_components * n_features
    wanted = n_threads() if work >= MIN_PARALLEL_WORK else 1
    n_blocks = max(1, min(wanted, n // MIN_BLOCK_ROWS))
    row_bytes = itemsize * (n_components + 6 * n_features + 6)
    per_block = -(-chunk_rows(n, row_bytes) // n_blocks)  # working_memory for all blocks
    return n_blocks, max(1, min(-(-n // n_blocks), per_block))


def blas_work(n: int, n_components: int, n_features: int, itemsize: int) -> int:
    """The work to size BLAS's thread pool by (see :func:`~online_gmm._array_api.
    blas_threads_for`): 0 (one thread) when the batch runs as parallel blocks, each of
    which calls BLAS on its own thread."""
    if block_plan(n, n_components, n_features, itemsize)[0] > 1:
        return 0
    return n * n_components * n_features


class _Workspace:
    """One thread's buffers, reused from step to step while their shapes fit."""

    def __init__(self):
        self.key = None
        self.arrays: dict[str, np.ndarray] = {}

    def get(self, key, shapes: dict[str, tuple]) -> dict[str, np.ndarray]:
        if key != self.key:
            self.arrays = {name: np.empty(shape, dtype) for name, (shape, dtype) in shapes.items()}
            self.key = key
        arrays = self.arrays
        if sum(a.nbytes for a in arrays.values()) > MAX_CACHED_BYTES:
            self.key, self.arrays = None, {}
        return arrays


_local = threading.local()


def _workspace() -> _Workspace:
    ws = getattr(_local, "workspace", None)
    if ws is None:
        ws = _local.workspace = _Workspace()
    return ws


def _extended(p, dt):
    """``(rhs, U, b)`` for the block kernel (see :mod:`online_gmm._block_kernels`)."""
    ct = p.covariance_type
    K, d = p.mu_c.shape
    zeros_k = np.zeros(K, dtype=dt)
    if ct == "diag":
        rhs = np.concatenate([p.rhs, p.b[None, :]], axis=0)
        return rhs, _dummy(dt, 2), zeros_k
    if ct == "spherical":
        rhs = np.concatenate([p.rhs, np.ones((1, K), dtype=dt), p.b[None, :]], axis=0)
        return rhs, _dummy(dt, 2), zeros_k
    U = np.concatenate([p.prec_chol, np.zeros((1, d), dtype=dt)], axis=0)
    return np.ascontiguousarray(p.rhs), U, p.b


def _dummy(dt, ndim: int) -> np.ndarray:
    return np.zeros((1,) * ndim, dtype=dt)


def batch_statistics(X: np.ndarray, w: np.ndarray, p, inv_temp: float) -> BatchStats:
    """:func:`online_gmm._estep.batch_statistics` for NumPy input, ``diag``/``spherical``/
    ``tied`` (the same statistics, computed block-parallel)."""
    n, d = X.shape
    K = p.mu_c.shape[0]
    ct = p.covariance_type
    dt = X.dtype
    f64 = np.float64
    kind = _KIND[ct]
    n_blocks, rows = block_plan(n, K, d, dt.itemsize)
    unit = bool(np.all(w == 1))
    cx, c2, n_cols = layout(ct, d)
    tied = ct == "tied"
    shapes = {
        "A": ((n_blocks, rows, n_cols), dt), "G": ((n_blocks, rows, K), dt),
        "ll": ((n_blocks, rows), dt), "S": ((n_blocks, K, n_cols), dt),
        "loglik": ((n_blocks,), f64), "a0": ((rows,), dt),
        "B": ((n_blocks, rows, n_cols) if not unit else (1, 1, 1), dt),
        "Z": ((n_blocks, rows, d) if tied else (1, 1, 1), dt),
        "x64": ((n_blocks, rows, d) if tied else (1, 1, 1), f64),
        "T2": ((n_blocks, d, d) if tied else (1, 1, 1), f64),
    }
    buf = _workspace().get((ct, n_blocks, rows, K, d, dt.str, unit), shapes)
    buf["a0"][:] = 0
    rhs, U, b = _extended(p, dt)
    floor = EXP_FLOOR_F32 if dt == np.float32 else EXP_FLOOR_F64
    S = np.zeros((K, n_cols), dtype=f64)
    T2 = np.zeros((d, d), dtype=f64) if tied else None
    loglik = 0.0
    per_round = n_blocks * rows
    with blas_threads_for(blas_work(n, K, d, dt.itemsize), True):
        for lo in range(0, n, per_round):
            hi = min(lo + per_round, n)
            _block_kernels.block_statistics(
                X[lo:hi], w[lo:hi], unit, kind, p.shift_dt, rhs, U, buf["a0"], b, p.s,
                p.const, float(inv_temp), floor, buf["A"], buf["B"], buf["Z"], buf["G"],
                buf["ll"], buf["S"], buf["x64"], buf["T2"], buf["loglik"],
            )
            used = -(-(hi - lo) // rows)  # blocks that held data this round
            S += buf["S"][:used].sum(axis=0, dtype=f64)
            loglik += float(buf["loglik"][:used].sum())
            if tied:
                T2 += buf["T2"][:used].sum(axis=0)
    m = S[:, -1]
    safe = np.where(m > 0, m, 1.0)
    xbc = S[:, cx] / safe[:, None]
    if ct == "diag":
        Mb = np.maximum(S[:, c2:c2 + d] - m[:, None] * xbc * xbc, 0.0)
    elif ct == "spherical":
        Mb = np.maximum(S[:, c2] - m * np.sum(xbc * xbc, axis=1), 0.0) / d
    else:
        # D x D scatters in float64: a float32 sum of outer products of a rank-deficient
        # batch is not positive semi-definite
        Mb = T2 - (xbc * m[:, None]).T @ xbc
        Mb = 0.5 * (Mb + Mb.T)
    return BatchStats(
        mass=m,
        mean=np.where(m[:, None] > 0, xbc + p.shift, 0.0),  # as merging into empty stats
        moment=Mb,
        weight=float(np.sum(w, dtype=f64)),
        loglik=loglik,
        n_samples=int(n),
    )
