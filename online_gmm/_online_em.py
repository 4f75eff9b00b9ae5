"""One online-EM step on a batch: seed, reseed, E-step at temperature T, forgetting M-step.

Plain functions over a :class:`~online_gmm._stats.MixtureState`. The estimator and the
PyTorch bridge both call :func:`em_step`; neither holds math of its own. The step is
functional: it builds a new state and leaves the old one untouched, so an exception anywhere
inside leaves the caller's model exactly as it was.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _blocked
from ._array_api import blas_threads_for, device, to_numpy
from ._blocked import BLOCKED_TYPES, blas_work
from ._estep import batch_statistics, prepare
from ._gaussian import covariance_shape, covariances_from_precisions, precision_cholesky
from ._seeding import (
    batch_variance,
    initial_means,
    kmeans_plusplus_indices,
    pooled_variance,
    residual_variance,
    seed_components,
)
from ._stats import MixtureState, m_step


@dataclass(frozen=True)
class EMConfig:
    """The hyper-parameters one step needs (validated by the caller)."""

    n_components: int
    covariance_type: str = "diag"
    reg_covar: float = 1e-6
    forgetting: str = "responsibility"
    seed_mass: float = 1.0
    dead_threshold: float = 1e-3
    max_reseed: int | None = None
    init_params: str = "k-means++"


@dataclass(frozen=True)
class StepInfo:
    """What one step saw: for logging, convergence checks and counters."""

    loglik: float  # sum_n w_n log p(x_n) under the parameters *before* the step
    weight: float
    n_samples: int
    n_seeded: int
    n_reseeded: int
    temperature: float
    forgetting_rate: float


def empty_state(n_components: int, n_features: int, covariance_type: str, xp, dev) -> MixtureState:
    """All components unseeded: zero weight and mass, unit covariances."""
    f64 = xp.float64
    K, D = n_components, n_features
    if covariance_type in ("full", "tied"):
        eye = xp.eye(D, dtype=f64, device=dev)
        cov = eye if covariance_type == "tied" else xp.broadcast_to(eye, (K, D, D))
        cov = xp.asarray(cov, copy=True)
    else:
        cov = xp.ones(covariance_shape(covariance_type, K, D), dtype=f64, device=dev)
    return MixtureState(
        weights=xp.zeros(K, dtype=f64, device=dev),
        means=xp.zeros((K, D), dtype=f64, device=dev),
        covariances=cov,
        precisions_cholesky=xp.asarray(cov, copy=True),
        mass=xp.zeros(K, dtype=f64, device=dev),
        nu=xp.zeros(K, dtype=f64, device=dev),
        moment=xp.zeros(covariance_shape(covariance_type, K, D), dtype=f64, device=dev),
        tied_mass=xp.zeros(1, dtype=f64, device=dev),
        seeded=xp.zeros(K, dtype=xp.bool, device=dev),
    )


def user_initialised_state(
    state: MixtureState,
    X,
    w,
    *,
    config: EMConfig,
    means_init,
    weights_init,
    precisions_init,
    xp,
    fast: bool,
) -> MixtureState:
    """Every component seeded from ``means_init`` (and the optional weights and precisions).

    Covariances come from ``precisions_init`` when given, else from the first batch's
    variance; each component starts with ``seed_mass`` of evidence.
    """
    K = config.n_components
    f64 = xp.float64
    dev = device(state.means)
    ct = config.covariance_type
    means = xp.asarray(means_init, dtype=f64, device=dev)
    if weights_init is not None:
        weights = xp.asarray(weights_init, dtype=f64, device=dev)
    else:
        weights = xp.full((K,), 1.0 / K, dtype=f64, device=dev)
    if precisions_init is not None:
        covariances = covariances_from_precisions(
            xp.asarray(precisions_init, dtype=f64, device=dev), ct, xp
        )
        if ct in ("full", "tied"):
            covariances = 0.5 * (covariances + xp.matrix_transpose(covariances))
        var = covariances
    else:
        var = batch_variance(X, w, ct, xp)
        if ct in ("full", "tied"):
            reg = config.reg_covar * xp.eye(var.shape[-1], dtype=f64, device=dev)
        else:
            reg = config.reg_covar
        one = var + reg
        covariances = one if ct == "tied" else xp.asarray(
            xp.broadcast_to(one[None, ...], covariance_shape(ct, K, means.shape[1])), copy=True
        )
        if ct != "tied":
            var = xp.asarray(xp.broadcast_to(var[None, ...], covariances.shape), copy=True)
    sm = float(config.seed_mass)
    if ct == "tied":
        moment, tied_mass = sm * K * var, xp.asarray([sm * K], dtype=f64, device=dev)
    else:
        moment, tied_mass = sm * var, state.tied_mass
    return state.replace(
        weights=weights,
        means=means,
        covariances=covariances,
        precisions_cholesky=precision_cholesky(covariances, ct, xp, fast),
        mass=xp.full((K,), sm, dtype=f64, device=dev),
        nu=sm * K * weights,
        moment=moment,
        tied_mass=tied_mass,
        seeded=xp.ones(K, dtype=xp.bool, device=dev),
    )


def needs_seeding(state: MixtureState, config: EMConfig) -> bool:
    """Whether a step would seed or reseed any component (unseeded or dead ones exist)."""
    if not to_numpy(state.seeded).all():
        return True
    if config.max_reseed == 0:
        return False
    return bool(to_numpy(state.weights).min() < config.dead_threshold / config.n_components)


def seed_from_sample(
    state: MixtureState, X, w, *, config: EMConfig, rng: np.random.RandomState, xp: Any,
    fast: bool,
) -> MixtureState:
    """Seed an unseeded ``state`` from the sample ``X`` (n, D) with weights ``w`` (n,): the
    seeding of a first step, alone (:meth:`OnlineGaussianMixture.fit` seeds from a random
    sample of its data, larger than one mini-batch). No statistics are added."""
    w_host = to_numpy(w).astype(np.float64)
    state, _, _ = _seed_and_reseed(state, X, w, w_host, config, rng, xp, fast)
    return state


def _seed_and_reseed(state, X, w, w_host, config: EMConfig, rng, xp, fast):
    """Seed unseeded components and reseed dead ones from this batch."""
    K = config.n_components
    ct = config.covariance_type
    seeded = to_numpy(state.seeded).astype(bool)
    n_pos = int((w_host > 0).sum())
    if n_pos == 0:
        return state, 0, 0
    if not seeded.any():
        n_new = min(K, n_pos)
        means = initial_means(X, w_host, n_new, config.init_params, rng, xp)
        var = residual_variance(X, w, means, ct, xp)
        if var is None:
            var = batch_variance(X, w, ct, xp)
        comp = np.arange(means.shape[0])
        state = seed_components(
            state, comp, means, var, seed_mass=config.seed_mass, covariance_type=ct,
            reg_covar=config.reg_covar, xp=xp, fast=fast, first=True,
        )
        return state, len(comp), 0
    weights = to_numpy(state.weights)
    dead = seeded & (weights < config.dead_threshold / K)
    unseeded = np.flatnonzero(~seeded)
    dead_idx = np.flatnonzero(dead)
    cap = n_pos if config.max_reseed is None else min(config.max_reseed, n_pos)
    dead_idx = dead_idx[:cap]
    targets = np.concatenate([unseeded[: max(n_pos - len(dead_idx), 0)], dead_idx])
    if targets.size == 0:
        return state, 0, 0
    live = seeded & ~dead
    live_means = xp.take(state.means, _index(np.flatnonzero(live), state.means, xp), axis=0)
    idx = kmeans_plusplus_indices(X, w_host, live_means, targets.size, rng, xp)
    targets = targets[: idx.size]
    if idx.size == 0:
        return state, 0, 0
    var = pooled_variance(state, ct, config.reg_covar, xp)
    if var is None:
        var = batch_variance(X, w, ct, xp)
    new_means = xp.astype(xp.take(X, _index(idx, X, xp), axis=0), xp.float64)
    state = seed_components(
        state, targets, new_means, var, seed_mass=config.seed_mass, covariance_type=ct,
        reg_covar=config.reg_covar, xp=xp, fast=fast, first=False,
    )
    n_reseeded = int(np.isin(targets, dead_idx).sum())
    return state, int(targets.size) - n_reseeded, n_reseeded


def _index(idx: np.ndarray, like, xp):
    if isinstance(like, np.ndarray):
        return idx
    return xp.asarray(np.asarray(idx, dtype=np.int64), device=device(like))


def em_step(
    state: MixtureState,
    X,
    w,
    *,
    config: EMConfig,
    temperature: float,
    forgetting_rate: float,
    rng: np.random.RandomState,
    xp: Any,
    fast: bool,
    gather: Callable | None = None,
    reduce: Callable | None = None,
    statistics: Callable | None = None,
    seeding: bool | None = None,
) -> tuple[MixtureState, StepInfo]:
    """One online-EM step on the batch ``X`` (n, D) with sample weights ``w`` (n,).

    Returns the new state and a :class:`StepInfo`; ``state`` itself is never modified.

    For data-parallel training, ``gather(X, w) -> (X_all, w_all)`` returns the batch of every
    worker (called only when a component is to be seeded, so that all workers seed alike) and
    ``reduce(stats) -> stats`` merges the workers' :class:`BatchStats`: with both, every
    worker computes the step one process would compute on the concatenated batch.
    ``statistics(prepared, inv_temp) -> BatchStats`` replaces the local E-step over ``X``
    (Dask computes it on the workers, chunk by chunk). ``seeding``: the value of
    :func:`needs_seeding` for ``state``, when the caller has it already.
    """
    n, d = X.shape
    K = config.n_components
    plan = None
    work = n * K * d
    if fast and config.covariance_type in BLOCKED_TYPES:
        # the block plan, made once: it sets BLAS's threads here and the blocks in _blocked
        plan = _blocked.block_plan(n, K, d, X.dtype.itemsize)
        work = blas_work(n, K, d, X.dtype.itemsize, plan=plan)
    # one BLAS setting for the whole step: idle BLAS threads woken by any product spin
    # against the blocks' threads
    with blas_threads_for(work, fast):
        return _em_step(
            state, X, w, config=config, temperature=temperature,
            forgetting_rate=forgetting_rate, rng=rng, xp=xp, fast=fast, gather=gather,
            reduce=reduce, statistics=statistics, plan=plan, seeding=seeding,
        )


def _em_step(state, X, w, *, config, temperature, forgetting_rate, rng, xp, fast, gather,
             reduce, statistics, plan=None, seeding=None):
    """:func:`em_step` inside its BLAS setting; ``plan``: the batch's block plan (made by
    ``em_step``, whose BLAS setting follows it) when the statistics run block-parallel."""
    n_seeded = n_reseeded = 0
    if needs_seeding(state, config) if seeding is None else seeding:
        X_seed, w_seed = (X, w) if gather is None else gather(X, w)
        w_host = to_numpy(w_seed).astype(np.float64)
        state, n_seeded, n_reseeded = _seed_and_reseed(
            state, X_seed, w_seed, w_host, config, rng, xp, fast
        )
        # (without seeding every component is seeded already)
        if not bool(xp.any(state.seeded)):  # a batch whose weights are all zero, first of all
            return state, StepInfo(0.0, 0.0, X.shape[0], 0, 0, temperature, forgetting_rate)
    if statistics is None and fast and config.covariance_type in BLOCKED_TYPES:
        stats = _blocked.state_statistics(
            state, config.covariance_type, X, w, 1.0 / temperature, plan
        )
    else:
        p = prepare(
            state.weights, state.means, state.precisions_cholesky, config.covariance_type,
            X.dtype, xp,
        )
        if statistics is None:
            stats = batch_statistics(X, w, p, 1.0 / temperature, xp, fast)
        else:
            stats = statistics(p, 1.0 / temperature)
    if reduce is not None:
        stats = reduce(stats)
    new = m_step(
        state, stats, eta=forgetting_rate, forgetting=config.forgetting,
        covariance_type=config.covariance_type, reg_covar=config.reg_covar, xp=xp, fast=fast,
    )
    info = StepInfo(
        loglik=stats.loglik,
        weight=stats.weight,
        n_samples=stats.n_samples,
        n_seeded=n_seeded,
        n_reseeded=n_reseeded,
        temperature=temperature,
        forgetting_rate=forgetting_rate,
    )
    return new, info
