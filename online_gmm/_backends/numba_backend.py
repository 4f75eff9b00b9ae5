"""The numba backend: the reference's operations for host NumPy arrays, compiled.

:class:`NumbaBackend` overrides the :class:`~online_gmm._backends.reference.ReferenceBackend`
operations that have a fast form, and nothing else:

- statistics: the types with a block kernel (``KERNEL_KIND`` not None) run
  block-parallel (the block statistics below); ``full`` runs chunk by chunk with BLAS and
  the numba row kernel;
- ``finish``: the row kernel (:func:`online_gmm._backends.kernels.tempered_posterior`);
- the M-step of ``diag``/``spherical``: one kernel (:mod:`online_gmm._backends.mstep_kernels`);
- precision factors: one batched LAPACK call for a stack of matrices;
- the finiteness check: one vectorised pass; the BLAS setting: one thread for small work.

Each is tested against the reference (``tests/backends/test_backends.py`` and the tests
named there).
"""

from __future__ import annotations

import threading
from contextlib import nullcontext
from typing import Any

import numba
import numpy as np

from .._math.array_api import LOG_2PI, blas_threads_for, chunk_rows
from .._math.covariance import COVARIANCE_TYPES, PD_MSG, covariance
from .._math.estep import chunked_statistics, state_prepared
from .._math.mstep import forgetting_factors
from .._math.state import BatchStats, MixtureState, merge_stats
from . import check_kernels as _checks
from . import kernels as _kernels
from . import layout_kernels as _layout
from . import mstep_kernels as _mstep_kernels
from .kernels import DIAG, EXP_FLOOR_F32, EXP_FLOOR_F64, SPHERICAL, TIED
from .reference import ReferenceBackend

#: The kernel kinds the M-step kernel computes (``diag``, ``spherical``).
MSTEP_KINDS = (_kernels.DIAG, _kernels.SPHERICAL)


class NumbaBackend(ReferenceBackend):
    """The numba CPU implementation of the backend operations (NumPy arrays only)."""

    name = "numba"

    # ------------------------------------------------------------------ linear algebra
    def spd_upper_factor(self, covariances: np.ndarray) -> np.ndarray:
        """The upper-triangular precision factors ``inv(L).T`` of ``covariances`` (D, D) or
        (K, D, D): LAPACK's ``potrf``, then a solve against the identity, on each matrix in
        one C loop over the stack (NumPy's ``linalg`` gufuncs; no Python loop)."""
        try:
            chol = np.linalg.cholesky(covariances)
        except np.linalg.LinAlgError as exc:
            raise ValueError(PD_MSG) from exc
        if not np.isfinite(chol).all():  # NaN input passes potrf in some LAPACKs
            raise ValueError(PD_MSG)
        d = covariances.shape[-1]
        inv = np.linalg.solve(chol, np.broadcast_to(np.eye(d), covariances.shape))
        # (solve's LU of a triangular matrix may pivot: its rounding above the diagonal goes)
        return np.triu(np.swapaxes(inv, -1, -2))

    # ------------------------------------------------------------------ the E-step
    def chunk_itemsize(self, X: np.ndarray) -> int:
        return X.dtype.itemsize

    def blas_threads(self, work: int) -> Any:
        return blas_threads_for(work)

    def finish(self, G, a, p, inv_temp: float, softmax: bool = True) -> tuple:
        G = np.ascontiguousarray(G)
        if not softmax:
            _kernels.log_density(G, a, p.b, p.s, p.const)
            return G, None
        ll = np.empty(G.shape[0], dtype=G.dtype)
        _kernels.tempered_posterior(G, a, p.b, p.s, p.const, float(inv_temp), ll)
        return G, ll

    def soften(self, L: np.ndarray, inv_temp: float) -> tuple:
        """:meth:`ReferenceBackend.soften`, the responsibilities in place in ``L`` when it
        is a C-contiguous float array of its own (the E-step's row kernel,
        ``kernels.softmax_rows``)."""
        if not (L.flags.c_contiguous and L.flags.writeable and L.dtype.kind == "f"):
            L = np.array(L, dtype=np.result_type(L.dtype, np.float32), order="C")
        return L, _kernels.softmax_rows(L, inv_temp)

    def batch_statistics(self, X, w, p, inv_temp: float, plan=None,
                         on_log_density=None) -> BatchStats:
        if kernel_kind(p.covariance_type) is None:
            return chunked_statistics(X, w, p, inv_temp, self, on_log_density)
        return batch_statistics(X, w, p, inv_temp, plan, on_log_density)

    def state_statistics(self, state, covariance_type: str, X, w, inv_temp: float,
                         plan=None, on_log_density=None) -> BatchStats:
        if kernel_kind(covariance_type) is None:
            return super().state_statistics(state, covariance_type, X, w, inv_temp,
                                            on_log_density=on_log_density)
        return state_statistics(state, covariance_type, X, w, inv_temp, plan, on_log_density)

    def step_plan(self, X: np.ndarray, n_components: int, covariance_type: str) -> tuple:
        """One BLAS setting for the whole step (idle BLAS threads woken by any product spin
        against the blocks' threads), and the block plan made once: it sets BLAS's threads
        here and the blocks in :mod:`online_gmm._backends.numba_backend`."""
        n, d = X.shape
        plan = None
        work = n * n_components * d
        if kernel_kind(covariance_type) is not None:
            itemsize = X.dtype.itemsize
            plan = block_plan(n, n_components, d, itemsize)
            work = blas_work(n, n_components, d, itemsize, plan=plan)
        return blas_threads_for(work), plan

    # ------------------------------------------------------------------ the M-step
    def m_step(self, state: MixtureState, stats: BatchStats, *, eta: float, forgetting: str,
               covariance_type: str, reg_covar: float, consume: bool = False) -> MixtureState:
        kind = covariance(covariance_type).KERNEL_KIND
        if kind not in MSTEP_KINDS or not _float64_numpy(state, stats):
            return super().m_step(state, stats, eta=eta, forgetting=forgetting,
                                  covariance_type=covariance_type, reg_covar=reg_covar,
                                  consume=consume)
        return _m_step_kernel(state, stats, eta, forgetting, kind, reg_covar)

    # ------------------------------------------------------------------ checks
    def all_finite(self, *arrays: np.ndarray) -> bool:
        return _checks.all_finite(*arrays)


