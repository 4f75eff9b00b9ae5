"""The warm-up: the start of a stream, given the care batch EM gives it (the contract's
"Warm-up").

While the model is seeded from data, the first ``warmup_size`` weighted rows are buffered
(:class:`Warmup`). Until the buffer is full the ordinary step runs on a *provisional* state,
so that the model can already predict; on the full buffer :func:`warm_state` runs
``restarts`` restarts and keeps the best. The plain mixture seeded by k-means++ (the
default): every restart draws greedy k-means++ seeds and runs Lloyd's iterations from them
on the buffer (at most :data:`SEEDING_ROWS` rows of it), all restarts at once in numba
kernels for NumPy rows (:mod:`online_gmm._backends.seeding_kernels`); the restart of lowest
inertia then takes :data:`RESTART_EM_ITERATIONS` EM iteration at T = 1 on the whole buffer,
its statistics recomputed from scratch (no seed prior). Other ``init_params`` and the
variational mixture: each restart seeds, runs Lloyd (scikit-learn's ``KMeans``) and a few
EM iterations, and the one of highest buffer log-likelihood is kept. The stream goes on
from the kept state's statistics (``n_k = nu_k =`` its masses, summing to the buffer's
weight); the provisional state is discarded, so no row is counted twice. With
``warmup_size="auto"`` the buffer then keeps growing, to :data:`AUTO_MAX_ROWS`: each time
the rows held double, :func:`refined_state` recomputes the state from them by EM
iterations from its parameters, stopped once the buffer's mean log-likelihood changes by
less than :func:`refine_tol` (the buffer holds every row stepped on, so again no row is
counted twice); a refinement whose first iteration changes it by less than that ends the
warm-up (:func:`at_mark`). Only on a stationary stream (forgetting rate 0) and when the
buffer holds every row (no ``gather`` hook). A variational mixture's iterations are
variational ones (its E-step, :func:`online_gmm._em.expectation.statistics`), and its
refinements run all their iterations. Plain functions over the backend, as the step itself.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .._math.array_api import asarray_like, blas_threads_for, device, take_index, to_numpy
from .._math.covariance import covariance
from .._math.state import MixtureState, empty_state
from . import moves
from .batch import EM_ITERATIONS, beats, em_iterations, finite
from .seeding import (
    LLOYD_ITERATIONS,
    _centred,
    _cumsum,
    _pairwise_sq_on_device,
    batch_variance,
    lloyd,
    reseeded_at,
    seed_from_sample,
    seeded_afresh,
)

#: EM iterations of each refinement at most (at each doubling of the rows held, with
#: "auto"; fewer at :func:`refine_tol`).
REFINE_ITERATIONS = 5
#: The buffer holds at most this many bytes (rows x features x the data's itemsize).
MAX_BUFFER_BYTES = 512 * 2**20
#: ``warmup_size="auto"``: this many rows per component, at most :data:`AUTO_MAX_ROWS`
#: (measured, ``docs/benchmarks.md``, "Quality": the earlier the warm-up, the more of a
#: short stream it serves; 64 rows per component are enough for its restarts).
AUTO_ROWS_PER_COMPONENT = 64
AUTO_MAX_ROWS = 32768
#: The refinement's tolerance on the buffer's mean log-likelihood, in nats per row and per
#: feature (:func:`refine_tol`).
TOL_PER_FEATURE = 1e-3
#: The plain mixture's restarts seed and run Lloyd on at most this many rows of the buffer
#: (a random sample of a larger one), or :data:`SEEDING_ROWS_PER_COMPONENT` rows a
#: component if more: their cost is bounded to K = 1,024 (``docs/benchmarks.md``, "The
#: warm-up's cost"), and above it grows as ``K^2`` (as the whole buffer's did).
SEEDING_ROWS = 4096
SEEDING_ROWS_PER_COMPONENT = 4
#: k-means++ candidates a seed: this many times scikit-learn's ``2 + log K`` (measured: the
#: restarts' optimum is the seeds', and more candidates find better ones).
TRIALS_FACTOR = 2
#: EM iterations of the best restart on the whole buffer (the refinement at each doubling
#: goes on from there).
RESTART_EM_ITERATIONS = 1
#: Rows of a block of Lloyd's distance products in other namespaces than NumPy.
_LLOYD_BLOCK = 2048


def resolve_size(warmup_size: int | str, n_components: int) -> int:
    """The rows the restarts run on, for ``warmup_size`` (an int, or "auto")."""
    if warmup_size == "auto":
        return min(AUTO_MAX_ROWS, AUTO_ROWS_PER_COMPONENT * n_components)
    return int(warmup_size)


def resolve_limit(warmup_size: int | str) -> int:
    """The rows the buffer grows to (refined at each doubling): :data:`AUTO_MAX_ROWS` with
    "auto"; an int size has no refinement (0)."""
    return AUTO_MAX_ROWS if warmup_size == "auto" else 0


def for_stream(warmup_size: int | str, restarts: int, n_components: int, n_features: int,
               itemsize: int, refine: bool = True) -> Warmup | None:
    """The warm-up of a new stream of ``n_features``-wide rows of ``itemsize`` bytes, for
    the parameter ``warmup_size`` (an int, or "auto"): :func:`start` at
    :func:`resolve_size` and :func:`resolve_limit` (None when ``warmup_size`` is 0). What
    the estimator and the bridge both start from; ``refine=False``: the restarts only (no
    buffer beyond their rows, whatever ``warmup_size``)."""
    return start(resolve_size(warmup_size, n_components), restarts, n_features, itemsize,
                 resolve_limit(warmup_size) if refine else 0)


def sample_size(warmup_size: int | str) -> int:
    """The rows ``fit`` runs the restarts on by default: the most of "auto", or the size."""
    return AUTO_MAX_ROWS if warmup_size == "auto" else int(warmup_size)


@dataclass(frozen=True, eq=False)
class Warmup:
    """The warm-up's buffer: the first ``n_rows`` rows of ``X`` and ``w`` (positive weights
    only, in the data's namespace) are the rows seen so far, until ``size`` rows are held;
    then :func:`warm_state`. ``X`` and ``w`` are allocated once, at the buffer's size: a
    step writes only past ``n_rows``, so the rows of an earlier (committed) buffer never
    change, whatever happens to the step that extends it."""

    size: int
    restarts: int = 3
    X: Any = None
    w: Any = None
    n_rows: int = 0
    #: the rows the buffer grows to; each doubling of the rows held refines the warm state
    #: (:func:`refined_state`); ``<= size``: no refinement
    limit: int = 0
    #: the warm state exists: the next full mark (``size``) refines it
    refining: bool = False
    #: who wrote the arrays' rows so far (:class:`_Claim`, shared by the warm-ups of one
    #: allocation: a copied model's and the original's); None: not shared
    claim: Any = field(default=None, compare=False, repr=False)

    @property
    def capacity(self) -> int:
        """The rows the buffer is allocated for."""
        return max(self.size, self.limit)

    def replace(self, **changes) -> Warmup:
        return replace(self, **changes)

    def __eq__(self, other: object) -> bool:
        """The same buffer: the same size, restarts and rows held (the free space aside)."""
        if not isinstance(other, Warmup):
            return NotImplemented
        if ((self.size, self.restarts, self.n_rows, self.limit, self.refining)
                != (other.size, other.restarts, other.n_rows, other.limit, other.refining)):
            return False
        if self.n_rows == 0:
            return True
        n = self.n_rows
        return bool(np.array_equal(to_numpy(self.X[:n, ...]), to_numpy(other.X[:n, ...]))
                    and np.array_equal(to_numpy(self.w[:n]), to_numpy(other.w[:n])))

    __hash__ = None  # type: ignore[assignment]

    def __getstate__(self) -> dict:  # only the rows held, not the free space
        state = dict(self.__dict__)
        if self.X is not None:
            state["X"], state["w"] = self.X[: self.n_rows, ...], self.w[: self.n_rows]
        state["claim"] = None  # (a copy owns its rows: it reallocates before writing)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)


class _Claim:
    """The rows of a buffer's arrays written so far by any of the warm-ups sharing them:
    a warm-up of ``n`` rows writes past them only if nobody did (its own rows are then the
    arrays' first ``n``); otherwise (a copy of the model, ``copy.copy``, wrote there, or a
    failed step did) it writes into a copy of its rows: copy on write."""

    __slots__ = ("lock", "rows")

    def __init__(self, rows: int = 0) -> None:
        self.rows = rows
        self.lock = threading.Lock()

    def take(self, n: int, k: int) -> bool:
        """Claim rows ``n`` to ``n + k``; False if another warm-up wrote past ``n``."""
        with self.lock:
            if self.rows > n:
                return False
            self.rows = n + k
            return True


def start(warmup_size: int, restarts: int, n_features: int, itemsize: int,
          limit: int = 0) -> Warmup | None:
    """The warm-up of a new stream (None when ``warmup_size`` is 0): its buffer (of
    ``max(warmup_size, limit)`` rows) capped at :data:`MAX_BUFFER_BYTES`."""
    if warmup_size <= 0:
        return None
    cap = max(1, MAX_BUFFER_BYTES // max(1, n_features * itemsize))
    return Warmup(size=int(min(warmup_size, cap)), restarts=int(restarts),
                  limit=int(min(limit, cap)))


def buffer(warmup: Warmup, X: Any, w: Any, xp: Any) -> tuple[Warmup, Any, Any]:
    """``(warmup, X_rest, w_rest)``: the batch's positive-weight rows added to the buffer up
    to its size; the rows past it (to be stepped on the warm state) come back."""
    w_host = to_numpy(w)
    keep = np.flatnonzero(w_host > 0)
    n, capacity = warmup.n_rows, warmup.capacity
    take, rest = keep[: capacity - n], keep[capacity - n:]
    BX, Bw, claim = warmup.X, warmup.w, warmup.claim
    if (BX is None or BX.shape[0] < capacity or BX.dtype != X.dtype
            or (take.size and claim is not None and not claim.take(n, int(take.size)))):
        # (first rows, a buffer unpickled without its free space, or another warm-up
        # wrote past our rows): allocated once, then written by this warm-up's successors
        claim = _Claim(n + int(take.size))
        dev = device(X)
        new_X = xp.zeros((capacity, X.shape[1]), dtype=X.dtype, device=dev)
        new_w = xp.zeros((capacity,), dtype=w.dtype, device=dev)
        if n:
            new_X[:n, ...] = xp.astype(BX[:n, ...], X.dtype)
            new_w[:n] = xp.astype(Bw[:n], w.dtype)
        BX, Bw = new_X, new_w
    if take.size:
        BX[n : n + take.size, ...] = _rows(X, take, xp)
        Bw[n : n + take.size] = _rows(w, take, xp)
    new = warmup.replace(X=BX, w=Bw, n_rows=n + int(take.size), claim=claim)
    return new, _rows(X, rest, xp), _rows(w, rest, xp)


def _rows(a: Any, idx: np.ndarray, xp: Any) -> Any:
    """Rows ``idx`` (sorted, distinct) of ``a``: a slice of a C-ordered NumPy ``a`` when
    they are consecutive (every weight positive, the usual batch: no gathered copy; a
    slice of another layout would be a new layout for the kernels), else gathered."""
    consecutive = idx.size and int(idx[-1]) - int(idx[0]) == idx.size - 1
    if consecutive and isinstance(a, np.ndarray) and a.flags.c_contiguous:
        return a[int(idx[0]) : int(idx[-1]) + 1, ...]
    return xp.take(a, take_index(idx, a, xp), axis=0)


def is_full(warmup: Warmup) -> bool:
    """Whether the rows held reached the next mark (``size``)."""
    return warmup.n_rows >= warmup.size


def after(warmup: Warmup) -> Warmup | None:
    """The warm-up once its mark is reached: the next mark (the rows held doubled, at most
    ``limit``) for a refinement, or None (done) when the buffer is at its limit."""
    n = warmup.n_rows
    if n >= warmup.limit:
        return None
    return warmup.replace(size=min(warmup.limit, 2 * n), refining=True)


def refined_state(state: MixtureState, Xb: Any, wb: Any, *, config: Any, backend: Any,
                  n_iter: int | None = None, tol: float | None = None,
                  rng: np.random.RandomState | None = None,
                  trace: list | None = None) -> MixtureState | None:
    """The state recomputed from the buffer: ``n_iter`` (default
    :data:`REFINE_ITERATIONS`) EM iterations at T = 1 from
    ``state``'s parameters (fewer once the mean log-likelihood changes by less than
    ``tol``), each M-step from no evidence (so the state's evidence is the buffer's, every
    row once); None if they fail or end non-finite. With ``rng``, a variational mixture
    (``config.prior``) then tries merge moves and a birth move (after a reorder move):
    :mod:`online_gmm._em.moves`. ``trace``: a list the mean buffer log-likelihood of each
    iteration's E-step is appended to."""
    n_iter = REFINE_ITERATIONS if n_iter is None else n_iter
    lls = []
    try:
        for _ in range(max(1, n_iter)):
            state, loglik = em_iterations(state, Xb, wb, config, backend, 1)
            lls.append(loglik)
            if tol is not None and len(lls) > 1 and abs(lls[-1] - lls[-2]) < tol:
                break
    except (ValueError, FloatingPointError):
        return None
    finally:
        if trace is not None:
            trace.extend(lls)
    if not finite(state, backend):
        return None
    if config.prior is None or rng is None:
        return state
    moved = moves.with_merges(state, Xb, wb, config=config, backend=backend)
    moved = moves.with_births(moved, Xb, wb, config=config, rng=rng, backend=backend)
    return moved if finite(moved, backend) else state


