"""Seeding: one mechanism for initialisation, for late components, and for dead ones.

A component is *unseeded* until it gets a sample. Seeds are chosen by D^2 sampling with
greedy local trials (k-means++, Arthur & Vassilvitskii 2007, as in scikit-learn), continued
from the centres that already exist, so "the samples the current mixture explains worst" are
the likeliest new seeds. Randomness comes from one NumPy ``RandomState`` on the host, or from
any generator with its draws (the bridge's ``torch.Generator``, whose uniforms are drawn on
the data's device); only (n,)-vectors of probabilities cross to the host, never the samples.
"""

from __future__ import annotations

import contextlib
import functools
import math
from typing import Any

import numpy as np

from .._math.array_api import (
    RowScatter,
    asarray_like,
    blas_threads_for,
    device,
    scatter_any,
    scatter_rows,
    take_index,
    to_numpy,
)
from .._math.covariance import covariance
from .._math.state import MixtureState, empty_state

INIT_PARAMS = ("k-means++", "kmeans", "random", "random_from_data")


def _sq_dist_to_nearest(X, centers, xp, block: int = 2048, centred: tuple | None = None):
    """(n,) squared Euclidean distance of each row of X to its nearest centre (float64);
    ``centred``: :func:`_centred` of ``X``, if the caller has it."""
    n = X.shape[0]
    if centers.shape[0] == 0:
        return xp.full((n,), float("inf"), dtype=xp.float64, device=device(X))
    Xc, xx, ref = _centred(X, xp) if centred is None else centred
    best = None
    for start in range(0, centers.shape[0], block):
        C = xp.astype(centers[start : min(start + block, centers.shape[0]), ...], xp.float64) - ref
        d2 = xx[:, None] - 2.0 * (Xc @ C.T) + xp.sum(C * C, axis=1)
        d2 = xp.min(xp.maximum(d2, xp.zeros_like(d2)), axis=1)
        best = d2 if best is None else xp.minimum(best, d2)
    return best


def kmeans_plusplus_indices(X, w_host: np.ndarray, centers, n_new: int, rng, xp,
                            fast: bool = False, w: Any = None) -> np.ndarray:
    """Indices of ``n_new`` rows of ``X`` chosen by greedy D^2 sampling, continuing from
    ``centers`` (possibly empty). Rows with zero weight are never chosen. ``fast`` (the
    numba backend's NumPy rows): the same draws in one kernel (:func:`_greedy_d2_fast`).
    ``w``: the weights ``w_host`` on ``X``'s device, where the caller has them (copied
    there otherwise)."""
    positive = np.flatnonzero(w_host > 0)
    if n_new <= 0 or positive.size == 0:
        return np.empty(0, dtype=np.intp)
    n_new = min(n_new, positive.size)
    if n_new == positive.size:
        return rng.permutation(positive)
    centred = _centred(X, xp)  # once, not once per distance computation
    n_trials = 2 + int(math.log(centers.shape[0] + n_new))
    if not isinstance(X, np.ndarray):  # on the data's device, without a read per centre
        closest = _sq_dist_to_nearest(X, centers, xp, centred=centred)
        return _greedy_d2_on_device(X, w_host, closest, centred, n_new, n_trials, rng, xp,
                                    first_by_weight=centers.shape[0] == 0, w=w)
    closest = to_numpy(_sq_dist_to_nearest(X, centers, xp, centred=centred)).astype(np.float64)
    # one BLAS thread for these small products (their threads cost more than they give)
    with blas_threads_for(n_trials * X.shape[0] * X.shape[1]):
        if fast:
            return _greedy_d2_fast(X, w_host, closest, centred, n_new, n_trials, rng, xp,
                                   by_weight=centers.shape[0] == 0)
        return _greedy_d2(X, w_host, closest, centred, n_new, n_trials, rng, xp)