_STATE_ARRAYS = ("weights", "means", "covariances", "mass", "nu", "moment")


def _float64_numpy(state: MixtureState, stats: BatchStats) -> bool:
    """Whether every array the M-step kernel reads is a float64 NumPy array."""
    f64 = np.float64
    for a in (stats.mass, stats.mean, stats.moment, *(getattr(state, n) for n in _STATE_ARRAYS)):
        if type(a) is not np.ndarray or a.dtype != f64:
            return False
    return True


def _m_step_kernel(state: MixtureState, stats: BatchStats, eta: float, forgetting: str,
                   kind: int, reg_covar: float) -> MixtureState:
    """:func:`online_gmm._math.mstep.m_step` for float64 NumPy ``diag``/``spherical``: the
    forgetting factors as there, the rest in one numba call
    (:func:`online_gmm._backends.mstep_kernels.forgetting_m_step`): the same values, to rounding.
    Every returned array is new (none aliases ``state``'s) but ``tied_mass`` and ``seeded``,
    which the step does not change (as there)."""
    rho, rho_time = forgetting_factors(stats, eta, forgetting, np)
    K = state.means.shape[0]
    moment_b, covariances, moment = stats.moment, state.covariances, state.moment
    spherical = kind == _kernels.SPHERICAL
    if spherical:  # (K,) as (K, 1) columns
        moment_b, covariances, moment = (a.reshape(K, 1) for a in (moment_b, covariances,
                                                                    moment))
    weights, means, cov, prec_chol, mass, nu, moment, positive = (
        _mstep_kernels.forgetting_m_step(
            kind, rho, float(rho_time), float(reg_covar), stats.mass, stats.mean, moment_b,
            state.weights, state.means, covariances, state.mass, state.nu, moment,
        )
    )
    if not positive:
        raise ValueError(PD_MSG)
    if spherical:
        cov, prec_chol, moment = cov.reshape(K), prec_chol.reshape(K), moment.reshape(K)
    return MixtureState(  # (dataclasses.replace costs a few microseconds more)
        weights=weights,
        means=means,
        covariances=cov,
        precisions_cholesky=prec_chol,
        mass=mass,
        nu=nu,
        moment=moment,
        tied_mass=state.tied_mass,
        seeded=state.seeded,
    )