def refine_tol(config: Any, n_features: int) -> float | None:
    """The refinement's tolerance on the buffer's mean log-likelihood: :data:`TOL_PER_FEATURE`
    nats per row and feature (a log-likelihood is a sum over the features); None (no early
    stop) for a variational mixture, whose moves need its iterations."""
    return None if config.prior is not None else TOL_PER_FEATURE * n_features


def at_mark(stepped: MixtureState, warmup: Warmup, *, config: Any,
            rng: np.random.RandomState, backend: Any) -> tuple[MixtureState | None, bool]:
    """The state at a full mark of ``warmup``, and whether the warm-up is over.

    At the first mark, the restarts' :func:`warm_state` on the buffer; at a later one (the
    rows held doubled), :func:`refined_state` of ``stepped`` on all of them, its iterations
    stopped once the mean log-likelihood changes by less than :func:`refine_tol`. A
    refinement whose first iteration already changed it by less than that found the
    state where batch EM on the buffer would leave it: the warm-up is over (the buffer is
    freed; the later marks would refine nothing). None: the restarts or the refinement
    failed (the caller goes on from ``stepped``)."""
    n = warmup.n_rows
    Xb, wb = warmup.X[:n, ...], warmup.w[:n]
    if not warmup.refining:
        return warm_state(Xb, wb, config=config, restarts=warmup.restarts, rng=rng,
                          backend=backend), False
    tol = refine_tol(config, Xb.shape[1])
    trace: list = []
    state = refined_state(stepped, Xb, wb, config=config, backend=backend, rng=rng, tol=tol,
                          trace=trace)
    settled = tol is not None and len(trace) == 2 and abs(trace[1] - trace[0]) < tol
    return state, settled


