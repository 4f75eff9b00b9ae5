"""``spherical``: one variance per component.

Moments are (K,) centred sums of squares averaged over the D features; the precision factor
is ``1 / sqrt(variance)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._common import (
    as_float64,
    check_positive,
    check_prior_positive,
    check_prior_shape,
    live_weights,
    per_component,
    row_bytes,
    row_sq_norms,
    safe,
    seed_per_component,
)
from ._common import elementwise_covariances_from_moments as covariances_from_moments
from ._common import elementwise_covariances_from_precisions as covariances_from_precisions
from ._common import elementwise_has_spread as has_spread
from ._common import elementwise_precision_cholesky as precision_cholesky
from ._common import elementwise_precisions as precisions_from_cholesky
from ._common import elementwise_regularised as regularised
from ._common import elementwise_unregularised as unregularised
from ._common import per_component_degrees_of_freedom as degrees_of_freedom
from ._common import per_component_initial_moment as initial_moment
from ._common import per_component_moved_moment as moved_moment
from ._common import per_component_reordered as reordered
from ._common import unchanged_tied_mass as fold_tied_mass

#: The numba kernels' code for ``spherical`` (see ``online_gmm._backends.kernels``).
KERNEL_KIND = 1

#: What :func:`quadratic_pieces` reads of :class:`~online_gmm._math.estep.Prepared` besides
#: ``rhs``: its data-dtype copies of the centred means (``"means"``) and of the precision
#: factors (``"factors"``); those it does not read are not made.
E_STEP_NEEDS: tuple[str, ...] = ()
SUMS_PER_COMPONENT = True

__all__ = [
    "row_bytes", "safe",
    "covariances_from_moments", "covariances_from_precisions", "degrees_of_freedom",
    "fold_tied_mass", "has_spread",
    "initial_moment", "moved_moment", "precision_cholesky", "precisions_from_cholesky",
    "regularised", "reordered", "unregularised",
]


def shape(n_components: int, n_features: int) -> tuple:
    return (n_components,)


def identity(n_components: int, n_features: int, xp: Any, dev: Any) -> Any:
    return xp.ones((n_components,), dtype=xp.float64, device=dev)


def expand(value: Any, n_components: int, n_features: int, xp: Any) -> Any:
    return per_component(value, shape(n_components, n_features), xp)


def n_parameters(n_components: int, n_features: int) -> int:
    return n_components


def mean_variance(covariances: Any, n_components: int, xp: Any) -> Any:
    """(K,) each component's variance (its scale)."""
    return covariances


def log_det_cholesky(prec_chol: Any, n_features: int, xp: Any) -> Any:
    return n_features * xp.log(prec_chol)


def check_precisions(precisions: np.ndarray) -> None:
    check_positive(precisions, "spherical")


# ---------------------------------------------------------------------- the E-step
def layout(mu_c64: Any, prec_chol: Any, dtype: Any, xp: Any) -> tuple:
    """``q = s (|x|^2 - 2 x mu^T + |mu|^2)`` with ``s = 1 / variance`` per component."""
    rhs = xp.astype(mu_c64, dtype, copy=True)
    rhs *= -2.0  # (exact: the same as rounding -2 mu)
    b = xp.astype(row_sq_norms(mu_c64, xp), dtype)
    rhs = rhs.T
    return rhs, b, xp.astype(prec_chol * prec_chol, dtype)


def quadratic_pieces(Xc: Any, p: Any, xp: Any) -> tuple:
    return Xc @ p.rhs, xp.sum(Xc * Xc, axis=1)


# ---------------------------------------------------------------------- statistics
def chunk_sums(Xc: Any, w: Any, wX: Any, R: Any, centre: Any, xp: Any) -> tuple:
    """``(R^T w x, R^T w |x|^2)`` in the data's dtype."""
    return R.T @ wX, xp.sum(wX * Xc, axis=1) @ R


def sums_moments(sums: tuple, m: Any, s: Any, centre: Any, xp: Any) -> tuple:
    """``(means, centred sums of squares / D)`` in float64 from :func:`chunk_sums`' (the
    sums are the caller's, not used after: the means may be made in their array)."""
    S1, s2 = sums  # (the caller's own sums: made into the means in place when float64)
    xbc = xp.astype(S1, xp.float64, copy=False)
    xbc /= s[:, None]
    s2 = xp.astype(s2, xp.float64)
    return xbc, xp.maximum(s2 - m * row_sq_norms(xbc, xp), xp.zeros_like(m)) / S1.shape[1]


def outer_term(d: Any, coef: Any, xp: Any) -> Any:
    return coef * row_sq_norms(d, xp) / d.shape[1]


def scale_moment(moment: Any, rho: Any, rho_time: float) -> Any:
    return rho * moment


# ---------------------------------------------------------------------- seeding
def weighted_variance(R: Any, w64: Any, total: Any, xp: Any) -> Any:
    return xp.mean((w64 @ (R * R)) / total)


def pooled_variance(state: Any, reg_covar: float, xp: Any,
                    any_live: bool | None = None) -> Any:
    wts = live_weights(state, xp, any_live)
    if wts is None:
        return None
    return xp.maximum(xp.sum(wts * state.covariances) - reg_covar, xp.zeros_like(wts[0]))


def seed(state: Any, comp_idx: np.ndarray, variance: Any, *, seed_mass: float,
         reg_covar: float, first: bool, xp: Any) -> tuple:
    var = as_float64(variance, state.means, xp)
    return seed_per_component(state, comp_idx, var, var + reg_covar, seed_mass, xp)


def moment_from_covariances(covariances: np.ndarray, mass: np.ndarray,
                            reg_covar: float) -> np.ndarray:
    return mass * unregularised(covariances, reg_covar)


# ---------------------------------------------------------------------- the variational mixture
def check_covariance_prior(prior: np.ndarray, n_features: int) -> None:
    """A user's ``covariance_prior``: one positive variance."""
    check_prior_shape(prior, (), "spherical covariance_prior")
    check_prior_positive(prior, "spherical")


def posterior_covariances(prior: Any, moment: Any, mass: Any, tied_mass: Any, outer: Any,
                          dof: Any, reg_covar: float, xp: Any) -> Any:
    """scikit-learn's spherical ``covariances_``: ``(W_0^-1 + M_k + reg_covar n_k + beta_0
    n_k / beta_k |d_k|^2 / D) / nu_k``."""
    return (prior + moment + reg_covar * mass + outer) / dof