# ---------------------------------------------------------------------- block-parallel statistics
# The numba backend's statistics for the types with a block kernel (``diag``,
# ``spherical``, ``tied``): row blocks in parallel, each in reused buffers.
#
# A batch is cut into row blocks, run by one lane per numba thread (below). Each block runs
# the whole E-step and its statistics product on its lane's thread
# (:func:`online_gmm._backends.kernels.block_statistics`: single-threaded BLAS for the two
# matrix products, the numba row kernel between them, no GIL), so that
#
# - every core works even when each product is too small for BLAS's own threads
#   (scikit-learn's k-means does the same: OpenMP over row chunks, one-threaded BLAS inside);
# - nothing of size ``(n, K)`` or ``(n, D)`` is allocated per step: the buffers live in a
#   per-thread workspace across steps. Fresh multi-megabyte temporaries cost page faults at
#   every step (the allocator hands big blocks back to the OS), which at workload 1's size was
#   as much as the arithmetic itself.
#
# Each block returns its raw sums about the common shift (the mixture mean) in the data's dtype,
# as BLAS computes them; the blocks' sums are added in float64 in block order, so the result
# does not depend on which thread ran which block, and the centred moments are formed once at
# the end, as one chunk of the generic path forms them.
#
# Lanes: as many as numba has threads (``numba.set_num_threads``, ``NUMBA_NUM_THREADS``), but
# none below :data:`MIN_BLOCK_ROWS` rows, and one when the batch's work is below
# :data:`MIN_PARALLEL_WORK` (one lane runs on the calling thread: no parallel region starts).
# A batch is cut into blocks of equal rows, at most :data:`CACHE_BLOCK_BYTES` of buffers each
# (but never below :data:`MIN_CAPPED_ROWS` rows), which go to the lanes in turn; each lane
# reuses its own buffers from block to block, so a large batch (a warm-up's buffer, ``fit``'s
# data) runs cache-sized blocks in one parallel region. Rounds (each a parallel region, then
# a merge of centred moments) come only from scikit-learn's ``working_memory`` and from the
# blocks' own sums (:data:`MAX_ROUND_SUMS_BYTES`). Results are deterministic for a given
# plan; across thread counts they agree to rounding, as BLAS's own results do.

#: Fewest rows a block keeps (below it the products lose BLAS efficiency).
MIN_BLOCK_ROWS = 128
#: Below this many multiply-adds (rows x K x D) a batch runs on one lane (no parallel region).
MIN_PARALLEL_WORK = 2**21
#: A block's buffers hold at most this many bytes: a lane's block stays near its core's
#: cache from one pass to the next (fill, product, row kernel, product). Measured
#: (docs/benchmarks.md, "Blocks the size of a cache"): ``fit`` on 100,000 x 64, K = 64,
#: whose two blocks of 32,768 rows (119 MiB each) were allocated again at every E-step,
#: 4.17 -> 1.86 s (``python -m benchmarks.run --only fit``).
CACHE_BLOCK_BYTES = 4 * 2**20
#: ... and never below this many rows: at large K a row's buffers alone are tens of
#: kilobytes, and fewer rows lose the products' efficiency and multiply the blocks' sums
#: (each ``K x (2 D + 2)``, added at the end of the round). Every round ends in a pairwise
#: merge of (K, D) moments, whose cost grows with K x D as a row's does, so only rows
#: amortise it (2,048 rows at K = 8,192, D = 256 in 3 rounds had two merges of 45 ms each
#: beside 180 ms of E-step).
MIN_CAPPED_ROWS = 1024
#: A round's blocks' sums hold at most this many bytes (more blocks: more rounds), unless
#: that leaves fewer blocks than lanes.
MAX_ROUND_SUMS_BYTES = 16 * 2**20
#: Workspaces above this size (bytes, per thread) are not kept between steps.
MAX_CACHED_BYTES = 64 * 2**20
#: A block's statistics go entry by entry over its positive responsibilities where that
#: costs less than the dense product (:func:`~online_gmm._backends.kernels.sparse_pays`):
#: the others are exactly 0 (below ``exp``'s floor), as in the sharp posteriors of
#: high-dimensional embeddings. ``(sparse_cost, scan_cost)``: a multiply-add of the sparse
#: sums, and their scan for positive entries per entry, in multiply-adds of the dense
#: product: about 20 and 37 measured on one thread (``python -m
#: benchmarks.sparse_statistics``: K = 8,192, 258 columns, float32, 1,024 rows: 6.1 ms
#: one-hot, 20.2 ms at one in 64 positive, 55.5 ms at one in 16, the dense product 35-42
#: ms whatever the zeros), set higher: where in doubt, dense. ``(0, 0)``: always dense.
SPARSE_COSTS = (30, 48)