def fitted_state(state: MixtureState, Xb: Any, wb: Any, *, config: Any, backend: Any,
                 first: int, n_iter: int, tol: float,
                 rng: np.random.RandomState) -> MixtureState | None:
    """``fit``'s refinement of the restarts' ``state`` (on ``first`` rows) on its whole
    sample ``Xb``: :func:`refined_state` (``n_iter`` iterations to ``tol``, then a variational
    mixture's moves) as many times as a stream's buffer would double from ``first`` rows to
    the sample's (each birth adds at most a third of the live components, and each is one
    draw: a stream tries one at each doubling); None if the first fails."""
    rounds = 1
    if config.prior is not None:
        while first * 2 ** (rounds + 1) <= Xb.shape[0]:
            rounds += 1
    out = None
    for _ in range(rounds):
        refined = refined_state(state, Xb, wb, config=config, backend=backend, n_iter=n_iter,
                                tol=tol, rng=rng)
        if refined is None:
            break
        state = out = refined
    return out


def warm_state(Xb: Any, wb: Any, *, config: Any, restarts: int, rng: np.random.RandomState,
               backend: Any) -> MixtureState:
    """The best of ``restarts`` restarts on the buffer ``Xb`` (n, D) with weights ``wb``: a
    state whose evidence is the buffer's statistics under its parameters; None if every
    restart failed (data too extreme for batch EM: the caller keeps its state).

    The plain mixture seeded by k-means++ (the default): :func:`_seeded_restarts`. Other
    ``init_params`` and the variational mixture: each restart seeds, runs Lloyd and then
    EM iterations on the whole buffer, and the one of highest buffer log-likelihood (of its
    last E-step) is kept."""
    if config.prior is None and config.init_params == "k-means++":
        return _seeded_restarts(Xb, wb, config, restarts, rng, backend)
    best = None
    for _ in range(max(1, restarts)):
        try:
            state, loglik = _restart(Xb, wb, config, rng, backend)
        except (ValueError, FloatingPointError):  # an ill-defined restart (extreme data)
            continue
        if not finite(state, backend):
            continue
        # a later restart must be better by more than rounding: restarts that reach the
        # same optimum (in another order of the components) keep the first, on any backend
        if best is None or beats(loglik, best[1], Xb.dtype, backend.xp):
            best = (state, loglik)
    return None if best is None else best[0]