def _greedy_d2_fast(X, w_host, closest, centred, n_new, n_trials, rng, xp, *,
                    by_weight: bool) -> np.ndarray:
    """:func:`_greedy_d2` in one numba kernel
    (:func:`online_gmm._backends.seeding_kernels.greedy_d2`): the uniforms the reference
    draws from ``rng`` (``choice`` is an inverse-CDF search of one uniform a draw) are
    drawn at once; where the reference would draw otherwise (every row on a centre) the
    generator goes back to its state and the reference runs."""
    from .._backends.seeding_kernels import greedy_d2

    saved = rng.get_state()
    u = rng.random_sample(n_new * n_trials - (n_trials - 1 if by_weight else 0))
    Xc, xx, _ = centred
    out = np.zeros(n_new, dtype=np.int64)
    count = greedy_d2(np.ascontiguousarray(Xc), np.ascontiguousarray(xx),
                      np.ascontiguousarray(w_host, dtype=np.float64), closest.copy(), u,
                      n_new, n_trials, by_weight, out)
    if count == n_new:
        return out.astype(np.intp)
    rng.set_state(saved)
    return _greedy_d2(X, w_host, closest, centred, n_new, n_trials, rng, xp)


def _greedy_d2(X, w_host, closest, centred, n_new, n_trials, rng, xp) -> np.ndarray:
    chosen: list[int] = []
    for _ in range(n_new):
        pot = w_host * np.where(np.isfinite(closest), closest, 0.0)
        if not np.isfinite(closest).all() or pot.sum() <= 0:
            # no centre yet, or every sample sits on one: sample by weight alone
            p = w_host.copy()
            p[chosen] = 0.0
            if p.sum() <= 0:
                break
            idx = int(rng.choice(w_host.size, p=p / p.sum()))
            d_new = _pairwise_sq(X, np.asarray([idx]), xp, centred)[0]
        else:
            cand = rng.choice(w_host.size, size=n_trials, p=pot / pot.sum())
            d_cand = _pairwise_sq(X, cand, xp, centred)  # (n_trials, n)
            new_pot = (np.minimum(closest[None, :], d_cand) * w_host).sum(axis=1)
            best = int(np.argmin(new_pot))
            idx = int(cand[best])
            d_new = d_cand[best]  # the chosen row's distances, computed already
        chosen.append(idx)
        closest = np.minimum(np.where(np.isfinite(closest), closest, np.inf), d_new)
    return np.asarray(chosen, dtype=np.intp)


def _greedy_d2_on_device(X, w_host, closest, centred, n_new, n_trials, rng, xp, *,
                         first_by_weight: bool, w: Any = None):
    """:func:`_greedy_d2` on the data's device (a GPU): the same greedy D^2 sampling, with
    no host read per centre. NumPy's ``choice(n, p=p)`` is an inverse-CDF search of one
    uniform draw per sample, so the uniforms are drawn from ``rng`` all at once (on the
    device by the bridge's generator, or on the host and copied in one transfer) and
    searched there in the cumulated potentials; the chosen indices stay on the device
    (an index array of it).
    Where every potential is zero (every row on a centre) the candidates are drawn by
    weight, among the rows not chosen yet. The same draws as the host's :func:`_greedy_d2`
    up to the rounding of the cumulated sums, except in that degenerate case: the host
    then draws one row (one uniform), the device its usual candidates, and the two random
    streams part from there (both choices valid)."""
    f64 = xp.float64
    n = X.shape[0]
    w = (asarray_like(np.asarray(w_host, dtype=np.float64), closest, xp, dtype=f64)
         if w is None else xp.astype(w, f64))
    n_draws = n_new * n_trials - (n_trials - 1 if first_by_weight else 0)
    uniforms = asarray_like(rng.random_sample(n_draws), closest, xp, dtype=f64)
    taken = xp.zeros(n, dtype=xp.bool, device=device(closest))
    chosen = []
    pos = 0
    for i in range(n_new):
        free_w = xp.where(taken, xp.zeros_like(w), w)
        if i == 0 and first_by_weight:
            cand = _search(free_w, uniforms[pos : pos + 1], n, xp)
            pos += 1
            idx, d_new = cand, _pairwise_sq_on_device(cand, centred, xp)[0, ...]
        else:
            pot = w * xp.where(xp.isfinite(closest), closest, xp.zeros_like(closest))
            p = xp.where(xp.sum(pot) > 0, pot, free_w)  # (every row on a centre: by weight)
            cand = _search(p, uniforms[pos : pos + n_trials], n, xp)
            pos += n_trials
            d_cand = _pairwise_sq_on_device(cand, centred, xp)  # (n_trials, n)
            new_pot = xp.sum(xp.minimum(closest[None, :], d_cand) * w, axis=1)
            best = xp.reshape(xp.argmin(new_pot), (1,))
            idx, d_new = xp.take(cand, best, axis=0), xp.take(d_cand, best, axis=0)[0, ...]
        chosen.append(idx)
        taken = taken | (xp.arange(n, device=device(closest)) == idx)
        closest = xp.minimum(closest, d_new)
    return xp.concat(chosen, axis=0)


