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
iterations are variational ones (its E-step, :func:`online_gmm._em.expectation.statistics`).
Plain functions over the backend, as the step itself.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .._math.array_api import device, take_index, to_numpy
from .._math.state import MixtureState, empty_state
from . import moves
from .batch import EM_ITERATIONS, beats, em_iterations, finite
from .seeding import LLOYD_ITERATIONS, lloyd, reseeded_at, seed_from_sample

#: EM iterations of each refinement (at each doubling of the rows held, with "auto").
REFINE_ITERATIONS = 5
#: The buffer holds at most this many bytes (rows x features x the data's itemsize).
MAX_BUFFER_BYTES = 512 * 2**20
#: ``warmup_size="auto"``: this many rows per component, at most :data:`AUTO_MAX_ROWS`
#: (measured, ``docs/benchmarks.md``, "Quality": the earlier the warm-up, the more of a
#: short stream it serves; 64 rows per component are enough for its restarts).
AUTO_ROWS_PER_COMPONENT = 64
AUTO_MAX_ROWS = 32768


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
    (``config.prior``) then tries merge moves and a birth move (after a reorder move):
    :mod:`online_gmm._em.moves`."""
    n_iter = REFINE_ITERATIONS if n_iter is None else n_iter
    try:
        state, _ = em_iterations(state, Xb, wb, config, backend, n_iter, tol)
    except (ValueError, FloatingPointError):
        return None
    if not finite(state, backend):
        return None
    if config.prior is None or rng is None:
        return state
    moved = moves.with_merges(state, Xb, wb, config=config, backend=backend)
    moved = moves.with_births(moved, Xb, wb, config=config, rng=rng, backend=backend)
    return moved if finite(moved, backend) else state


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
    restart failed (data too extreme for batch EM: the caller keeps its state)."""
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