def _restart(Xb, wb, config, rng, backend) -> tuple[MixtureState, float]:
    xp = backend.xp
    K, D = config.n_components, Xb.shape[1]
    ct = config.covariance_type
    state = empty_state(K, D, ct, xp, device(Xb))
    state = seed_from_sample(state, Xb, wb, config=config, rng=rng, backend=backend)
    seeded = np.flatnonzero(to_numpy(state.seeded))
    if seeded.size == K and K > 1:
        means = lloyd(Xb, wb, state.means, LLOYD_ITERATIONS, xp)
        state = reseeded_at(state, means, Xb, wb, config, backend)
    n_iter = EM_ITERATIONS if config.warmup_iterations is None else config.warmup_iterations
    return em_iterations(state, Xb, wb, config, backend, n_iter, from_seeds=True)


# ---------------------------------------------------------------------- the seeded restarts
def seed_trials(n_components: int) -> int:
    """Candidates of each k-means++ seed: :data:`TRIALS_FACTOR` times scikit-learn's
    ``2 + log K``."""
    return TRIALS_FACTOR * (2 + int(math.log(max(1, n_components))))


def _seeded_restarts(Xb, wb, config, restarts, rng, backend) -> MixtureState | None:
    """The plain mixture's restarts: on the seeding rows (the buffer, or a random sample
    of :data:`SEEDING_ROWS` of a larger one, 4 a component if more) every restart draws
    greedy k-means++ seeds
    (:func:`greedy_seeds`, :func:`seed_trials` candidates a seed) and runs Lloyd's
    iterations from them (:func:`lloyd_restarts`); the restart of lowest inertia (ties
    within rounding keep the first) is seeded at its centres with the residual variance
    they leave, and takes :data:`RESTART_EM_ITERATIONS` EM iterations on the whole buffer
    (its state: the buffer's statistics); if they fail, the next best. With as many
    components as seeding rows or more, every row seeds one (in a random order) and there
    is nothing to restart."""
    xp = backend.xp
    K = config.n_components
    ct = config.covariance_type
    n = Xb.shape[0]
    idx = _sample_rows(n, max(SEEDING_ROWS, SEEDING_ROWS_PER_COMPONENT * K), rng)
    if idx is None:
        Xs, ws = Xb, wb
    else:
        Xs = xp.take(Xb, take_index(idx, Xb, xp), axis=0)
        ws = xp.take(wb, take_index(idx, wb, xp), axis=0)
    Xc, xx, ref = _centred(Xs, xp)
    w64 = xp.astype(ws, xp.float64)
    w_host = to_numpy(w64)
    positive = np.flatnonzero(w_host > 0)
    if positive.size == 0:
        return None
    if positive.size <= K:  # a seed per row
        seeds = rng.permutation(positive)[None, :]
        C = xp.expand_dims(xp.take(Xc, take_index(seeds[0], Xc, xp), axis=0), axis=0)
        labels = np.arange(seeds.shape[1])[None, :]
        rows = take_index(seeds[0], Xc, xp)
        Xc, xx, w64 = (xp.take(a, rows, axis=0) for a in (Xc, xx, w64))
        order = [0]
    else:
        u = rng.random_sample((max(1, restarts), K, seed_trials(K)))
        fast = backend.name == "numba"
        seeds = greedy_seeds(Xc, xx, w_host, u, xp, fast)
        C = xp.stack([xp.take(Xc, take_index(s, Xc, xp), axis=0) for s in seeds])
        C, inertia, labels = lloyd_restarts(Xc, xx, w64, C, LLOYD_ITERATIONS, xp, fast)
        order = _by_inertia(inertia, Xb.dtype, xp)
    cov = covariance(ct)
    total = xp.sum(w64)
    for r in order:
        centres = C[r, ...]
        residual = Xc - xp.take(centres, take_index(np.asarray(labels[r]), centres, xp), axis=0)
        var = cov.weighted_variance(residual, w64, total, xp)
        if not cov.has_spread(var, xp):
            var = batch_variance(Xs, ws, ct, xp)
        state = seeded_afresh(K, centres + ref, var, config, backend)
        try:
            state, _ = em_iterations(state, Xb, wb, config, backend, RESTART_EM_ITERATIONS,
                                     from_seeds=True)
        except (ValueError, FloatingPointError):  # an ill-defined restart (extreme data)
            continue
        if finite(state, backend):
            return state
    return None