def _search(p, u, n: int, xp):
    """Indices drawn with probabilities ``p`` (unnormalised) for the uniforms ``u``:
    NumPy's ``choice``, an inverse-CDF search, on the device."""
    cdf = _cumsum(p, xp)
    idx = xp.searchsorted(cdf, u * cdf[-1], side="right")
    return xp.minimum(idx, xp.full_like(idx, n - 1))


def _cumsum(a, xp):
    """Cumulative sum of a 1-d array in any namespace (the standard's name, or the old)."""
    return xp.cumulative_sum(a) if hasattr(xp, "cumulative_sum") else xp.cumsum(a)


def _pairwise_sq_on_device(idx, centred: tuple, xp):
    """(len(idx), n) squared distances between rows ``idx`` (a device index array) and all
    rows, on the device (:func:`_pairwise_sq`'s formula)."""
    Xc, xx, _ = centred
    Cc = xp.take(Xc, idx, axis=0)
    d2 = xp.take(xx, idx, axis=0)[:, None] - 2.0 * (Xc @ Cc.T).T + xx
    return xp.maximum(d2, xp.zeros_like(d2))


def _centred(X, xp) -> tuple:
    """``(Xc, xx, ref)``: the rows of ``X`` in float64 about their mean ``ref``, and their
    squared norms (what the distance functions here need of ``X``)."""
    X64 = xp.astype(X, xp.float64)
    ref = xp.mean(X64, axis=0)
    Xc = X64 - ref
    return Xc, xp.sum(Xc * Xc, axis=1), ref


def _pairwise_sq(X, idx: np.ndarray, xp, centred: tuple | None = None) -> np.ndarray:
    """Host (len(idx), n) squared distances between rows ``idx`` of X and all of X;
    ``centred``: :func:`_centred` of ``X``, if the caller has it."""
    Xc, xx, _ = _centred(X, xp) if centred is None else centred
    take = take_index(np.asarray(idx, dtype=np.int64), X, xp)
    Cc = xp.take(Xc, take, axis=0)
    # (n, D) @ (D, m), then transposed: BLAS's fast layout for a few centres against many
    # rows (the other order is several times slower for tall, narrow products)
    d2 = xp.take(xx, take, axis=0)[:, None] - 2.0 * (Xc @ Cc.T).T + xx
    return np.maximum(to_numpy(d2), 0.0)


def initial_means(X, w_host: np.ndarray, n_new: int, init_params: str, rng, xp,
                  fast: bool = False):
    """(n_new, D) float64 seed means for the first batch, per ``init_params`` (``fast``: as
    :func:`kmeans_plusplus_indices`)."""
    positive = np.flatnonzero(w_host > 0)
    n_new = min(n_new, positive.size)
    f64 = xp.float64
    if init_params == "k-means++":
        idx = kmeans_plusplus_indices(X, w_host, X[:0, ...], n_new, rng, xp, fast)
        return xp.astype(xp.take(X, take_index(idx, X, xp), axis=0), f64)
    if init_params == "random_from_data":
        idx = rng.choice(positive, size=n_new, replace=False)
        return xp.astype(xp.take(X, take_index(idx, X, xp), axis=0), f64)
    if init_params == "random":
        resp = rng.uniform(size=(X.shape[0], n_new)) * w_host[:, None]
        resp /= np.maximum(resp.sum(axis=1, keepdims=True), np.finfo(float).tiny)
        resp *= w_host[:, None]
        nk = resp.sum(axis=0) + 10 * np.finfo(float).eps
        R = asarray_like(resp, X, xp, dtype=f64)
        return (R.T @ xp.astype(X, f64)) / asarray_like(nk, X, xp, dtype=f64)[:, None]
    # "kmeans": scikit-learn's KMeans on the first batch (host, once)
    km = kmeans(to_numpy(X), n_new, sample_weight=w_host, random_state=_random_state(rng))
    return asarray_like(km.cluster_centers_, X, xp, dtype=f64)


def _random_state(rng) -> np.random.RandomState:
    """scikit-learn's ``random_state`` for ``rng``: a NumPy ``RandomState`` as it is;
    another generator with its draws (the bridge's device generator) seeds one."""
    if isinstance(rng, np.random.RandomState):
        return rng
    return np.random.RandomState(int(rng.randint(2**31 - 1)))


