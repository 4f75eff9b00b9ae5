"""The numba backend's statistics for the types with a block kernel (``diag``,
``spherical``, ``tied``): row blocks in parallel, each in reused buffers.

A batch is cut into row blocks, one per numba thread. Each block runs the whole E-step and
its statistics product on its own thread (:func:`online_gmm._kernels.block_statistics`:
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
from contextlib import nullcontext

import numba
import numpy as np

from . import _kernels
from ._array_api import LOG_2PI, blas_threads_for, chunk_rows
from ._covariance import covariance
from ._estep import state_prepared
from ._kernels import DIAG, EXP_FLOOR_F32, EXP_FLOOR_F64, SPHERICAL, TIED
from ._stats import BatchStats, merge_stats

#: Fewest rows a block keeps (below it the products lose BLAS efficiency).
MIN_BLOCK_ROWS = 128
#: Below this many multiply-adds (rows x K x D) a batch is one block.
MIN_PARALLEL_WORK = 2**21
#: Workspaces above this size (bytes, per thread) are not kept between steps.
MAX_CACHED_BYTES = 64 * 2**20


def kernel_kind(covariance_type: str) -> int | None:
    """The covariance type's code in the block kernels (None: it has none)."""
    return covariance(covariance_type).KERNEL_KIND


def layout(kind: int, d: int) -> tuple[slice, int, int]:
    """Columns of a block's data matrix ``A``: ``(first moments, second moments, n_cols)``;
    the last column is ones (its sum is the mass)."""
    if kind == DIAG:  # [xc*xc, xc, 1]
        return slice(d, 2 * d), 0, 2 * d + 1
    if kind == SPHERICAL:  # [xc, |xc|^2, 1]
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


def blas_work(n: int, n_components: int, n_features: int, itemsize: int,
              plan: tuple[int, int] | None = None) -> int:
    """The work to size BLAS's thread pool by (see :func:`~online_gmm._array_api.
    blas_threads_for`): 0 (one thread) when the batch runs as parallel blocks, each of
    which calls BLAS on its own thread. ``plan``: the batch's :func:`block_plan`, if the
    caller has it already."""
    if plan is None:
        plan = block_plan(n, n_components, n_features, itemsize)
    if plan[0] > 1:
        return 0
    return n * n_components * n_features


class _Workspace:
    """One thread's buffers, reused from step to step while their shapes fit."""

    def __init__(self):
        self.key = None
        self.arrays: dict[str, np.ndarray] = {}

    def get(self, key, shapes) -> dict[str, np.ndarray]:
        """The buffers for ``key``; ``shapes``: ``{name: (shape, dtype)}``, or a callable
        returning it (called only when the buffers are (re)allocated)."""
        if key == self.key:
            return self.arrays
        if callable(shapes):
            shapes = shapes()
        arrays = {name: np.empty(shape, dtype) for name, (shape, dtype) in shapes.items()}
        if sum(a.nbytes for a in arrays.values()) <= MAX_CACHED_BYTES:
            self.key, self.arrays = key, arrays
        return arrays


_local = threading.local()


def _workspace() -> _Workspace:
    ws = getattr(_local, "workspace", None)
    if ws is None:
        ws = _local.workspace = _Workspace()
    return ws


def _extended(p, dt):
    """``(rhs, U, b)`` for the block kernel (see :mod:`online_gmm._kernels`); ``rhs``
    is the transpose of a C-ordered (K, C) array, as the numba layout kernels write it."""
    kind = kernel_kind(p.covariance_type)
    K, d = p.mu_c.shape
    zeros_k = np.zeros(K, dtype=dt)
    if kind == DIAG:
        rhs_t = np.concatenate([p.rhs.T, p.b[:, None]], axis=1)
        return rhs_t.T, _dummy(dt, 2), zeros_k
    if kind == SPHERICAL:
        rhs_t = np.concatenate([p.rhs.T, np.ones((K, 1), dtype=dt), p.b[:, None]], axis=1)
        return rhs_t.T, _dummy(dt, 2), zeros_k
    U = np.concatenate([p.prec_chol, np.zeros((1, d), dtype=dt)], axis=0)
    return np.asfortranarray(p.rhs), U, p.b