#: Each covariance type's code in the block kernels (None: no block kernel).
_KERNEL_KINDS = {t: covariance(t).KERNEL_KIND for t in COVARIANCE_TYPES}


def kernel_kind(covariance_type: str) -> int | None:
    """The covariance type's code in the block kernels (None: it has none)."""
    return _KERNEL_KINDS[covariance_type]


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


def block_plan(n: int, n_components: int, n_features: int,
               itemsize: int) -> tuple[int, int, int]:
    """``(lanes, rows per block, blocks per round)`` for an ``n``-row batch."""
    work = n * n_components * n_features
    wanted = n_threads() if work >= MIN_PARALLEL_WORK else 1
    lanes = max(1, min(wanted, n // MIN_BLOCK_ROWS))
    row_bytes = itemsize * (n_components + 6 * n_features + 6)
    # every lane's buffers within working_memory; a block within CACHE_BLOCK_BYTES unless
    # that is below MIN_CAPPED_ROWS rows
    within = chunk_rows(n, row_bytes)
    cap = min(-(-within // lanes), max(MIN_CAPPED_ROWS, CACHE_BLOCK_BYTES // row_bytes))
    # blocks of equal rows, as many as a multiple of the lanes (no lane waits on a last,
    # larger share)
    n_blocks = lanes * -(-n // (lanes * max(1, cap)))
    rows = max(1, -(-n // max(1, n_blocks)))
    # a round's rows within working_memory too (a caller's log-densities are kept a round
    # at a time), and its blocks' sums within MAX_ROUND_SUMS_BYTES
    sums_bytes = 8 * (n_components * (2 * n_features + 2) + n_features * n_features)
    used = -(-n // rows)  # the blocks that hold rows
    fits = used if within >= n else max(1, within // rows)
    per_round = min(used, fits, MAX_ROUND_SUMS_BYTES // sums_bytes)
    if per_round < used:  # rounds of whole turns of the lanes
        per_round -= per_round % lanes
    return lanes, rows, max(lanes, per_round)


def blas_work(n: int, n_components: int, n_features: int, itemsize: int,
              plan: tuple[int, int, int] | None = None) -> int:
    """The work to size BLAS's thread pool by (see :func:`~online_gmm._math.array_api.
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
    """``(rhs, U, b)`` for the block kernel (see :mod:`online_gmm._backends.kernels`); ``rhs``
    is the transpose of a C-ordered (K, C) array, as the numba layout kernels write it."""
    kind = kernel_kind(p.covariance_type)
    K, d = p.n_components, p.shift.shape[0]
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
                     plan: tuple[int, int, int] | None = None,
                     on_log_density: Any = None) -> BatchStats:
    """:func:`online_gmm._math.estep.chunked_statistics` for NumPy input, ``diag``/``spherical``/
    ``tied``, from a :class:`~online_gmm._math.estep.Prepared` (the same statistics, computed
    block-parallel). ``plan``: as for :func:`state_statistics`; ``on_log_density``: as for
    ``chunked_statistics`` (called once per round of blocks)."""
    rhs, U, b = _extended(p, X.dtype)
    return _run(X, w, inv_temp, p.covariance_type, p.shift, p.shift_dt, rhs, U, b, p.s, p.const,
                plan, on_log_density)


def state_statistics(state, covariance_type: str, X: np.ndarray, w: np.ndarray,
                     inv_temp: float, plan: tuple[int, int, int] | None = None,
                     on_log_density: Any = None) -> BatchStats:
    """The same from the mixture state: for ``diag``/``spherical`` one numba call
    (``kernels.prepare_diag``/``prepare_spherical``) writes the per-batch layout into
    reused buffers, instead of :func:`online_gmm._math.estep.prepare`'s array operations.

    ``plan``: the batch's :func:`block_plan`, from a caller that has already set BLAS's
    threads for it (``em_step``: one setting for the whole step); ``None``: planned and set
    here."""
    kind = kernel_kind(covariance_type)
    if kind == TIED:
        p = state_prepared(state, covariance_type, X.dtype, np)
        return batch_statistics(X, w, p, inv_temp, plan, on_log_density)
    K, d = state.means.shape
    dt = X.dtype
    buf = _local_layout(("layout", kind, K, d, dt.str), _layout_shapes, kind, K, d, dt)
    pc = state.precisions_cholesky
    out = (LOG_2PI, buf["rhs_t"], buf["b"], buf["s"], buf["const"], buf["shift_dt"])
    if kind == DIAG:  # log|U| computed in the kernel
        shift = _layout.prepare_diag(state.weights, state.means, pc, None, *out)
    else:
        shift = _layout.prepare_spherical(state.weights, state.means, pc, *out)
    return _run(X, w, inv_temp, covariance_type, shift, buf["shift_dt"], buf["rhs_t"].T,
                _dummy(dt, 2), buf["b"], buf["s"], buf["const"], plan, on_log_density)


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


def _run_shapes(kind, lanes, rows, n_blocks, K, d, n_cols, dt, unit) -> dict[str, tuple]:
    """The buffers of a plan: each lane's working buffers, each block's sums."""
    tied = kind == TIED
    f64 = np.float64
    return {
        "A": ((lanes, rows, n_cols), dt), "G": ((lanes, rows, K), dt),
        "ll": ((lanes, rows), dt), "S": ((n_blocks, K, n_cols), dt),
        "loglik": ((n_blocks,), f64), "a0": ((rows,), dt),
        "B": ((lanes, rows, n_cols) if not unit else (1, 1, 1), dt),
        "Z": ((lanes, rows, d) if tied else (1, 1, 1), dt),
        "S64": ((n_blocks, K, n_cols) if tied and dt == np.float32 else (1, 1, 1), f64),
        "x64": ((lanes, rows, d) if tied else (1, 1, 1), f64),
        "T2": ((n_blocks, d, d) if tied else (1, 1, 1), f64),
    }


def _run(X, w, inv_temp, ct, shift, shift_dt, rhs, U, b, s, const, plan=None,
         on_log_density=None) -> BatchStats:
    n, d = X.shape
    K = const.shape[0]
    dt = X.dtype
    kind = kernel_kind(ct)
    blas_set = plan is not None
    lanes, rows, n_blocks = plan if blas_set else block_plan(n, K, d, dt.itemsize)
    unit = bool(_checks.unit_weights(w))
    # sum_n w_n: n exactly when every weight is one
    weight = float(n) if unit else float(np.sum(w, dtype=np.float64))
    n_cols = layout(kind, d)[2]
    buf = _workspace().get(
        (kind, lanes, rows, n_blocks, K, d, dt.str, unit),
        lambda: _run_shapes(kind, lanes, rows, n_blocks, K, d, n_cols, dt, unit),
    )
    buf["a0"][:] = 0
    floor = EXP_FLOOR_F32 if dt == np.float32 else EXP_FLOOR_F64
    per_round = n_blocks * rows
    keep = on_log_density is not None
    # the caller's own (n, K) array, written directly when it offers one (``.array``)
    own = getattr(on_log_density, "array", None)
    own = own if (isinstance(own, np.ndarray) and own.shape == (n, K) and own.dtype == dt
                  and own.flags.c_contiguous) else None
    L = (_dummy(dt, 2) if not keep else own if own is not None
         else np.empty((min(per_round, n), K), dtype=dt))
    loglik = 0.0
    parts = []
    with nullcontext() if blas_set else blas_threads_for(
        0 if lanes > 1 else n * K * d  # as blas_work
    ):
        for lo in range(0, n, per_round):
            hi = min(lo + per_round, n)
            whole = hi - lo == n
            _kernels.block_statistics(
                X if whole else X[lo:hi], w if whole else w[lo:hi], unit, kind, shift_dt, rhs,
                U, buf["a0"], b, s, const, float(inv_temp), floor, buf["A"], buf["B"],
                buf["Z"], buf["G"], buf["ll"], buf["S"], buf["S64"], buf["x64"], buf["T2"],
                buf["loglik"], L if own is None else L[lo:hi], keep, SPARSE_COSTS,
            )
            if keep:
                on_log_density(slice(lo, hi), L[:hi - lo] if own is None else L[lo:hi])
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
        mass, mean, moment = _layout.centred_moments(
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