def batch_variance(X, w, covariance_type: str, xp):
    """The batch's weighted variance in one component's covariance layout (float64)."""
    X64 = xp.astype(X, xp.float64)
    w64 = xp.astype(w, xp.float64)
    tot = xp.sum(w64)
    tot = tot if float(tot) > 0 else xp.asarray(1.0, dtype=xp.float64, device=device(X))
    mean = (w64 @ X64) / tot
    return covariance(covariance_type).weighted_variance(X64 - mean, w64, tot, xp)


def residual_variance(X, w, seeds, covariance_type: str, xp, block: int = 2048):
    """Weighted variance of the residuals of each sample to its nearest seed (float64).

    The within-cluster spread that the seeds imply: a far better starting covariance than the
    whole batch's variance, which includes the spread *between* clusters. ``None`` where it
    is zero (every sample is a seed, or all coincide)."""
    X64 = xp.astype(X, xp.float64)
    w64 = xp.astype(w, xp.float64)
    ref = xp.mean(X64, axis=0)
    Xc = X64 - ref
    S = xp.astype(seeds, xp.float64) - ref
    best_d = best_i = None
    for start in range(0, S.shape[0], block):
        C = S[start : min(start + block, S.shape[0]), ...]
        d2 = xp.sum(C * C, axis=1) - 2.0 * (Xc @ C.T)
        i = xp.argmin(d2, axis=1)
        d = xp.min(d2, axis=1)
        if best_d is None:
            best_d, best_i = d, i
        else:
            better = d < best_d
            best_i = xp.where(better, i + start, best_i)
            best_d = xp.where(better, d, best_d)
    R = Xc - xp.take(S, best_i, axis=0)
    tot = xp.sum(w64)
    if not float(tot) > 0:
        return None
    cov = covariance(covariance_type)
    var = cov.weighted_variance(R, w64, tot, xp)
    return var if cov.has_spread(var, xp) else None


def pooled_variance(state: MixtureState, covariance_type: str, reg_covar: float, xp,
                    any_live: bool | None = None):
    """Mass-weighted mean covariance (minus reg_covar) of the live components, or None
    (``any_live``: whether there is a seeded component with mass, where the caller knows)."""
    return covariance(covariance_type).pooled_variance(state, reg_covar, xp, any_live)


def seed_components(
    state: MixtureState,
    comp_idx: np.ndarray,
    new_means,
    variance,
    *,
    seed_mass: float,
    covariance_type: str,
    reg_covar: float,
    backend,
    first: bool,
    fair_share: bool = True,
    host: tuple[np.ndarray, np.ndarray] | None = None,
) -> MixtureState:
    """Start components ``comp_idx`` afresh: mean = a sample, covariance = ``variance``,
    mass = ``seed_mass``, and a fair share of the weight mass (the live components' mean;
    ``fair_share=False``: ``seed_mass``). ``host``: the state's ``seeded`` and ``nu`` on the
    host, where the caller has them (read otherwise)."""
    n_new = len(comp_idx)
    if n_new == 0:
        return state
    xp = backend.xp
    K = state.means.shape[0]
    f64 = xp.float64
    dev = device(state.means)
    mask_new = np.zeros(K, dtype=bool)
    mask_new[comp_idx] = True
    seeded_host, nu_host = ((to_numpy(state.seeded).astype(bool), to_numpy(state.nu))
                            if host is None else host)
    others = seeded_host & ~mask_new
    fair = (float(nu_host[others].sum() / others.sum())
            if others.any() and fair_share else 0.0)
    nu_value = fair if fair > 0 else float(seed_mass)

    vec = lambda v: xp.full((n_new,), v, dtype=f64, device=dev)  # noqa: E731
    rows = RowScatter(comp_idx, K, state.means, xp)  # (one copy to the device for all)
    means = scatter_rows(state.means, rows, new_means, xp)
    mass = scatter_rows(state.mass, rows, vec(float(seed_mass)), xp)
    nu = scatter_rows(state.nu, rows, vec(nu_value), xp)
    seeded = xp.logical_or(state.seeded, rows.mask)
    moment, covariances, tied_mass = covariance(covariance_type).seed(
        state, rows, variance, seed_mass=seed_mass, reg_covar=reg_covar, first=first,
        xp=xp,
    )
    # nu / sum(nu), or (no mass at all: seed_mass 0) equal weights over the seeded ones
    # (one of them at least: the new), chosen where the sums are (no read)
    nu_total = xp.sum(nu)
    seeded_f = xp.astype(seeded, f64)
    weights = xp.where(nu_total > 0, nu / xp.where(nu_total > 0, nu_total, 1.0),
                       seeded_f / xp.sum(seeded_f))
    prec_chol = backend.precision_cholesky(covariances, covariance_type)
    return state.replace(
        weights=weights,
        means=means,
        covariances=covariances,
        precisions_cholesky=prec_chol,
        mass=mass,
        nu=nu,
        moment=moment,
        tied_mass=tied_mass,
        seeded=seeded,
    )