def _dummy(dt, ndim: int) -> np.ndarray:
    return np.zeros((1,) * ndim, dtype=dt)


def batch_statistics(X: np.ndarray, w: np.ndarray, p, inv_temp: float,
                     plan: tuple[int, int] | None = None) -> BatchStats:
    """:func:`online_gmm._estep.chunked_statistics` for NumPy input, ``diag``/``spherical``/
    ``tied``, from a :class:`~online_gmm._estep.Prepared` (the same statistics, computed
    block-parallel). ``plan``: as for :func:`state_statistics`."""
    rhs, U, b = _extended(p, X.dtype)
    return _run(X, w, inv_temp, p.covariance_type, p.shift, p.shift_dt, rhs, U, b, p.s, p.const,
                plan)


def state_statistics(state, covariance_type: str, X: np.ndarray, w: np.ndarray,
                     inv_temp: float, plan: tuple[int, int] | None = None) -> BatchStats:
    """The same from the mixture state: for ``diag``/``spherical`` one numba call
    (``_kernels.prepare_diag``/``prepare_spherical``) writes the per-batch layout into
    reused buffers, instead of :func:`online_gmm._estep.prepare`'s array operations.

    ``plan``: the batch's :func:`block_plan`, from a caller that has already set BLAS's
    threads for it (``em_step``: one setting for the whole step); ``None``: planned and set
    here."""
    kind = kernel_kind(covariance_type)
    if kind == TIED:
        p = state_prepared(state, covariance_type, X.dtype, np)
        return batch_statistics(X, w, p, inv_temp, plan)
    K, d = state.means.shape
    dt = X.dtype
    buf = _local_layout(("layout", kind, K, d, dt.str), _layout_shapes, kind, K, d, dt)
    pc = state.precisions_cholesky
    out = (LOG_2PI, buf["rhs_t"], buf["b"], buf["s"], buf["const"], buf["shift_dt"])
    if kind == DIAG:  # log|U| computed in the kernel
        shift = _kernels.prepare_diag(state.weights, state.means, pc, None, *out)
    else:
        shift = _kernels.prepare_spherical(state.weights, state.means, pc, *out)
    return _run(X, w, inv_temp, covariance_type, shift, buf["shift_dt"], buf["rhs_t"].T,
                _dummy(dt, 2), buf["b"], buf["s"], buf["const"], plan)


def _layout_shapes(kind: int, K: int, d: int, dt) -> dict[str, tuple]:
    n_rhs = 2 * d + 1 if kind == DIAG else d + 2
    return {
        "rhs_t": ((K, n_rhs), dt), "b": ((K,), dt), "s": ((K,), dt), "const": ((K,), dt),
        "shift_dt": ((d,), dt),
    }


def _local_layout(key, shapes, *args):
    store = getattr(_local, "layouts", None)
    if store is None:
        store = _local.layouts = _Workspace()
    return store.get(key, lambda: shapes(*args))


def _run_shapes(kind, n_blocks, rows, K, d, n_cols, dt, unit) -> dict[str, tuple]:
    tied = kind == TIED
    f64 = np.float64
    return {
        "A": ((n_blocks, rows, n_cols), dt), "G": ((n_blocks, rows, K), dt),
        "ll": ((n_blocks, rows), dt), "S": ((n_blocks, K, n_cols), dt),
        "loglik": ((n_blocks,), f64), "a0": ((rows,), dt),
        "B": ((n_blocks, rows, n_cols) if not unit else (1, 1, 1), dt),
        "Z": ((n_blocks, rows, d) if tied else (1, 1, 1), dt),
        "S64": ((n_blocks, K, n_cols) if tied and dt == np.float32 else (1, 1, 1), f64),
        "x64": ((n_blocks, rows, d) if tied else (1, 1, 1), f64),
        "T2": ((n_blocks, d, d) if tied else (1, 1, 1), f64),
    }


