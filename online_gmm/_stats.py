"""Sufficient statistics: a batch's (mass, mean, centred moment), their pairwise merge, and
the forgetting M-step that folds them into the mixture state.

Moment layout per covariance type (``M`` in the contract):

- ``full``: (K, D, D) centred scatter matrices;
- ``diag``: (K, D) centred sums of squares;
- ``spherical``: (K,) centred sum of squares averaged over the D features;
- ``tied``: (D, D) pooled within-component scatter (one matrix, with its own mass).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from . import _mstep_kernels
from ._gaussian import _PD_MSG, covariances_from_moments, precision_cholesky


@dataclass(frozen=True)
class BatchStats:
    """Weighted statistics of one batch: the sums of the contract's "Batch statistics"."""

    mass: Any  # (K,) m_k = sum_n w_n r_nk
    mean: Any  # (K, D) xb_k
    moment: Any  # Mb_k, layout as the module docstring
    weight: float  # sum_n w_n
    loglik: float  # sum_n w_n log p(x_n) at T = 1
    n_samples: int


def empty_stats(n_components, n_features, covariance_type, xp, dev) -> BatchStats:
    f64 = xp.float64
    shape = {
        "full": (n_components, n_features, n_features),
        "tied": (n_features, n_features),
        "diag": (n_components, n_features),
        "spherical": (n_components,),
    }[covariance_type]
    return BatchStats(
        mass=xp.zeros(n_components, dtype=f64, device=dev),
        mean=xp.zeros((n_components, n_features), dtype=f64, device=dev),
        moment=xp.zeros(shape, dtype=f64, device=dev),
        weight=0.0,
        loglik=0.0,
        n_samples=0,
    )


def _outer_term(d, coef, covariance_type, xp):
    """``coef_k * d_k^(2 or outer)`` in the moment layout of ``covariance_type``."""
    if covariance_type == "diag":
        return coef[:, None] * d * d
    if covariance_type == "spherical":
        return coef * xp.sum(d * d, axis=1) / d.shape[1]
    if covariance_type == "full":
        return coef[:, None, None] * (d[:, :, None] * d[:, None, :])
    return (d * coef[:, None]).T @ d  # tied: pooled over components


def merge_stats(a: BatchStats, b: BatchStats, covariance_type: str, xp) -> BatchStats:
    """Pairwise (Chan et al.) merge: the statistics of the union of two batches."""
    m = a.mass + b.mass
    safe = xp.where(m > 0, m, xp.ones_like(m))
    d = b.mean - a.mean
    mean = a.mean + d * (b.mass / safe)[:, None]
    coef = a.mass * b.mass / safe
    moment = a.moment + b.moment + _outer_term(d, coef, covariance_type, xp)
    return BatchStats(
        mass=m,
        mean=mean,
        moment=moment,
        weight=a.weight + b.weight,
        loglik=a.loglik + b.loglik,
        n_samples=a.n_samples + b.n_samples,
    )


@dataclass(frozen=True)
class MixtureState:
    """Everything the online EM carries from batch to batch (float64, on the data's device).

    ``weights``, ``means``, ``covariances`` and ``precisions_cholesky`` are the model's
    parameters (what the E-step uses); ``mass`` (n_k), ``nu`` (time-forgotten mass for the
    weights), ``moment`` (M_k) and ``tied_mass`` are the evidence behind them.
    """

    weights: Any
    means: Any
    covariances: Any
    precisions_cholesky: Any
    mass: Any
    nu: Any
    moment: Any
    tied_mass: Any  # (1,): the mass behind the tied moment (unused by other types)
    seeded: Any  # (K,) bool

    def replace(self, **changes) -> MixtureState:
        return replace(self, **changes)


def forgetting_factors(stats: BatchStats, eta: float, forgetting: str, xp):
    """``(rho_k, rho_time)``: evidence kept by each component and by the weights/tied moment."""
    keep = 1.0 - eta
    rho_time = keep**stats.weight
    if forgetting == "responsibility":
        rho = xp.exp(stats.mass * _log_keep(keep))
    else:
        rho = xp.full_like(stats.mass, rho_time)
    return rho, rho_time


def _log_keep(keep: float) -> float:
    return math.log(keep) if keep > 0 else -float("inf")