#: Components whose means lie within this many standard deviations of each other are
#: redundant (the same component twice: far below any separation EM can resolve, far above
#: float64 rounding).
REDUNDANT_TOL = 1e-6
_DIRECTION_SEED = 20251201


@functools.lru_cache(maxsize=8)
def _direction(n_features: int) -> np.ndarray:
    """A fixed unit vector (the same in every process: resumes and workers agree)."""
    v = np.random.RandomState(_DIRECTION_SEED).standard_normal(n_features)
    v /= np.linalg.norm(v)
    v.setflags(write=False)
    return v


_DIRECTIONS: dict = {}


def _direction_like(means, xp) -> Any:
    """:func:`_direction` in the namespace and on the device of ``means``, copied there
    once per device (not at every check: a host-to-device copy on a GPU)."""
    if isinstance(means, np.ndarray):
        return _direction(means.shape[1])
    key = (means.shape[1], str(device(means)), type(means).__module__)
    if key not in _DIRECTIONS:
        _DIRECTIONS[key] = asarray_like(np.array(_direction(means.shape[1])), means, xp,
                                        dtype=xp.float64)
    return _DIRECTIONS[key]


def redundant_components(state: MixtureState, covariance_type: str, xp) -> np.ndarray:
    """(K,) bool host array: seeded components that duplicate another (same mean within
    :data:`REDUNDANT_TOL` of the smaller scale), all but the heaviest of each group
    (:func:`redundant_mask` brought to the host)."""
    return to_numpy(redundant_mask(state, covariance_type, xp)).astype(bool)


def redundant_mask(state: MixtureState, covariance_type: str, xp) -> Any:
    """(K,) bool array on the state's device: :func:`redundant_components`, computed there
    with a fixed number of operations (no host read, no loop over components).

    A batch of identical rows seeds identical components, and identical components get
    identical responsibilities for ever: they never separate unless one is reseeded. The
    means projected on one fixed direction are sorted (unseeded ones last), and neighbours
    closer than the tolerance there are compared in full; of each close pair the lighter
    goes (ties: the later index), so the heaviest of a group, the lighter of no pair,
    stays."""
    K, D = state.means.shape
    f64 = xp.float64
    seeded = state.seeded
    # NumPy: one BLAS thread (threads woken by this small product would spin for
    # milliseconds against a step's numba threads)
    with (blas_threads_for(0) if isinstance(state.means, np.ndarray)
          else contextlib.nullcontext()):
        proj = state.means @ _direction_like(state.means, xp)
    var = covariance(covariance_type).mean_variance(state.covariances, K, xp)
    tol = REDUNDANT_TOL * xp.sqrt(xp.maximum(xp.astype(var, f64), xp.zeros_like(var)))
    key = xp.where(seeded, proj, xp.full_like(proj, float("inf")))
    order = xp.argsort(key, stable=True)
    a, b = order[:-1], order[1:]
    take = lambda v, i: xp.take(v, i, axis=0)  # noqa: E731
    limit = xp.minimum(take(tol, a), take(tol, b))
    close = (take(seeded, a) & take(seeded, b)
             & (xp.abs(take(proj, b) - take(proj, a)) <= limit))
    if isinstance(close, np.ndarray):  # on the host: compare the close pairs alone (few)
        a, b, limit = a[close], b[close], limit[close]
        close = np.ones(a.shape[0], dtype=bool)
    # (on a device every neighbour pair, a fixed number of operations and no read)
    diff = take(state.means, a) - take(state.means, b)
    same = close & (xp.sqrt(xp.sum(diff * diff, axis=1)) <= limit)
    wa, wb = take(state.weights, a), take(state.weights, b)
    b_lighter = (wb < wa) | ((wb == wa) & (b > a))
    return scatter_any(xp.where(b_lighter, b, a), same, K, xp)