def _by_inertia(inertia: np.ndarray, dtype: Any, xp: Any) -> list[int]:
    """The restarts from the lowest inertia: one lower than the best so far by no more than
    rounding (:func:`~online_gmm._em.batch.beats`) ranks after it, on any backend."""
    ranked: list[int] = []
    for r in range(len(inertia)):
        at = len(ranked)
        while at > 0 and beats(-float(inertia[r]), -float(inertia[ranked[at - 1]]), dtype, xp):
            at -= 1
        ranked.insert(at, r)
    return ranked


def _sample_rows(n: int, m: int, rng: np.random.RandomState) -> np.ndarray | None:
    """Sorted indices of ``m`` of ``n`` rows drawn without replacement; None (no draw):
    all of them."""
    if m >= n:
        return None
    return np.sort(rng.choice(n, size=m, replace=False))


def greedy_seeds(Xc, xx, w_host: np.ndarray, u: np.ndarray, xp,
                 fast: bool = False) -> np.ndarray:
    """Greedy k-means++ (Arthur & Vassilvitskii's D^2 sampling with scikit-learn's local
    trials) of ``u.shape[0]`` restarts on the rows ``Xc`` (about their mean; ``xx`` their
    squared norms) with host weights ``w_host`` (all positive): restart ``r`` draws its
    first seed by weight with ``u[r, 0, 0]``, then for each next seed ``u.shape[2]``
    candidates by D^2 (the uniforms ``u[r, j]``) and keeps the one that leaves the lowest
    potential ``sum w min_c |x - c|^2`` (scored in float32; the distances to the seed kept
    in float64). Rows all on seeds: by weight among the rows not taken. Host indices
    (R, k), ``k`` the seeds every restart found. ``fast`` (the numba backend's NumPy rows):
    one kernel for all restarts
    (:func:`online_gmm._backends.seeding_kernels.greedy_kmeanspp`); else the same steps in
    the rows' own namespace."""
    R, n_new, _ = u.shape
    if fast:
        from .._backends.seeding_kernels import greedy_kmeanspp

        out = np.zeros((R, n_new), dtype=np.int64)
        with blas_threads_for(0):  # (small products: one BLAS thread)
            count, _ = greedy_kmeanspp(Xc, xx, np.ascontiguousarray(w_host, np.float64),
                                       np.ascontiguousarray(u), out)
        return out[:, : int(count.min())]
    one = _greedy_one if isinstance(Xc, np.ndarray) else _greedy_one_on_device
    seeds = [one(Xc, xx, w_host, u[r], xp) for r in range(R)]
    k = min(len(s) for s in seeds)
    return np.stack([s[:k] for s in seeds])


