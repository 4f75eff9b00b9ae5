"""``full``: one (D, D) covariance per component.

Moments are (K, D, D) centred scatter matrices; the precision factor ``U_k`` is upper
triangular with ``precision_k = U_k @ U_k.T`` (scikit-learn's convention).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..array_api import device
from ._common import (
    as_float64,
    check_prior_shape,
    check_prior_spd,
    check_spd,
    eye,
    live_weights,
    per_component,
    regularised_scatter,
    safe,
    seed_per_component,
)
from ._common import matrix_covariances_from_precisions as covariances_from_precisions
from ._common import matrix_has_spread as has_spread
from ._common import matrix_regularised as regularised
from ._common import matrix_unregularised as unregularised
from ._common import matrix_weighted_variance as weighted_variance
from ._common import per_component_degrees_of_freedom as degrees_of_freedom
from ._common import per_component_initial_moment as initial_moment
from ._common import per_component_moved_moment as moved_moment
from ._common import per_component_reordered as reordered
from ._common import unchanged_tied_mass as fold_tied_mass
from ._common import upper_factor as precision_cholesky

#: No block kernel: the numba backend runs ``full`` chunk by chunk (BLAS + the row kernel).
KERNEL_KIND = None

#: What :func:`quadratic_pieces` reads of :class:`~online_gmm._math.estep.Prepared` besides
#: ``rhs``: its data-dtype copies of the centred means (``"means"``) and of the precision
#: factors (``"factors"``); those it does not read are not made.
E_STEP_NEEDS: tuple[str, ...] = ("means", "factors")
SUMS_PER_COMPONENT = True

__all__ = [
    "covariances_from_precisions", "degrees_of_freedom", "fold_tied_mass", "has_spread",
    "initial_moment", "moved_moment", "precision_cholesky", "regularised", "reordered",
    "unregularised", "weighted_variance",
]


def shape(n_components: int, n_features: int) -> tuple:
    return (n_components, n_features, n_features)


def identity(n_components: int, n_features: int, xp: Any, dev: Any) -> Any:
    e = xp.eye(n_features, dtype=xp.float64, device=dev)
    return xp.asarray(xp.broadcast_to(e, (n_components, n_features, n_features)), copy=True)


def expand(value: Any, n_components: int, n_features: int, xp: Any) -> Any:
    """One component's (D, D) matrix as every component's."""
    return per_component(value, shape(n_components, n_features), xp)


def n_parameters(n_components: int, n_features: int) -> float:
    """Free covariance parameters (as scikit-learn's ``_n_parameters``)."""
    return n_components * n_features * (n_features + 1) / 2.0


def precisions_from_cholesky(prec_chol: Any, xp: Any) -> Any:
    return prec_chol @ xp.permute_dims(prec_chol, (0, 2, 1))


def mean_variance(covariances: Any, n_components: int, xp: Any) -> Any:
    """(K,) each component's variance averaged over the features (its scale)."""
    return xp.mean(xp.linalg.diagonal(covariances), axis=-1)


def log_det_cholesky(prec_chol: Any, n_features: int, xp: Any) -> Any:
    """``log|U_k|`` per component."""
    return xp.sum(xp.log(xp.linalg.diagonal(prec_chol)), axis=-1)


def check_precisions(precisions: np.ndarray) -> None:
    check_spd(precisions, "full")


# ---------------------------------------------------------------------- the E-step
def layout(mu_c64: Any, prec_chol: Any, dtype: Any, xp: Any) -> tuple:
    """``(rhs, b, s)``: no one-product layout (one product per component)."""
    ones = xp.ones(mu_c64.shape[0], dtype=dtype, device=device(mu_c64))
    return None, xp.zeros_like(ones), ones


def row_bytes(n_components: int, n_features: int, itemsize: int) -> int:
    """A chunk's row also holds its (K, D) whitened differences (a few copies, in the data's
    dtype) and the statistics' (K, D) weighted residuals (float64)."""
    per_component = (3 * itemsize + 16) * n_components * n_features
    return itemsize * (3 * n_components + 4 * n_features) + per_component


def quadratic_pieces(Xc: Any, p: Any, xp: Any) -> tuple:
    """``(G, a)``: ``G[:, k] = |(x - mu_k) U_k|^2``, ``a = 0``: one batched product over the
    components (no loop over them: a fixed number of operations whatever K)."""
    Y = (Xc[None, :, :] - p.mu_c[:, None, :]) @ p.prec_chol  # (K, n, D)
    G = xp.permute_dims(xp.sum(Y * Y, axis=2), (1, 0))  # (n, K)
    return G, xp.zeros(Xc.shape[0], dtype=Xc.dtype, device=device(Xc))


# ---------------------------------------------------------------------- statistics
def chunk_sums(Xc: Any, w: Any, wX: Any, R: Any, centre: Any, xp: Any) -> tuple:
    """``(m, S1, T)`` in float64: ``m_k = sum_n w_n r_nk``, ``S1_k = sum_n w_n r_nk x`` and
    the scatters ``T_k = sum_n w_n r_nk (x - c_k)(x - c_k)^T`` about ``centre`` (``c``: the
    (K, D) means the E-step's form reads, ``Prepared.mu_c``; the batch's own weighted means
    when None), one batched product of the (K, n, D) differences scaled by ``sqrt(w r)``:
    additive over chunks with one centre, and centred (no cancellation) near the means."""
    f64 = xp.float64
    Xc64 = xp.astype(Xc, f64)
    wR = xp.astype(w, f64)[:, None] * xp.astype(R, f64)
    m64 = xp.sum(wR, axis=0)
    S1 = wR.T @ Xc64
    c = _centre(S1, m64, centre, xp)
    Y = (Xc64[None, :, :] - c[:, None, :]) * xp.sqrt(xp.permute_dims(wR, (1, 0)))[:, :, None]
    return m64, S1, xp.matrix_transpose(Y) @ Y


def sums_moments(sums: tuple, m: Any, s: Any, centre: Any, xp: Any) -> tuple:
    """``(means, scatters)``: ``T_k - m_k d_k d_k^T`` with ``d_k = xb_k - c_k``,
    symmetrised, in float64 (the sums' own float64 masses: ``m`` and ``s`` are not used;
    ``centre`` as given to :func:`chunk_sums`)."""
    m64, S1, T = sums
    xbc = S1 / safe(m64, xp)[:, None]
    d = xbc - _centre(S1, m64, centre, xp)
    Mb = T - (m64[:, None] * d)[:, :, None] * d[:, None, :]
    return xbc, 0.5 * (Mb + xp.matrix_transpose(Mb))


def _centre(S1: Any, m64: Any, centre: Any, xp: Any) -> Any:
    """The float64 centre of the scatters: ``centre``, or the means ``S1 / m``."""
    if centre is None:
        return S1 / safe(m64, xp)[:, None]
    return xp.astype(centre, xp.float64)


def outer_term(d: Any, coef: Any, xp: Any) -> Any:
    """``coef_k d_k d_k^T``."""
    return coef[:, None, None] * (d[:, :, None] * d[:, None, :])


def scale_moment(moment: Any, rho: Any, rho_time: float) -> Any:
    return rho[:, None, None] * moment


def covariances_from_moments(moment: Any, mass: Any, tied_mass: Any, reg_covar: float,
                             old: Any, has_mass: Any, xp: Any) -> Any:
    """The regularised scatters over the masses; components without mass keep ``old``."""
    new = regularised_scatter(moment / safe(mass, xp)[:, None, None], reg_covar, xp)
    return xp.where((~has_mass)[:, None, None], old, new)


# ---------------------------------------------------------------------- seeding
def pooled_variance(state: Any, reg_covar: float, xp: Any,
                    any_live: bool | None = None) -> Any:
    """Mass-weighted mean covariance (minus ``reg_covar``) of the live components, or None."""
    wts = live_weights(state, xp, any_live)
    if wts is None:
        return None
    cov = state.covariances
    return xp.sum(wts[:, None, None] * cov, axis=0) - reg_covar * eye(cov.shape[-1], cov, xp)


def seed(state: Any, comp_idx: np.ndarray, variance: Any, *, seed_mass: float,
         reg_covar: float, first: bool, xp: Any) -> tuple:
    """``(moment, covariances, tied_mass)`` with components ``comp_idx`` started afresh."""
    var = as_float64(variance, state.means, xp)
    return seed_per_component(state, comp_idx, var, regularised(var, reg_covar, xp),
                              seed_mass, xp)


def moment_from_covariances(covariances: np.ndarray, mass: np.ndarray,
                            reg_covar: float) -> np.ndarray:
    return mass[:, None, None] * unregularised(covariances, reg_covar)


# ---------------------------------------------------------------------- the variational mixture
def check_covariance_prior(prior: np.ndarray, n_features: int) -> None:
    """A user's ``covariance_prior``: one (D, D) symmetric positive-definite matrix."""
    check_prior_shape(prior, (n_features, n_features), "full covariance_prior")
    check_prior_spd(prior, "full")


def posterior_covariances(prior: Any, moment: Any, mass: Any, tied_mass: Any, outer: Any,
                          dof: Any, reg_covar: float, xp: Any) -> Any:
    """scikit-learn's ``covariances_`` of the Normal-Wishart posterior, ``W_k^-1 / nu_k`` with
    ``W_k^-1 = W_0^-1 + M_k + reg_covar n_k I + outer_k`` (``outer_k = beta_0 n_k / beta_k
    d_k d_k^T``, ``d_k = xbar_k - m_0``), symmetrised, with the rounding floor."""
    reg = (reg_covar * mass)[:, None, None] * eye(moment.shape[-1], moment, xp)
    scale = prior + moment + reg + outer
    return regularised_scatter(scale / dof[:, None, None], 0.0, xp)