# ---------------------------------------------------------------------- the step's seeding
def needs_seeding(state: MixtureState, config, xp=None,
                  redundancy: bool = False) -> bool:
    """Whether a step would seed or reseed any component: unseeded or dead ones exist, or
    (``redundancy``, with the namespace ``xp``) redundant ones
    (:func:`~online_gmm._em.seeding.redundant_components`)."""
    if not to_numpy(state.seeded).all():
        return True
    if config.max_reseed == 0:
        return False
    if to_numpy(state.weights).min() < config.dead_threshold / config.n_components:
        return True
    return redundancy and bool(redundant_components(state, config.covariance_type, xp).any())


def seeding_flag(state: MixtureState, config, xp, redundancy: bool = False) -> Any:
    """:func:`needs_seeding` as a 0-d boolean array on the state's device, read by no one
    here: a caller that reads one fused flag per step asks it of the new state, so that
    the next step knows whether to seed without a read of its own."""
    flag = ~xp.all(state.seeded)
    if config.max_reseed == 0:
        return flag
    flag = flag | (xp.min(state.weights) < config.dead_threshold / config.n_components)
    if redundancy:
        flag = flag | xp.any(redundant_mask(state, config.covariance_type, xp))
    return flag


#: Redundancy is checked at each of the first REDUNDANCY_EVERY steps (where a degenerate
#: start shows), then every REDUNDANCY_EVERY-th step, and at every seeding step (the check
#: costs a (K, D) product and a sort of K values: about 5 % of a small step).
REDUNDANCY_EVERY = 32


def redundancy_due(step: int, n_components: int, n_features: int) -> bool:
    """Whether step ``step`` checks for redundant components."""
    return step < REDUNDANCY_EVERY or step % REDUNDANCY_EVERY == 0


def seed_from_sample(state: MixtureState, X, w, *, config,
                     rng: np.random.RandomState, backend) -> MixtureState:
    """Seed an unseeded ``state`` from the sample ``X`` (n, D) with weights ``w`` (n,): the
    seeding of a first step, alone (:meth:`OnlineGaussianMixture.fit` seeds from a random
    sample of its data, larger than one mini-batch). No statistics are added."""
    w_host = to_numpy(w).astype(np.float64)
    state, _, _ = _seed_and_reseed(state, X, w, w_host, config, rng, backend)
    return state


def _seed_and_reseed(state, X, w, w_host, config, rng, backend):
    """Seed unseeded components and reseed dead ones from this batch."""
    xp = backend.xp
    fast = backend.name == "numba" and isinstance(X, np.ndarray)
    K = config.n_components
    ct = config.covariance_type
    # the state's flags, weights and masses on the host in one read
    seeded, weights, nu, mass = to_numpy(xp.stack([
        xp.astype(state.seeded, xp.float64), state.weights, state.nu, state.mass]))
    seeded = seeded.astype(bool)
    n_pos = int((w_host > 0).sum())
    if n_pos == 0:
        return state, 0, 0
    if not seeded.any():
        n_new = min(K, n_pos)
        means = initial_means(X, w_host, n_new, config.init_params, rng, xp, fast)
        var = residual_variance(X, w, means, ct, xp)
        if var is None:
            var = batch_variance(X, w, ct, xp)
        comp = np.arange(means.shape[0])
        state = seed_components(
            state, comp, means, var, seed_mass=config.seed_mass, covariance_type=ct,
            reg_covar=config.reg_covar, backend=backend, first=True, host=(seeded, nu),
        )
        return state, len(comp), 0
    dead = seeded & (weights < config.dead_threshold / K)
    if config.max_reseed != 0:  # duplicates of another component are reseeded as dead ones
        dead |= redundant_components(state, ct, xp)
    unseeded = np.flatnonzero(~seeded)
    dead_idx = np.flatnonzero(dead)
    cap = n_pos if config.max_reseed is None else min(config.max_reseed, n_pos)
    dead_idx = dead_idx[:cap]
    targets = np.concatenate([unseeded[: max(n_pos - len(dead_idx), 0)], dead_idx])
    if targets.size == 0:
        return state, 0, 0
    live = seeded & ~dead
    live_means = xp.take(state.means, take_index(np.flatnonzero(live), state.means, xp), axis=0)
    idx = kmeans_plusplus_indices(X, w_host, live_means, targets.size, rng, xp, fast, w=w)
    targets = targets[: idx.shape[0]]
    if idx.shape[0] == 0:
        return state, 0, 0
    var = pooled_variance(state, ct, config.reg_covar, xp,
                          any_live=bool((seeded & (mass > 0)).any()))
    if var is None:
        var = batch_variance(X, w, ct, xp)
    new_means = xp.astype(xp.take(X, take_index(idx, X, xp), axis=0), xp.float64)
    state = seed_components(
        state, targets, new_means, var, seed_mass=config.seed_mass, covariance_type=ct,
        reg_covar=config.reg_covar, backend=backend, first=False,
        fair_share=config.fair_share, host=(seeded, nu),
    )
    n_reseeded = int(np.isin(targets, dead_idx).sum())
    return state, int(targets.size) - n_reseeded, n_reseeded