def _sq_to_rows(Xc, xx, idx, xp, dtype=None) -> np.ndarray:
    """Host (len(idx), n) squared distances of rows ``idx`` to every row (norm form,
    floored at 0; in ``dtype``, default float64)."""
    take = take_index(np.asarray(idx, dtype=np.int64), Xc, xp)
    X, x2 = (Xc, xx) if dtype is None else (xp.astype(Xc, dtype), xp.astype(xx, dtype))
    C = xp.take(X, take, axis=0)
    d2 = (xp.reshape(xp.take(x2, take, axis=0), (-1, 1)) - 2.0 * (X @ C.T).T) + x2
    return np.maximum(to_numpy(d2).astype(np.float64), 0.0)


def _greedy_one(Xc, xx, w_host: np.ndarray, u: np.ndarray, xp) -> np.ndarray:
    """:func:`greedy_seeds` of one restart in the namespace ``xp`` (``u``: its uniforms)."""
    m = w_host.shape[0]
    last = int(np.flatnonzero(w_host > 0)[-1])
    cw = np.cumsum(w_host)
    first = min(int(np.searchsorted(cw, u[0, 0] * cw[-1], side="right")), last)
    chosen = [first]
    closest = _sq_to_rows(Xc, xx, [first], xp)[0]
    taken = np.zeros(m, dtype=bool)
    taken[first] = True
    for j in range(1, u.shape[0]):
        cs = np.cumsum(w_host * closest)
        if cs[-1] > 0:
            lastp = int(np.flatnonzero(w_host * closest > 0)[-1])
            cand = np.minimum(np.searchsorted(cs, u[j] * cs[-1], side="right"), lastp)
            d_cand = _sq_to_rows(Xc, xx, cand, xp, dtype=xp.float32)
            potential = (np.minimum(closest[None, :], d_cand) * w_host).sum(axis=1)
            idx = int(cand[int(np.argmin(potential))])
        else:  # every row sits on a seed: by weight, among the rows not taken
            p = np.where(taken, 0.0, w_host)
            cp = np.cumsum(p)
            if not cp[-1] > 0:
                break
            lastp = int(np.flatnonzero(p > 0)[-1])
            idx = min(int(np.searchsorted(cp, u[j, 0] * cp[-1], side="right")), lastp)
        chosen.append(idx)
        taken[idx] = True
        closest = np.minimum(closest, _sq_to_rows(Xc, xx, [idx], xp)[0])
    return np.asarray(chosen, dtype=np.int64)


