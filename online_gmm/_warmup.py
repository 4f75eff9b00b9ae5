"""The warm-up: the start of a stream, given the care batch EM gives it (the contract's
"Warm-up").

While the model is seeded from data, the first ``warmup_size`` weighted rows are buffered
(:class:`Warmup`). Until the buffer is full the ordinary step runs on a *provisional* state,
so that the model can already predict; on the full buffer :func:`warm_state` runs
``restarts`` restarts of k-means++ seeds, a few Lloyd iterations (scikit-learn's
``KMeans``, started from the seeds) and a few EM iterations at T = 1 whose statistics are
recomputed from scratch (no seed prior), and keeps the restart of highest buffer
log-likelihood. The stream goes on from that restart's statistics (``n_k = nu_k =`` its
masses, summing to the buffer's weight); the provisional state is discarded, so no row is
counted twice. With ``warmup_size="auto"`` the buffer then keeps growing, to
:data:`AUTO_MAX_ROWS`: each time the rows held double, :func:`refined_state` recomputes the
state from them by a few EM iterations from its parameters (the buffer holds every row
stepped on, so again no row is counted twice). Only on a stationary stream (forgetting rate
0) and when the buffer holds every row (no ``gather`` hook). A variational mixture's
iterations are variational ones (its E-step, :func:`online_gmm._variational.statistics`).
Plain functions over the backend, as the step itself.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ._array_api import asarray_like, device, scatter_rows, take_index, to_numpy
from ._batch_em import from_statistics, m_step
from ._covariance import covariance
from ._estep import responsibility_chunks, statistics_and_entropy
from ._seeding import kmeans_plusplus_indices, seed_components, seed_from_sample
from ._stats import BatchStats, MixtureState, empty_state, merge_stats
from ._variational import statistics, step_prepared

#: Lloyd iterations and EM iterations of each restart.
LLOYD_ITERATIONS = 5
EM_ITERATIONS = 5
#: EM iterations of each refinement (at each doubling of the rows held, with "auto").
REFINE_ITERATIONS = 5
#: Restarts whose mean buffer log-likelihoods differ by less than this (relative) are tied,
#: or by less than TIE_EPS machine epsilons of the buffer's dtype, whichever is larger: a
#: float32 buffer's log-likelihood carries float32 rounding (sums of many terms), so two
#: backends could otherwise rank two equally good restarts differently (measured: 3e-7 apart
#: on bfloat16-valued rows, and the states diverged).
TIE_TOLERANCE = 1e-9
TIE_EPS = 100
#: The buffer holds at most this many bytes (rows x features x the data's itemsize).
MAX_BUFFER_BYTES = 512 * 2**20
#: ``warmup_size="auto"``: this many rows per component, at most :data:`AUTO_MAX_ROWS`
#: (measured, ``docs/benchmarks.md``, "Quality": the earlier the warm-up, the more of a
#: short stream it serves; 64 rows per component are enough for its restarts).
AUTO_ROWS_PER_COMPONENT = 64
AUTO_MAX_ROWS = 32768
#: Birth moves of a variational mixture, at each refinement (:func:`with_births`): a third
#: of the live components' number are proposed (measured, ``docs/algorithm.md``, "Birth
#: moves": fewer find too few, more take longer to prune than the proposal's iterations
#: allow); the proposal iterates until its lower bound changes by less than
#: :data:`BIRTH_TOL` per unit of buffer weight, at most :data:`BIRTH_ITERATIONS_FACTOR`
#: times ``warmup_iterations`` (the estimator's ``max_iter``).
BIRTH_FRACTION = 3
BIRTH_TOL = 1e-5
BIRTH_ITERATIONS_FACTOR = 5
#: Merge moves (:func:`with_merges`): this many times a third of the live components'
#: number of the most overlapping pairs are tried.
MERGE_PAIRS = 3
#: The proposal's lower bound is taken every this many iterations (its entropy costs a
#: second pass over the buffer).
BOUND_EVERY = 10


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
        BX[n : n + take.size, ...] = xp.take(X, take_index(take, X, xp), axis=0)
        Bw[n : n + take.size] = xp.take(w, take_index(take, w, xp), axis=0)
    new = warmup.replace(X=BX, w=Bw, n_rows=n + int(take.size), claim=claim)
    X_rest = xp.take(X, take_index(rest, X, xp), axis=0)
    w_rest = xp.take(w, take_index(rest, w, xp), axis=0)
    return new, X_rest, w_rest


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
                  rng: np.random.RandomState | None = None) -> MixtureState | None:
    """The state recomputed from the buffer: ``n_iter`` (default
    :data:`REFINE_ITERATIONS`) EM iterations at T = 1 from
    ``state``'s parameters (fewer once the mean log-likelihood changes by less than
    ``tol``), each M-step from no evidence (so the state's evidence is the buffer's, every
    row once); None if they fail or end non-finite. With ``rng``, a variational mixture
    (``config.prior``) then tries merge moves (:func:`with_merges`) and a birth move
    (:func:`with_births`, after a reorder move)."""
    n_iter = REFINE_ITERATIONS if n_iter is None else n_iter
    try:
        state, _ = _em_iterations(state, Xb, wb, config, backend, n_iter, tol)
    except (ValueError, FloatingPointError):
        return None
    if not _finite(state, backend):
        return None
    if config.prior is None or rng is None:
        return state
    moved = with_merges(state, Xb, wb, config=config, backend=backend)
    moved = with_births(moved, Xb, wb, config=config, rng=rng, backend=backend)
    return moved if _finite(moved, backend) else state


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


def with_births(state: MixtureState, Xb: Any, wb: Any, *, config: Any,
                rng: np.random.RandomState, backend: Any) -> MixtureState:
    """A birth move of a variational mixture on the buffer (Hughes & Sudderth 2013's
    births, accepted by the evidence lower bound): the proposal is a restart from the live
    components' means (at least one average row of evidence each, each in its own slot) and
    a third as many new seeds in free slots (after the live ones first), drawn by D^2
    sampling from the live means (rows far from them); Lloyd's iterations and variational
    iterations from those seeds, then the merge and reorder moves on the result (the
    iterations may leave splits they did not prune). It replaces ``state`` if its lower
    bound (:func:`online_gmm._variational.lower_bound`) is higher than that of
    :func:`with_order` of ``state`` (one more iteration, sorted if that raises the bound:
    the two in the same order); otherwise that. What prunes a
    component the data do not need and grows one they do: a one-pass stream with exact
    statistics cannot split a component that the warm-up's first, smaller buffer merged."""
    w_total = float(backend.xp.sum(backend.xp.astype(wb, backend.xp.float64)))
    n_iter = BIRTH_ITERATIONS_FACTOR * (config.warmup_iterations or EM_ITERATIONS)
    try:
        current, incumbent = _ordered(state, Xb, wb, config, backend)
        if not _finite(current, backend):
            return state
        proposal = _birth_proposal(current, Xb, wb, config, rng, backend)
        if proposal is None:
            return current
        proposal, bound = _lower_bound_iterations(proposal, Xb, wb, config, backend, n_iter,
                                                  BIRTH_TOL * w_total)
        # (its iterations may leave splits they did not prune, and gaps: merged, sorted)
        proposal = with_merges(proposal, Xb, wb, config=config, backend=backend)
        proposal, bound = _ordered(proposal, Xb, wb, config, backend)
    except (ValueError, FloatingPointError):  # an ill-defined proposal: keep the state
        return state
    better = _beats(bound, incumbent, Xb.dtype, backend.xp)
    return proposal if better and _finite(proposal, backend) else current