# ---------------------------------------------------------------------- Lloyd
#: Lloyd iterations of each warm-up restart and birth proposal.
LLOYD_ITERATIONS = 5


def kmeans(X: np.ndarray, n_clusters: int, *, sample_weight: np.ndarray | None = None,
           init: Any = "k-means++", max_iter: int = 300, random_state: Any = None,
           one_thread: bool = False, quiet: bool = False) -> Any:
    """scikit-learn's ``KMeans`` (one initialisation, Lloyd) fitted on the host rows ``X``:
    the one place the project runs it. ``one_thread``: its sums depend on its thread
    count, so a result that must be bit-identical whatever the process's threads (a resumed
    stream) runs on one; ``quiet``: no ``ConvergenceWarning`` (a fixed number of
    iterations)."""
    import warnings

    from sklearn.cluster import KMeans
    from sklearn.exceptions import ConvergenceWarning

    km = KMeans(n_clusters=n_clusters, init=init, n_init=1, max_iter=max_iter,
                random_state=random_state, algorithm="lloyd")
    limits = _thread_pools().limit(limits=1) if one_thread else contextlib.nullcontext()
    with warnings.catch_warnings(), limits:
        if quiet:
            warnings.simplefilter("ignore", ConvergenceWarning)
        return km.fit(X, sample_weight=sample_weight)


_controller = None


def _thread_pools():
    """threadpoolctl's controller of the loaded thread pools, made once (``KMeans``'s
    OpenMP and BLAS are loaded by then): making one scans every loaded library, which took
    6-8 ms a call on a busy machine, three times per warm-up."""
    global _controller
    if _controller is None:
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController()
    return _controller


def lloyd(Xb, wb, means, n_iter: int, xp):
    """``n_iter`` Lloyd iterations from ``means`` (:func:`kmeans`, on the host, one thread)."""
    X_host = np.asarray(to_numpy(Xb), dtype=np.float64)
    init = np.asarray(to_numpy(means), dtype=np.float64)
    w_host = np.asarray(to_numpy(wb), dtype=np.float64)
    km = kmeans(X_host, init.shape[0], sample_weight=w_host / w_host.max(),  # (no overflow)
                init=init, max_iter=n_iter, one_thread=True, quiet=True)
    return asarray_like(km.cluster_centers_, means, xp, dtype=xp.float64)


def reseeded_at(state: MixtureState, means, Xb, wb, config, backend) -> MixtureState:
    """The seeds moved to Lloyd's centres, with the residual variance they imply."""
    xp = backend.xp
    ct = config.covariance_type
    var = residual_variance(Xb, wb, means, ct, xp)
    if var is None:
        var = batch_variance(Xb, wb, ct, xp)
    return seeded_afresh(means.shape[0], means, var, config, backend)


def seeded_afresh(n_components: int, means, variance, config, backend) -> MixtureState:
    """A new mixture of ``n_components`` whose first ``means.shape[0]`` components are
    seeded at ``means`` (float64, on the data's device) with ``variance``, the rest
    unseeded: :func:`seed_components` of an empty state, whose flags and masses (all
    zero) it need not read."""
    K = n_components
    ct = config.covariance_type
    fresh = empty_state(K, means.shape[1], ct, backend.xp, device(means))
    return seed_components(fresh, np.arange(means.shape[0]), means, variance,
                           seed_mass=config.seed_mass, covariance_type=ct,
                           reg_covar=config.reg_covar, backend=backend, first=True,
                           host=(np.zeros(K, dtype=bool), np.zeros(K)))
