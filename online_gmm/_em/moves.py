"""The variational mixture's moves on the warm-up's buffer (memoized variational
inference, Hughes & Sudderth 2013), each kept only if scikit-learn's evidence lower bound
on the buffer rises: exact merges of overlapping pairs (:func:`with_merges`), an exact
reorder by decreasing mass under the Dirichlet process (:func:`with_order`), and a birth
proposal (:func:`with_births`). The warm-up's refinement (:func:`online_gmm._em.warmup.
refined_state`) makes them at each doubling of the rows held."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from .._math.array_api import asarray_like, scatter_rows, take_index, to_numpy
from .._math.covariance import covariance
from .._math.estep import responsibility_chunks, statistics_and_entropy
from .._math.state import BatchStats, MixtureState, merge_stats
from .batch import EM_ITERATIONS, beats, em_iterations, finite, from_statistics
from .expectation import step_prepared
from .seeding import LLOYD_ITERATIONS, kmeans_plusplus_indices, lloyd, reseeded_at

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


def with_births(state: MixtureState, Xb: Any, wb: Any, *, config: Any,
                rng: np.random.RandomState, backend: Any) -> MixtureState:
    """A birth move of a variational mixture on the buffer (Hughes & Sudderth 2013's
    births, accepted by the evidence lower bound): the proposal is a restart from the live
    components' means (at least one average row of evidence each, each in its own slot) and
    a third as many new seeds in free slots (after the live ones first), drawn by D^2
    sampling from the live means (rows far from them); Lloyd's iterations and variational
    iterations from those seeds, then the merge and reorder moves on the result (the
    iterations may leave splits they did not prune). It replaces ``state`` if its lower
    bound (:func:`online_gmm._math.variational.lower_bound`) is higher than that of
    :func:`with_order` of ``state`` (one more iteration, sorted if that raises the bound:
    the two in the same order); otherwise that. What prunes a
    component the data do not need and grows one they do: a one-pass stream with exact
    statistics cannot split a component that the warm-up's first, smaller buffer merged."""
    w_total = float(backend.xp.sum(backend.xp.astype(wb, backend.xp.float64)))
    n_iter = BIRTH_ITERATIONS_FACTOR * (config.warmup_iterations or EM_ITERATIONS)
    try:
        current, incumbent = _ordered(state, Xb, wb, config, backend)
        if not finite(current, backend):
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
    better = beats(bound, incumbent, Xb.dtype, backend.xp)
    return proposal if better and finite(proposal, backend) else current


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
            if beats(new, bound, Xb.dtype, xp) and finite(proposal, backend):
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
    return ordered if finite(ordered, backend) else state


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
    if beats(new, bound, Xb.dtype, xp) and finite(proposal, backend):
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
    if idx.shape[0] == 0:
        return None
    born = xp.astype(xp.take(Xb, take_index(idx, Xb, xp), axis=0), xp.float64)
    means = lloyd(Xb, wb, xp.concat([live_means, born], axis=0), LLOYD_ITERATIONS, xp)
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
    proposal = reseeded_at(state, means, Xb, wb, config, backend)
    on = np.zeros(means.shape[0], dtype=bool)
    on[slots[:n_live + n_born]] = True
    weights = asarray_like(on / on.sum(), proposal.weights, xp, dtype=xp.float64)
    proposal = proposal.replace(weights=weights)
    proposal, _ = em_iterations(proposal, Xb, wb, config, backend, 1, from_seeds=True)
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
            state, _ = em_iterations(state, Xb, wb, config, backend, k - 1)
        state, new = _lower_bound_iteration(state, Xb, wb, config, backend)
        done += k
        converged = abs(new - bound) < tol * k
        bound = new
        if converged:
            break
    return state, bound