def _run(X, w, inv_temp, ct, shift, shift_dt, rhs, U, b, s, const, plan=None) -> BatchStats:
    n, d = X.shape
    K = const.shape[0]
    dt = X.dtype
    kind = kernel_kind(ct)
    blas_set = plan is not None
    n_blocks, rows = plan if blas_set else block_plan(n, K, d, dt.itemsize)
    unit = bool(_kernels.unit_weights(w))
    # sum_n w_n: n exactly when every weight is one
    weight = float(n) if unit else float(np.sum(w, dtype=np.float64))
    n_cols = layout(kind, d)[2]
    buf = _workspace().get(
        (kind, n_blocks, rows, K, d, dt.str, unit),
        lambda: _run_shapes(kind, n_blocks, rows, K, d, n_cols, dt, unit),
    )
    buf["a0"][:] = 0
    floor = EXP_FLOOR_F32 if dt == np.float32 else EXP_FLOOR_F64
    per_round = n_blocks * rows
    loglik = 0.0
    parts = []
    with nullcontext() if blas_set else blas_threads_for(
        0 if n_blocks > 1 else n * K * d  # as blas_work
    ):
        for lo in range(0, n, per_round):
            hi = min(lo + per_round, n)
            whole = hi - lo == n
            _kernels.block_statistics(
                X if whole else X[lo:hi], w if whole else w[lo:hi], unit, kind, shift_dt, rhs,
                U, buf["a0"], b, s, const, float(inv_temp), floor, buf["A"], buf["B"],
                buf["Z"], buf["G"], buf["ll"], buf["S"], buf["S64"], buf["x64"], buf["T2"],
                buf["loglik"],
            )
            used = -(-(hi - lo) // rows)  # blocks that held data this round
            ll = buf["loglik"]
            loglik += float(ll[0]) if used == 1 else float(ll[:used].sum())
            parts.append(_round_stats(buf, used, kind, shift))
    mass, mean, moment = parts[0]
    if len(parts) > 1:  # rounds merge pairwise
        stats = BatchStats(mass, mean, moment, 0.0, 0.0, 0)
        for part in parts[1:]:
            stats = merge_stats(stats, BatchStats(*part, 0.0, 0.0, 0), ct, np)
        mass, mean, moment = stats.mass, stats.mean, stats.moment
    return BatchStats(
        mass=mass, mean=mean, moment=moment, weight=weight, loglik=loglik, n_samples=int(n),
    )


def _round_stats(buf, used: int, kind: int, shift) -> tuple:
    """One round's blocks' sums as centred float64 ``(mass, mean, moment)``."""
    if kind != TIED:
        mass, mean, moment = _kernels.centred_moments(
            buf["S"], used, kind, np.asarray(shift, dtype=np.float64)
        )
        return mass, mean, moment if kind == DIAG else moment[:, 0]
    d = shift.shape[0]
    # float32 data: the sums made in float64 (consistent with T2, see _kernels)
    S = (buf["S64"] if buf["S"].dtype == np.float32 else buf["S"])[:used].sum(
        axis=0, dtype=np.float64)
    T2 = buf["T2"][:used].sum(axis=0)
    m = S[:, -1]
    safe = np.where(m > 0, m, 1.0)
    xbc = S[:, :d] / safe[:, None]
    # D x D scatters in float64: a float32 sum of outer products of a rank-deficient batch
    # is not positive semi-definite
    Mb = T2 - (xbc * m[:, None]).T @ xbc
    Mb = 0.5 * (Mb + Mb.T)
    mean = np.where(m[:, None] > 0, xbc + shift, 0.0)  # as merging into empty statistics
    return m, mean, Mb