def _greedy_one_on_device(Xc, xx, w_host: np.ndarray, u: np.ndarray, xp) -> np.ndarray:
    """:func:`_greedy_one` on the rows' device (a GPU) without a host read per seed: the
    uniforms are copied once, every step (the cumulated potentials, the search, the
    candidates' float32 potentials, the choice) stays on the device, and the seeds come
    to the host once at the end. Where every row sits on a seed the candidates are drawn
    by weight among the rows not taken and the first is kept, as the host's step does."""
    f64, f32 = xp.float64, xp.float32
    dev = device(Xc)
    n = w_host.shape[0]
    w = asarray_like(np.asarray(w_host, dtype=np.float64), Xc, xp, dtype=f64)
    U = asarray_like(u, Xc, xp, dtype=f64)  # (k, trials) (drawn on the device, or copied)
    X32, x2 = xp.astype(Xc, f32), xp.astype(xx, f32)
    rows = xp.arange(n, device=dev)
    last = int(np.flatnonzero(w_host > 0)[-1])  # (host weights: no read)

    cw = _cumsum(w, xp)
    first = xp.minimum(xp.searchsorted(cw, U[0:1, 0] * cw[-1], side="right"),
                       xp.full((1,), last, dtype=xp.int64, device=dev))
    chosen = [first]
    closest = _pairwise_sq_on_device(first, (Xc, xx, None), xp)[0, ...]
    taken = rows == first
    for j in range(1, U.shape[0]):
        pot = w * closest
        cs = _cumsum(pot, xp)
        spread = cs[-1] > 0
        p = xp.where(spread, pot, xp.where(taken, xp.zeros_like(w), w))
        cp = _cumsum(p, xp)
        lastp = xp.max(xp.where(p > 0, rows, xp.zeros_like(rows)))
        cand = xp.minimum(xp.searchsorted(cp, U[j, :] * cp[-1], side="right"), lastp)
        C32 = xp.take(X32, cand, axis=0)
        d_cand = xp.reshape(xp.take(x2, cand, axis=0), (-1, 1)) - 2.0 * (X32 @ C32.T).T + x2
        d_cand = xp.astype(xp.maximum(d_cand, xp.zeros_like(d_cand)), f64)
        potential = xp.sum(xp.minimum(closest[None, :], d_cand) * w, axis=1)
        best = xp.where(spread, xp.argmin(potential), xp.zeros_like(xp.argmin(potential)))
        idx = xp.take(cand, xp.reshape(best, (1,)), axis=0)
        chosen.append(idx)
        taken = taken | (rows == idx)
        closest = xp.minimum(closest, _pairwise_sq_on_device(idx, (Xc, xx, None), xp)[0, ...])
    return to_numpy(xp.concat(chosen, axis=0)).astype(np.int64)  # (the one read)