def with_merges(state: MixtureState, Xb: Any, wb: Any, *, config: Any,
                backend: Any) -> MixtureState:
    """Merge moves of a variational mixture on the buffer (Hughes & Sudderth 2013's
    merges, exact: no iteration): one variational iteration of ``state``, then, for pairs
    of live components in decreasing overlap of their responsibilities, the statistics of
    the pair merged by the pairwise rule and the responsibilities' entropy with their
    columns summed; a merge is kept if it raises the lower bound. At most
    :data:`MERGE_PAIRS` times a third of the live components are tried, each component in
    one merge at most. What undoes a split that the stream's reseeding or a birth left."""
    xp, ct = backend.xp, config.covariance_type
    try:
        p, stats, entropy, current, bound = _iteration(state, Xb, wb, config, backend)
        w_host = np.asarray(to_numpy(wb), dtype=np.float64)
        mass = np.asarray(to_numpy(stats.mass), dtype=np.float64)
        live = np.flatnonzero(mass >= w_host.sum() / w_host.size)
        pairs = _overlapping_pairs(Xb, wb, p, live, backend,
                                   MERGE_PAIRS * -(-live.size // BIRTH_FRACTION))
        if not pairs:
            return current
        gains = _merge_entropy_loss(Xb, wb, p, pairs, backend)
        merged: set[int] = set()
        for (i, j), loss in zip(pairs, gains, strict=True):
            if i in merged or j in merged:
                continue
            target, source = min(i, j), max(i, j)  # (the earlier stick keeps the mass)
            new_stats = _merged_statistics(stats, source, target, ct, xp)
            proposal, new = from_statistics(state, new_stats, entropy - loss, config,
                                             backend)
            if _beats(new, bound, Xb.dtype, xp) and _finite(proposal, backend):
                stats, entropy, current, bound = new_stats, entropy - loss, proposal, new
                merged.update((i, j))
    except (ValueError, FloatingPointError):  # an ill-defined merge: keep the state
        return state
    return current


def with_order(state: MixtureState, Xb: Any, wb: Any, *, config: Any,
               backend: Any) -> MixtureState:
    """A reorder move of a variational mixture on the buffer, exact: one variational
    iteration of ``state``, then its statistics and parameters with the components in
    decreasing mass, kept if that raises the lower bound. Under the Dirichlet process (a
    stick-breaking prior) every empty stick ahead of a used one costs bound; under the
    Dirichlet distribution the bound does not depend on the order and the iteration is all
    there is. The components' indices (so ``predict``'s labels) change where it is kept."""
    try:
        ordered = _ordered(state, Xb, wb, config, backend)[0]
    except (ValueError, FloatingPointError):  # an ill-defined state: keep it
        return state
    return ordered if _finite(ordered, backend) else state


def _ordered(state, Xb, wb, config, backend) -> tuple[MixtureState, float]:
    """:func:`with_order`'s state and its lower bound."""
    xp, ct = backend.xp, config.covariance_type
    _, stats, entropy, current, bound = _iteration(state, Xb, wb, config, backend)
    order = np.argsort(-np.asarray(to_numpy(stats.mass), dtype=np.float64), kind="stable")
    if (config.prior.weight_concentration_prior_type != "dirichlet_process"
            or np.array_equal(order, np.arange(order.size))):
        return current, bound
    proposal, new = from_statistics(_reordered(state, order, ct, xp),
                                     _reordered(stats, order, ct, xp), entropy, config, backend)
    if _beats(new, bound, Xb.dtype, xp) and _finite(proposal, backend):
        return proposal, new
    return current, bound


def _reordered(value, order: np.ndarray, covariance_type: str, xp):
    """A state's or statistics' components in the order ``order`` (slot ``i`` gets
    component ``order[i]``; a ``tied`` pooled moment, covariance and its mass stay)."""
    cov = covariance(covariance_type)
    idx = take_index(order, value.mass, xp)
    if isinstance(value, BatchStats):
        return replace(value, mass=xp.take(value.mass, idx, axis=0),
                       mean=xp.take(value.mean, idx, axis=0),
                       moment=cov.reordered(value.moment, order, xp))
    return value.replace(
        **{name: xp.take(getattr(value, name), idx, axis=0)
           for name in ("weights", "means", "mass", "nu", "seeded")},
        **{name: cov.reordered(getattr(value, name), order, xp)
           for name in ("covariances", "precisions_cholesky", "moment")})


def _overlapping_pairs(Xb, wb, p, live: np.ndarray, backend, n_pairs: int) -> list:
    """Up to ``n_pairs`` pairs ``(i, j)`` of the ``live`` components, in decreasing
    overlap ``sum_n w_n r_ni r_nj / sqrt(...ii ...jj)`` (positive only)."""
    xp = backend.xp
    if live.size < 2 or n_pairs <= 0:
        return []
    idx = take_index(live, Xb, xp)
    O = None
    for sl, R in responsibility_chunks(Xb, p, backend):
        Rl = xp.astype(xp.take(R, idx, axis=1), xp.float64)
        part = (Rl * xp.astype(wb[sl], xp.float64)[:, None]).T @ Rl
        O = part if O is None else O + part
    O = np.asarray(to_numpy(O), dtype=np.float64)
    d = np.sqrt(np.maximum(np.diag(O), 1e-300))
    C = np.triu(O / d[:, None] / d[None, :], k=1)
    order = np.argsort(-C, axis=None, kind="stable")[:n_pairs]
    a, b = np.unravel_index(order, C.shape)
    return [(int(live[i]), int(live[j])) for i, j in zip(a, b, strict=True) if C[i, j] > 0]


def _merge_entropy_loss(Xb, wb, p, pairs: list, backend) -> list:
    """For each pair, what its merge takes from the responsibilities' entropy:
    ``sum_n w_n [(r_i + r_j) log(r_i + r_j) - r_i log r_i - r_j log r_j]`` (>= 0)."""
    xp = backend.xp
    ii = take_index(np.array([i for i, _ in pairs]), Xb, xp)
    jj = take_index(np.array([j for _, j in pairs]), Xb, xp)
    total = np.zeros(len(pairs))

    def xlogx(r):
        return xp.where(r > 0, r * xp.log(xp.where(r > 0, r, 1.0)), 0.0)

    for sl, R in responsibility_chunks(Xb, p, backend):
        R64 = xp.astype(R, xp.float64)
        ri, rj = xp.take(R64, ii, axis=1), xp.take(R64, jj, axis=1)
        loss = xlogx(ri + rj) - xlogx(ri) - xlogx(rj)
        total += np.asarray(to_numpy(xp.astype(wb[sl], xp.float64) @ loss), dtype=np.float64)
    return [float(v) for v in total]


def _merged_statistics(stats: BatchStats, source: int, target: int, covariance_type: str,
                       xp) -> BatchStats:
    """``stats`` with component ``source``'s merged into ``target`` by the pairwise rule;
    ``source`` left empty."""
    rest_moment, moved_moment = covariance(covariance_type).moved_moment(
        stats.moment, source, target, xp)
    zero = xp.zeros_like(stats.mass[:1])
    src = np.array([source])
    rest = BatchStats(mass=scatter_rows(stats.mass, src, zero, xp), mean=stats.mean,
                      moment=rest_moment, weight=stats.weight, loglik=stats.loglik,
                      n_samples=stats.n_samples)
    moved = BatchStats(
        mass=scatter_rows(xp.zeros_like(stats.mass), np.array([target]),
                          stats.mass[source : source + 1], xp),
        mean=scatter_rows(xp.zeros_like(stats.mean), np.array([target]),
                          stats.mean[source : source + 1, ...], xp),
        moment=moved_moment, weight=0.0, loglik=0.0, n_samples=0)
    return merge_stats(rest, moved, covariance_type, xp)


def _birth_proposal(state, Xb, wb, config, rng, backend) -> MixtureState | None:
    """The live components and new ones (:func:`with_births`) after one E-step at their
    seeds' own parameters; None when no slot is free or no row can seed."""
    xp = backend.xp
    w_host = np.asarray(to_numpy(wb), dtype=np.float64)
    mass = np.asarray(to_numpy(state.mass), dtype=np.float64)
    live = np.asarray(to_numpy(state.seeded), dtype=bool) & (mass >= w_host.sum() / w_host.size)
    n_live, n_free = int(live.sum()), int((~live).sum())
    n_new = min(n_free, -(-n_live // BIRTH_FRACTION))
    if n_live == 0 or n_new == 0:
        return None
    live_means = xp.take(state.means, take_index(np.flatnonzero(live), state.means, xp),
                         axis=0)
    idx = kmeans_plusplus_indices(Xb, w_host, live_means, n_new, rng, xp)
    if idx.size == 0:
        return None
    born = xp.astype(xp.take(Xb, take_index(idx, Xb, xp), axis=0), xp.float64)
    means = _lloyd(Xb, wb, xp.concat([live_means, born], axis=0), LLOYD_ITERATIONS, xp)
    # each live component stays in its slot and the births take the free slots after the
    # last live one (all of them once :func:`with_order` has sorted the components), then
    # the nearest before it: a stick-breaking prior's bound depends on the order, and
    # packing the live components or filling a gap ahead of one would raise it alone (a
    # split could pass as a birth). The free slots no birth took keep their means, switched
    # off (weight 0) for the first E-step; the iterations may give them data again
    free = np.flatnonzero(~live)
    last = np.flatnonzero(live)[-1]
    free = np.concatenate([free[free > last], free[free < last][::-1]])
    n_born = means.shape[0] - n_live
    slots = np.concatenate([np.flatnonzero(live), free])  # the slot of each row below
    kept = xp.take(state.means, take_index(free[n_born:], state.means, xp), axis=0)
    means = xp.concat([means, kept], axis=0)
    means = xp.take(means, take_index(np.argsort(slots), means, xp), axis=0)
    proposal = _reseeded_at(state, means, Xb, wb, config, backend)
    on = np.zeros(means.shape[0], dtype=bool)
    on[slots[:n_live + n_born]] = True
    weights = asarray_like(on / on.sum(), proposal.weights, xp, dtype=xp.float64)
    proposal = proposal.replace(weights=weights)
    proposal, _ = _em_iterations(proposal, Xb, wb, config, backend, 1, from_seeds=True)
    return proposal


def _lower_bound_iteration(state, Xb, wb, config, backend) -> tuple[MixtureState, float]:
    """One variational iteration on the buffer and the lower bound of its responsibilities
    and M-step (scikit-learn's ``lower_bound_`` after one iteration of its fit)."""
    return _iteration(state, Xb, wb, config, backend)[3:]


def _iteration(state, Xb, wb, config, backend) -> tuple:
    """One variational iteration on the buffer: ``(p, stats, entropy, new, bound)``, the
    E-step's prepared parameters, the statistics and the responsibilities' entropy, then
    the M-step's state and its lower bound."""
    p = step_prepared(state, config, Xb.dtype, backend)
    stats, entropy = statistics_and_entropy(Xb, wb, p, backend)
    return (p, stats, entropy, *from_statistics(state, stats, entropy, config, backend))


def _lower_bound_iterations(state, Xb, wb, config, backend, n_iter: int,
                            tol: float) -> tuple[MixtureState, float]:
    """Up to ``n_iter`` variational iterations, the bound taken every
    :data:`BOUND_EVERY` (:func:`_lower_bound_iteration`; the others the backend's own),
    stopped once it changes by less than ``tol`` per iteration; the last state and bound."""
    bound, done = -np.inf, 0
    while done < max(1, n_iter):
        k = max(1, min(BOUND_EVERY, n_iter - done))
        if k > 1:
            state, _ = _em_iterations(state, Xb, wb, config, backend, k - 1)
        state, new = _lower_bound_iteration(state, Xb, wb, config, backend)
        done += k
        converged = abs(new - bound) < tol * k
        bound = new
        if converged:
            break
    return state, bound


def _beats(new: float, old: float, dtype: Any, xp: Any) -> bool:
    """Whether ``new`` is higher than ``old`` by more than rounding (:data:`TIE_TOLERANCE`
    relative, or :data:`TIE_EPS` units of ``dtype``'s precision): equal optima keep the
    incumbent, on any backend."""
    tie = max(TIE_TOLERANCE, TIE_EPS * float(xp.finfo(dtype).eps))
    return new > old + tie * (1.0 + abs(old))


def _finite(state: MixtureState, backend: Any) -> bool:
    return all(backend.all_finite(getattr(state, name))
               for name in ("weights", "means", "covariances", "precisions_cholesky"))


def warm_state(Xb: Any, wb: Any, *, config: Any, restarts: int, rng: np.random.RandomState,
               backend: Any) -> MixtureState:
    """The best of ``restarts`` restarts on the buffer ``Xb`` (n, D) with weights ``wb``: a
    state whose evidence is the buffer's statistics under its parameters; None if every
    restart failed (data too extreme for batch EM: the caller keeps its state)."""
    best = None
    for _ in range(max(1, restarts)):
        try:
            state, loglik = _restart(Xb, wb, config, rng, backend)
        except (ValueError, FloatingPointError):  # an ill-defined restart (extreme data)
            continue
        if not _finite(state, backend):
            continue
        # a later restart must be better by more than rounding: restarts that reach the
        # same optimum (in another order of the components) keep the first, on any backend
        if best is None or _beats(loglik, best[1], Xb.dtype, backend.xp):
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
        means = _lloyd(Xb, wb, state.means, LLOYD_ITERATIONS, xp)
        state = _reseeded_at(state, means, Xb, wb, config, backend)
    n_iter = EM_ITERATIONS if config.warmup_iterations is None else config.warmup_iterations
    return _em_iterations(state, Xb, wb, config, backend, n_iter, from_seeds=True)


def _em_iterations(state, Xb, wb, config, backend, n_iter: int = EM_ITERATIONS,
                   tol: float | None = None, *,
                   from_seeds: bool = False) -> tuple[MixtureState, float]:
    """Up to ``n_iter`` batch-EM iterations on the buffer (T = 1, each M-step from no
    evidence; stopped once the mean log-likelihood changes by less than ``tol``); the mean
    buffer log-likelihood of the last E-step. ``from_seeds``: ``state`` holds a restart's
    seeds (a variational mixture's first E-step is then at their own parameters)."""
    loglik = -np.inf
    for i in range(max(1, n_iter)):
        # a variational mixture's first E-step is at the seeds' own parameters (it starts
        # from their responsibilities, as scikit-learn's from k-means's), then its posterior's
        step_config = replace(config, prior=None) if from_seeds and i == 0 else config
        stats = statistics(state, step_config, Xb, wb, 1.0, backend)
        previous, loglik = loglik, (stats.loglik / stats.weight if stats.weight > 0
                                    else -np.inf)
        state = m_step(state, stats, config, backend)
        if tol is not None and abs(loglik - previous) < tol:
            break
    return state, loglik


def _lloyd(Xb, wb, means, n_iter: int, xp):
    """``n_iter`` Lloyd iterations from ``means`` (scikit-learn's ``KMeans``, on the host)."""
    import warnings

    from sklearn.cluster import KMeans
    from sklearn.exceptions import ConvergenceWarning

    X_host = np.asarray(to_numpy(Xb), dtype=np.float64)
    init = np.asarray(to_numpy(means), dtype=np.float64)
    from threadpoolctl import threadpool_limits

    km = KMeans(n_clusters=init.shape[0], init=init, n_init=1, max_iter=n_iter,
                algorithm="lloyd")
    # one thread: KMeans's sums depend on its thread count, and a resumed stream must be
    # bit-identical whatever the process's threads
    with warnings.catch_warnings(), threadpool_limits(1):
        warnings.simplefilter("ignore", ConvergenceWarning)
        w_host = np.asarray(to_numpy(wb), dtype=np.float64)
        km.fit(X_host, sample_weight=w_host / w_host.max())  # (scale-free: no overflow)
    return asarray_like(km.cluster_centers_, means, xp, dtype=xp.float64)


def _reseeded_at(state: MixtureState, means, Xb, wb, config, backend) -> MixtureState:
    """The seeds moved to Lloyd's centres, with the residual variance they imply."""
    from ._seeding import batch_variance, residual_variance

    xp = backend.xp
    ct = config.covariance_type
    var = residual_variance(Xb, wb, means, ct, xp)
    if var is None:
        var = batch_variance(Xb, wb, ct, xp)
    K = means.shape[0]
    fresh = empty_state(K, means.shape[1], ct, xp, device(means))
    return seed_components(fresh, np.arange(K), means, var, seed_mass=config.seed_mass,
                           covariance_type=ct, reg_covar=config.reg_covar, backend=backend,
                           first=True)
