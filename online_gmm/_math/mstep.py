"""The forgetting M-step: fold a batch's statistics into the mixture state (the contract's
"Responsibility-weighted forgetting"), written once against the array API.

The numba backend runs ``diag``/``spherical`` through one kernel with the same formulas
(:mod:`online_gmm._backends.mstep_kernels`), tested against this reference.
"""

from __future__ import annotations

import math
from typing import Any

from .covariance import covariance
from .state import BatchStats, MixtureState


def forgetting_factors(stats: BatchStats, eta: float, forgetting: str, xp: Any) -> tuple:
    """``(rho_k, rho_time)``: evidence kept by each component and by the weights/tied moment."""
    keep = 1.0 - eta
    rho_time = keep**stats.weight
    if forgetting == "responsibility":
        rho = xp.exp(stats.mass * _log_keep(keep))
    else:
        rho = xp.zeros_like(stats.mass) + rho_time  # (rho_time may be a device scalar)
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
    backend: Any,
    consume: bool = False,
) -> MixtureState:
    """Fold a batch's statistics into the state with forgetting; a new state (``state`` is
    never modified). ``backend`` computes the precision factors.

    ``consume``: ``stats``' mean and moment are the caller's own, not used after this call
    (a step's fresh statistics): the new means and moment are made in them, in place, so the
    step holds no further (K, D) arrays for them (the memory of a large mixture's step).
    """
    xp = backend.xp
    cov = covariance(covariance_type)
    rho, rho_time = forgetting_factors(stats, eta, forgetting, xp)
    m = stats.mass
    n_old = state.mass
    n_new = rho * n_old + m
    has = n_new > 0
    safe = xp.where(has, n_new, xp.ones_like(n_new))
    got = m > 0
    step = xp.where(got, m / safe, xp.zeros_like(m))
    coef = xp.where(got, rho * n_old * (m / safe), xp.zeros_like(m))  # (m / safe <= 1)
    if consume:  # d and then the new means in the statistics' own array
        d = stats.mean
        d -= state.means
        moment = stats.moment
        moment += cov.scale_moment(state.moment, rho, rho_time)
    else:
        d = stats.mean - state.means
        moment = cov.scale_moment(state.moment, rho, rho_time) + stats.moment
    del stats
    moment += cov.outer_term(d, coef, xp)
    d *= step[:, None]  # the new means: state.means + d * step, in d's array
    d += state.means
    means = d
    del d
    tied_mass = cov.fold_tied_mass(state.tied_mass, rho_time, m, xp)
    nu = rho_time * state.nu + m
    nu_total = xp.sum(nu)
    positive = nu_total > 0  # (selected on the device: no host read)
    weights = xp.where(positive, nu / xp.where(positive, nu_total, xp.ones_like(nu_total)),
                       state.weights)
    covariances = cov.covariances_from_moments(moment, n_new, tied_mass, reg_covar,
                                               state.covariances, has, xp)
    return state.replace(
        weights=weights,
        means=means,
        covariances=covariances,
        precisions_cholesky=backend.precision_cholesky(covariances, covariance_type),
        mass=n_new,
        nu=nu,
        moment=moment,
        tied_mass=tied_mass,
    )