def lloyd_restarts(Xc, xx, w64, C, n_iter: int, xp, fast: bool = False) -> tuple:
    """Up to ``n_iter`` Lloyd iterations of every restart's centres ``C`` (R, K, D) on the
    rows ``Xc`` (about their mean; ``xx`` their squared norms) with weights ``w64``; each
    restart's stop once no label moves (its centres are then fixed). ``(C, inertia,
    labels)``: the centres, and each restart's weighted sum of squared distances and
    labels (R, n) at its last assignment (a centre no row chose stays). ``fast``: one numba
    kernel for all restarts (:func:`online_gmm._backends.seeding_kernels.lloyd`)."""
    R, n = C.shape[0], Xc.shape[0]
    if fast:
        from .._backends.seeding_kernels import lloyd as lloyd_kernel

        C = np.array(C, dtype=np.float64, order="C")
        labels = np.full((R, n), -1, dtype=np.int64)
        inertia = np.zeros(R)
        with blas_threads_for(0):
            lloyd_kernel(Xc, xx, np.ascontiguousarray(w64), C, max(1, n_iter), labels,
                         inertia)
        return C, inertia, labels
    out = [_lloyd_one(Xc, xx, w64, C[r, ...], n_iter, xp) for r in range(R)]
    return (xp.stack([c for c, _, _ in out]), np.asarray([i for _, i, _ in out]),
            np.stack([lab for _, _, lab in out]))


def _lloyd_one(Xc, xx, w64, C, n_iter: int, xp) -> tuple:
    """:func:`lloyd_restarts` of one restart in the namespace ``xp``."""
    n, K = Xc.shape[0], C.shape[0]
    ks = xp.reshape(xp.arange(K, device=device(Xc)), (1, K))
    blocks = [(lo, min(lo + _LLOYD_BLOCK, n)) for lo in range(0, n, _LLOYD_BLOCK)]
    labels, inertia = None, np.inf
    for _ in range(max(1, n_iter)):
        cc = xp.reshape(xp.sum(C * C, axis=1), (1, K))
        parts = []
        for lo, hi in blocks:
            d2 = cc - 2.0 * (Xc[lo:hi, ...] @ C.T)
            parts.append((xp.argmin(d2, axis=1), xp.min(d2, axis=1)))
        new = xp.concat([lab for lab, _ in parts])
        dist = xp.concat([d for _, d in parts]) + xx
        inertia = float(xp.sum(w64 * xp.where(dist > 0, dist, xp.zeros_like(dist))))
        host = to_numpy(new)
        if labels is not None and np.array_equal(host, labels):
            break
        labels = host
        sums = xp.zeros_like(C)
        mass = xp.zeros((K,), dtype=xp.float64, device=device(Xc))
        for lo, hi in blocks:
            one = xp.astype(xp.reshape(new[lo:hi], (hi - lo, 1)) == ks, xp.float64)
            one = one * xp.reshape(w64[lo:hi], (hi - lo, 1))
            sums = sums + one.T @ Xc[lo:hi, ...]
            mass = mass + xp.sum(one, axis=0)
        safe = xp.where(mass > 0, mass, xp.ones_like(mass))
        C = xp.where(xp.reshape(mass > 0, (K, 1)), sums / xp.reshape(safe, (K, 1)), C)
    return C, inertia, labels
