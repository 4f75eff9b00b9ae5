"""``diag``: a diagonal covariance (D variances) per component.

Moments are (K, D) centred sums of squares; the precision factor is ``1 / sqrt(variance)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..array_api import device
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

#: The numba kernels' code for ``diag`` (see ``online_gmm._backends.kernels``).
KERNEL_KIND = 0

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
    return (n_components, n_features)


def identity(n_components: int, n_features: int, xp: Any, dev: Any) -> Any:
    return xp.ones((n_components, n_features), dtype=xp.float64, device=dev)


def expand(value: Any, n_components: int, n_features: int, xp: Any) -> Any:
    return per_component(value, shape(n_components, n_features), xp)


def n_parameters(n_components: int, n_features: int) -> int:
    return n_components * n_features


def mean_variance(covariances: Any, n_components: int, xp: Any) -> Any:
    """(K,) each component's variance averaged over the features (its scale)."""
    return xp.mean(covariances, axis=1)


def log_det_cholesky(prec_chol: Any, n_features: int, xp: Any) -> Any:
    return xp.sum(xp.log(prec_chol), axis=1)


def check_precisions(precisions: np.ndarray) -> None:
    check_positive(precisions, "diag")


# ---------------------------------------------------------------------- the E-step
def layout(mu_c64: Any, prec_chol: Any, dtype: Any, xp: Any) -> tuple:
    """``q = [x*x, x] @ [prec; -2 mu prec] + |mu|^2_prec``: one product for all components."""
    # (one (K, D) float64 temporary at a time: a large mixture's layout in bounded memory)
    t = mu_c64 * prec_chol
    b = xp.astype(row_sq_norms(t, xp), dtype)  # |mu|^2_prec
    t *= prec_chol
    t *= -2.0
    right = xp.astype(t, dtype)  # -2 mu prec
    del t
    t = prec_chol * prec_chol
    left = xp.astype(t, dtype)  # prec
    del t
    rhs = xp.concat([left, right], axis=1).T  # (2D, K)
    return rhs, b, xp.ones(mu_c64.shape[0], dtype=dtype, device=device(mu_c64))


def quadratic_pieces(Xc: Any, p: Any, xp: Any) -> tuple:
    G = xp.concat([Xc * Xc, Xc], axis=1) @ p.rhs
    return G, xp.zeros(Xc.shape[0], dtype=Xc.dtype, device=device(Xc))


# ---------------------------------------------------------------------- statistics
def chunk_sums(Xc: Any, w: Any, wX: Any, R: Any, centre: Any, xp: Any) -> tuple:
    """First and second raw sums, ``(R^T w x, R^T w x*x)``, in the data's dtype."""
    return R.T @ wX, R.T @ (wX * Xc)


def sums_moments(sums: tuple, m: Any, s: Any, centre: Any, xp: Any) -> tuple:
    """``(means, centred sums of squares)`` in float64 from :func:`chunk_sums`' (summed;
    the caller's, not used after: made into the means and moments in place when float64)."""
    S1, S2 = sums
    xbc = xp.astype(S1, xp.float64, copy=False)
    xbc /= s[:, None]
    Mb = xp.astype(S2, xp.float64, copy=False)
    t = m[:, None] * xbc
    t *= xbc
    Mb -= t
    del t
    return xbc, xp.maximum(Mb, xp.zeros_like(m)[:, None])


def outer_term(d: Any, coef: Any, xp: Any) -> Any:
    out = coef[:, None] * d
    out *= d
    return out


def scale_moment(moment: Any, rho: Any, rho_time: float) -> Any:
    return rho[:, None] * moment


# ---------------------------------------------------------------------- seeding
def weighted_variance(R: Any, w64: Any, total: Any, xp: Any) -> Any:
    return (w64 @ (R * R)) / total


def pooled_variance(state: Any, reg_covar: float, xp: Any,
                    any_live: bool | None = None) -> Any:
    wts = live_weights(state, xp, any_live)
    if wts is None:
        return None
    cov = state.covariances
    return xp.maximum(wts @ cov - reg_covar, xp.zeros_like(cov[0, :]))


def seed(state: Any, comp_idx: np.ndarray, variance: Any, *, seed_mass: float,
         reg_covar: float, first: bool, xp: Any) -> tuple:
    var = as_float64(variance, state.means, xp)
    return seed_per_component(state, comp_idx, var, var + reg_covar, seed_mass, xp)


def moment_from_covariances(covariances: np.ndarray, mass: np.ndarray,
                            reg_covar: float) -> np.ndarray:
    return mass[:, None] * unregularised(covariances, reg_covar)


# ---------------------------------------------------------------------- the variational mixture
def check_covariance_prior(prior: np.ndarray, n_features: int) -> None:
    """A user's ``covariance_prior``: D positive variances."""
    check_prior_shape(prior, (n_features,), "diag covariance_prior")
    check_prior_positive(prior, "diag")


def posterior_covariances(prior: Any, moment: Any, mass: Any, tied_mass: Any, outer: Any,
                          dof: Any, reg_covar: float, xp: Any) -> Any:
    """scikit-learn's diag ``covariances_``: ``(W_0^-1 + M_k + reg_covar n_k + beta_0 n_k /
    beta_k d_k^2) / nu_k``."""
    return (prior + moment + (reg_covar * mass)[:, None] + outer) / dof[:, None]
