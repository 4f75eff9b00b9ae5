"""One online-EM step on a batch, and :func:`advance`, the one step every caller takes.

:func:`em_step` is the math of a step (seed, reseed, E-step at temperature T, forgetting
M-step) over a :class:`~online_gmm._math.state.MixtureState`. :func:`advance` wraps it with what
every caller needs around it: the schedules of the step, the user's initial parameters, the
finiteness check of the new state and the restore of the RNG when anything fails. The
estimator, its Dask path and the PyTorch bridge all call :func:`advance` and then only
publish the result. Both are functional: they build a new state and leave the old one
untouched, so an exception anywhere inside leaves the caller's model exactly as it was.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._math.array_api import device, to_numpy
from .._math.covariance import PD_MSG, covariance
from .._math.schedules import Schedules
from .._math.state import STATE_FIELDS, MixtureState
from . import warmup as _warmup
from .batch import nonfinite_field
from .expectation import statistics, step_prepared
from .seeding import (
    _seed_and_reseed,
    batch_variance,
    needs_seeding,
    redundancy_due,
)
from .warmup import Warmup


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
    #: The variational mixture's prior (:class:`online_gmm._math.variational.Prior`): the step's
    #: E-step is then the variational posterior's. None: the plain mixture's.
    prior: Any = None
    #: Whether a reseeded component's weight mass is the live components' mean (a fair
    #: chance, the plain mixture) or ``seed_mass`` (its evidence, the variational mixture).
    fair_share: bool = True
    #: The warm-up restarts' iterations (None: :data:`online_gmm._em.warmup.EM_ITERATIONS`).
    warmup_iterations: int | None = None


@dataclass(frozen=True)
class InitialParameters:
    """User-given initial parameters (``means_init`` and the optional weights and
    precisions, validated by the caller), applied by the first step."""

    means: Any
    weights: Any = None
    precisions: Any = None


@dataclass(frozen=True)
class Hooks:
    """The extension point of a step (all optional), for data-parallel and distributed runs.

    ``gather(X, w) -> (X_all, w_all)`` returns the batch of every worker (called only when
    a component is to be seeded or the initial parameters applied, so that all workers seed
    alike); ``reduce(stats) -> stats`` merges the workers' :class:`BatchStats`: with both,
    every worker computes the step one process would compute on the concatenated batch.
    ``statistics(prepared, inv_temp) -> BatchStats`` replaces the local E-step over ``X``
    (Dask computes it on the workers, chunk by chunk). ``on_log_density(rows, logp)`` is
    handed the local E-step's weighted log-densities ``log pi_k + log N(x | mu_k,
    Sigma_k)`` of the rows ``rows`` (a slice of ``X``), before their softmax (a view: copy
    what you keep), so that a caller's targets come from the step's own E-step. A callable
    with an ``array`` attribute, an (n, K) C-contiguous array of the data's dtype, may get
    the log-densities written there directly (the numba backend: then ``logp`` is that
    array's rows ``rows``).
    """

    gather: Callable | None = None
    reduce: Callable | None = None
    statistics: Callable | None = None
    on_log_density: Callable | None = None


NO_HOOKS = Hooks()


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
    warmup: Any = None  # the warm-up's buffer after the step (None: off, or done)
    #: the RNG's state before the step, when the step drew from it (None: it did not): a
    #: caller whose commit fails restores it (``rng.set_state``), so nothing changed
    rng_before: Any = None
    #: with a backend that defers its checks (``defer_checks``): a 0-d boolean array on the
    #: device, True when the new state is not finite (nothing raised: the caller reads it,
    #: with whatever else it reads once per step, and refuses the state); None otherwise
    nonfinite: Any = None


def user_initialised_state(state: MixtureState, X, w, *, config: EMConfig,
                           initial: InitialParameters, backend) -> MixtureState:
    """Every component seeded from ``initial.means`` (and the optional weights and
    precisions).

    Covariances come from ``initial.precisions`` when given, else from the batch's
    variance; each component starts with ``seed_mass`` of evidence.
    """
    xp = backend.xp
    K = config.n_components
    f64 = xp.float64
    dev = device(state.means)
    cov = covariance(config.covariance_type)
    means = xp.asarray(initial.means, dtype=f64, device=dev)
    D = means.shape[1]
    if initial.weights is not None:
        weights = xp.asarray(initial.weights, dtype=f64, device=dev)
    else:
        weights = xp.full((K,), 1.0 / K, dtype=f64, device=dev)
    if initial.precisions is not None:
        covariances = cov.covariances_from_precisions(
            xp.asarray(initial.precisions, dtype=f64, device=dev), xp
        )
        var = covariances
    else:
        one = batch_variance(X, w, config.covariance_type, xp)
        covariances = cov.expand(cov.regularised(one, config.reg_covar, xp), K, D, xp)
        var = cov.expand(one, K, D, xp)
    sm = float(config.seed_mass)
    moment, tied_mass = cov.initial_moment(var, K, sm, state.tied_mass, xp)
    return state.replace(
        weights=weights,
        means=means,
        covariances=covariances,
        precisions_cholesky=backend.precision_cholesky(covariances, config.covariance_type),
        mass=xp.full((K,), sm, dtype=f64, device=dev),
        nu=sm * K * weights,
        moment=moment,
        tied_mass=tied_mass,
        seeded=xp.ones(K, dtype=xp.bool, device=dev),
    )


def em_step(
    state: MixtureState,
    X,
    w,
    *,
    config: EMConfig,
    temperature: float,
    forgetting_rate: float,
    rng: np.random.RandomState,
    backend,
    hooks: Hooks = NO_HOOKS,
    seeding: bool | None = None,
    host_weights: np.ndarray | None = None,
) -> tuple[MixtureState, StepInfo]:
    """One online-EM step on the batch ``X`` (n, D) with sample weights ``w`` (n,).

    Returns the new state and a :class:`StepInfo`; ``state`` itself is never modified.
    ``hooks``: see :class:`Hooks`. ``seeding``: the value of :func:`needs_seeding` for
    ``state``, when the caller has it already. ``host_weights``: ``w`` on the host, where
    the caller has it (read for a seeding otherwise).
    """
    context, plan = backend.step_plan(X, config.n_components, config.covariance_type)
    with context:
        return _em_step(state, X, w, config, temperature, forgetting_rate, rng, backend,
                        hooks, plan, seeding, host_weights)


def _em_step(state, X, w, config, temperature, forgetting_rate, rng, backend, hooks, plan,
             seeding, host_weights=None):
    """:func:`em_step` inside its BLAS setting; ``plan``: the backend's plan of the batch's
    statistics (made by ``em_step``, whose BLAS setting follows it)."""
    n_seeded = n_reseeded = 0
    if needs_seeding(state, config) if seeding is None else seeding:
        X_seed, w_seed = (X, w) if hooks.gather is None else hooks.gather(X, w)
        w_host = (to_numpy(w_seed).astype(np.float64)
                  if host_weights is None or hooks.gather is not None
                  else np.asarray(host_weights, dtype=np.float64))
        state, n_seeded, n_reseeded = _seed_and_reseed(
            state, X_seed, w_seed, w_host, config, rng, backend
        )
        # (without seeding every component is seeded already; with a component seeded now,
        # one is: nothing read)
        if not (n_seeded or n_reseeded or bool(backend.xp.any(state.seeded))):
            # all weights zero, first of all
            return state, StepInfo(0.0, 0.0, X.shape[0], 0, 0, temperature, forgetting_rate)
    ct = config.covariance_type
    if hooks.statistics is None:
        stats = statistics(state, config, X, w, 1.0 / temperature, backend, plan,
                           hooks.on_log_density)
    else:
        stats = hooks.statistics(step_prepared(state, config, X.dtype, backend),
                                 1.0 / temperature)
    if hooks.reduce is not None:
        stats = hooks.reduce(stats)
    info = StepInfo(
        loglik=stats.loglik,
        weight=stats.weight,
        n_samples=stats.n_samples,
        n_seeded=n_seeded,
        n_reseeded=n_reseeded,
        temperature=temperature,
        forgetting_rate=forgetting_rate,
    )
    # the step's own statistics (not a hook's, which may keep or reuse its arrays): the
    # M-step makes the new means and moment in their arrays
    own = hooks.statistics is None and hooks.reduce is None
    new = backend.m_step(state, stats, eta=forgetting_rate, forgetting=config.forgetting,
                         covariance_type=ct, reg_covar=config.reg_covar, consume=own)
    return new, info


def _warm_up(stepped, X, w, warmup, config, temperature, eta, rng, backend, hooks):
    """``(state, warmup)`` after buffering the batch. Before the first mark the state is
    ``stepped``, provisional; at it, the warm state of the restarts. Later (refining),
    ``stepped`` is the real state, and each mark recomputes it from the buffer. After a
    mark, the rows past the buffer step on the new state (under a ``gather`` hook those
    rows are other workers' too, and are not stepped on). Refinement needs a buffer that
    holds every row (no ``gather`` hook) and a stationary stream (forgetting rate 0), and
    ends once a refinement gains less than its tolerance (:func:`~online_gmm._em.warmup.
    at_mark`)."""
    if warmup.refining and (eta != 0 or hooks.gather is not None):
        return stepped, None
    X_new, w_new = (X, w) if hooks.gather is None else hooks.gather(X, w)
    warmup, X_rest, w_rest = _warmup.buffer(warmup, X_new, w_new, backend.xp)
    if not _warmup.is_full(warmup):
        return stepped, warmup
    state, over = _warmup.at_mark(stepped, warmup, config=config, rng=rng, backend=backend)
    if state is None:  # every restart (or the refinement) failed: go on from ``stepped``
        return stepped, None
    if hooks.gather is None and X_rest.shape[0] > 0:
        state, _ = em_step(state, X_rest, w_rest, config=config, temperature=temperature,
                           forgetting_rate=eta, rng=rng, backend=backend)
    refine = hooks.gather is None and eta == 0 and not over
    follow = _warmup.after(warmup) if refine else None
    return state, follow


def is_numerical_failure(exc: BaseException) -> bool:
    """Whether ``exc``, raised by a step, is its numerical failure (a non-finite state, a
    covariance that is not positive definite: what a backend that defers its checks
    reports as its non-finite flag instead), not a bad argument."""
    return isinstance(exc, FloatingPointError) or (
        isinstance(exc, ValueError) and str(exc) == PD_MSG)


def check_finite_state(state: MixtureState, backend) -> Any:
    """Refuse a state with NaN or inf (it would poison every later step). With a backend
    that defers its checks, return the flag instead (a 0-d boolean array: not finite)."""
    if getattr(backend, "defer_checks", False):
        return ~backend.finite_flag(*(getattr(state, n) for n in STATE_FIELDS[:-1]))
    name = nonfinite_field(state, backend, STATE_FIELDS[:-1])  # (``seeded`` is boolean)
    if name is not None:
        raise FloatingPointError(
            f"The update produced non-finite {name}; the model was left unchanged. "
            "This usually means the data's scale overflows float arithmetic "
            "(rescale it) or reg_covar is too small."
        )
    return None


def advance(
    state: MixtureState,
    X,
    w,
    *,
    config: EMConfig,
    schedules: Schedules,
    step: int,
    rng: np.random.RandomState,
    backend,
    hooks: Hooks = NO_HOOKS,
    initial: InitialParameters | None = None,
    warmup: Warmup | None = None,
    seeding: bool | None = None,
    host_weights: np.ndarray | None = None,
) -> tuple[MixtureState, StepInfo]:
    """The step every caller takes: batch number ``step`` (0-based) of a stream.

    The temperature and forgetting rate of ``step`` come from ``schedules``; ``initial``
    (user-given parameters) seeds every component first; :func:`em_step` runs with
    ``hooks``; while ``warmup`` buffers the start of the stream, the step is provisional
    and a full buffer replaces the state by :func:`online_gmm._em.warmup.warm_state` (the
    rows past the buffer then step on it); the new state is checked finite. The caller
    publishes the new state. If anything raises, ``rng`` is restored to its state before
    the call and nothing else was changed, so the caller's model is as it was; if the
    caller's own commit fails, ``info.rng_before`` restores it.

    Parameters
    ----------
    state : MixtureState
    X : array of shape (n_samples, n_features)
    w : array of shape (n_samples,)
        Sample weights, in ``X``'s dtype and namespace.
    config : EMConfig
    schedules : Schedules
    step : int
    rng : numpy.random.RandomState
        Advanced by seeding only.
    backend : ReferenceBackend or NumbaBackend
        From :func:`online_gmm.core.select_backend`.
    hooks : Hooks, optional
    initial : InitialParameters or None
    warmup : Warmup or None
        The warm-up's buffer (:mod:`online_gmm._em.warmup`); its successor is ``info.warmup``.
    seeding : bool or None
        Whether ``state`` needs seeding (:func:`~online_gmm._em.seeding.needs_seeding`,
        redundancy included when due at ``step``), when the caller knows it already (read
        with the previous step's flags, :func:`~online_gmm._em.seeding.seeding_flag`);
        None: asked here (host reads of the state).
    host_weights : ndarray of shape (n_samples,) or None
        ``w`` on the host, where the caller has it without a read (the seeding's choices
        are made there); None: read when the step seeds.

    Returns
    -------
    new_state : MixtureState
    info : StepInfo
    """
    # only seeding draws from the RNG (a snapshot costs ~40 us: not on every step)
    if initial is not None or warmup is not None:
        seeding = True  # (the test below is not needed: these steps may seed anyway)
    elif seeding is None:
        redundancy = redundancy_due(step, config.n_components, X.shape[1])
        seeding = needs_seeding(state, config, backend.xp, redundancy)
    rng_state = rng.get_state() if seeding else None
    try:
        if initial is not None:
            X_init, w_init = (X, w) if hooks.gather is None else hooks.gather(X, w)
            state = user_initialised_state(state, X_init, w_init, config=config,
                                           initial=initial, backend=backend)
        temperature, eta = schedules.at(step)
        new_state, info = em_step(
            state, X, w, config=config, temperature=temperature, forgetting_rate=eta,
            rng=rng, backend=backend, hooks=hooks,
            # the user's initial state is another state: em_step asks again
            seeding=None if initial is not None else seeding, host_weights=host_weights,
        )
        if warmup is not None:
            new_state, warmup = _warm_up(new_state, X, w, warmup, config, temperature, eta,
                                         rng, backend, hooks)
        nonfinite = check_finite_state(new_state, backend)
        # (inside: a fault while the step's info is made restores the generator too)
        info = dataclasses.replace(info, warmup=warmup, rng_before=rng_state,
                                   nonfinite=nonfinite)
    except BaseException:
        if rng_state is not None:
            rng.set_state(rng_state)
        raise
    return new_state, info