def m_step(
    state: MixtureState,
    stats: BatchStats,
    *,
    eta: float,
    forgetting: str,
    covariance_type: str,
    reg_covar: float,
    xp,
    fast: bool,
) -> MixtureState:
    """Fold a batch's statistics into the state with forgetting (the contract's M-step).

    ``fast`` with float64 NumPy arrays, ``diag``/``spherical``: one numba kernel
    (:func:`_m_step_kernel`), the same values to rounding; else array-API code."""
    if fast and covariance_type in _KERNEL_KINDS and _float64_numpy(state, stats):
        return _m_step_kernel(state, stats, eta, forgetting, covariance_type, reg_covar)
    rho, rho_time = forgetting_factors(stats, eta, forgetting, xp)
    m = stats.mass
    n_old = state.mass
    n_new = rho * n_old + m
    has = n_new > 0
    safe = xp.where(has, n_new, xp.ones_like(n_new))
    d = stats.mean - state.means
    got = m > 0
    step = xp.where(got, m / safe, xp.zeros_like(m))
    means = state.means + d * step[:, None]
    coef = xp.where(got, rho * n_old * m / safe, xp.zeros_like(m))
    if covariance_type == "tied":
        moment = rho_time * state.moment + stats.moment + _outer_term(d, coef, "tied", xp)
        tied_mass = rho_time * state.tied_mass + xp.sum(m)
    else:
        rho_b = rho if covariance_type == "spherical" else (
            rho[:, None] if covariance_type == "diag" else rho[:, None, None]
        )
        moment = rho_b * state.moment + stats.moment + _outer_term(d, coef, covariance_type, xp)
        tied_mass = state.tied_mass
    nu = rho_time * state.nu + m
    nu_total = xp.sum(nu)
    weights = nu / nu_total if float(nu_total) > 0 else state.weights
    covariances = covariances_from_moments(
        moment, n_new, tied_mass, covariance_type, reg_covar, xp
    )
    if covariance_type != "tied":
        keep_old = ~has
        if covariance_type == "diag":
            keep_old = keep_old[:, None]
        elif covariance_type == "full":
            keep_old = keep_old[:, None, None]
        covariances = xp.where(keep_old, state.covariances, covariances)
    elif not float(tied_mass[0]) > 0:
        covariances = state.covariances
    prec_chol = precision_cholesky(covariances, covariance_type, xp, fast)
    return state.replace(
        weights=weights,
        means=means,
        covariances=covariances,
        precisions_cholesky=prec_chol,
        mass=n_new,
        nu=nu,
        moment=moment,
        tied_mass=tied_mass,
    )


_KERNEL_KINDS = {"diag": 0, "spherical": 1}
_STATE_ARRAYS = ("weights", "means", "covariances", "mass", "nu", "moment")


def _float64_numpy(state: MixtureState, stats: BatchStats) -> bool:
    """Whether every array the M-step kernel reads is a float64 NumPy array."""
    f64 = np.float64
    for a in (stats.mass, stats.mean, stats.moment, *(getattr(state, n) for n in _STATE_ARRAYS)):
        if type(a) is not np.ndarray or a.dtype != f64:
            return False
    return True


def _m_step_kernel(state: MixtureState, stats: BatchStats, eta: float, forgetting: str,
                   covariance_type: str, reg_covar: float) -> MixtureState:
    """:func:`m_step` for float64 NumPy ``diag``/``spherical``: the forgetting factors as
    there, the rest in one numba call (:func:`online_gmm._mstep_kernels.forgetting_m_step`):
    the same values, to rounding. Every returned array is new (none aliases ``state``'s)
    but ``tied_mass`` and ``seeded``, which the step does not change (as there)."""
    rho, rho_time = forgetting_factors(stats, eta, forgetting, np)
    kind = _KERNEL_KINDS[covariance_type]
    K = state.means.shape[0]
    moment_b, covariances, moment = stats.moment, state.covariances, state.moment
    if kind == 1:  # (K,) as (K, 1) columns
        moment_b, covariances, moment = (a.reshape(K, 1) for a in (moment_b, covariances,
                                                                    moment))
    weights, means, cov, prec_chol, mass, nu, moment, positive = (
        _mstep_kernels.forgetting_m_step(
            kind, rho, float(rho_time), float(reg_covar), stats.mass, stats.mean, moment_b,
            state.weights, state.means, covariances, state.mass, state.nu, moment,
        )
    )
    if not positive:
        raise ValueError(_PD_MSG)
    if kind == 1:
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
