"""``tied``: one (D, D) covariance shared by every component.

The moment is the (D, D) pooled within-component scatter, with its own mass ``tied_mass``
(the sum of the components' masses, forgotten by time); the precision factor ``U`` is upper
triangular with ``precision = U @ U.T``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..array_api import device
from ._common import (
    check_prior_shape,
    check_prior_spd,
    check_spd,
    eye,
    regularised_scatter,
    row_bytes,
    safe,
)
from ._common import matrix_covariances_from_precisions as covariances_from_precisions
from ._common import matrix_has_spread as has_spread
from ._common import matrix_regularised as regularised
from ._common import matrix_unregularised as unregularised
from ._common import matrix_weighted_variance as weighted_variance
from ._common import upper_factor as precision_cholesky

#: The numba kernels' code for ``tied`` (see ``online_gmm._backends.kernels``).
KERNEL_KIND = 2

#: What :func:`quadratic_pieces` reads of :class:`~online_gmm._math.estep.Prepared` besides
#: ``rhs``: its data-dtype copies of the centred means (``"means"``) and of the precision
#: factors (``"factors"``); those it does not read are not made.
E_STEP_NEEDS: tuple[str, ...] = ("factors",)
SUMS_PER_COMPONENT = False  # (T2 is summed over all components)

__all__ = [
    "row_bytes",
    "covariances_from_precisions", "has_spread", "precision_cholesky", "regularised",
    "unregularised", "weighted_variance",
]


def shape(n_components: int, n_features: int) -> tuple:
    return (n_features, n_features)


def identity(n_components: int, n_features: int, xp: Any, dev: Any) -> Any:
    return xp.asarray(xp.eye(n_features, dtype=xp.float64, device=dev), copy=True)


def expand(value: Any, n_components: int, n_features: int, xp: Any) -> Any:
    """One matrix is every component's already."""
    return value


def n_parameters(n_components: int, n_features: int) -> float:
    return n_features * (n_features + 1) / 2.0


# ---------------------------------------------------------------------- precision factors
def precisions_from_cholesky(prec_chol: Any, xp: Any) -> Any:
    return prec_chol @ prec_chol.T


def mean_variance(covariances: Any, n_components: int, xp: Any) -> Any:
    """(K,) the shared covariance's variance averaged over the features, for every one."""
    v = xp.mean(xp.linalg.diagonal(covariances))
    return xp.zeros((n_components,), dtype=covariances.dtype, device=device(covariances)) + v


def log_det_cholesky(prec_chol: Any, n_features: int, xp: Any) -> Any:
    """``log|U|``, a scalar broadcast over the components."""
    return xp.sum(xp.log(xp.linalg.diagonal(prec_chol)))


def check_precisions(precisions: np.ndarray) -> None:
    check_spd(precisions[None], "tied")


def moved_moment(moment: Any, source: int, target: int, xp: Any) -> tuple:
    """``(rest, moved)`` of a merge of ``source`` into ``target``: the pooled scatter
    already holds every component's own part (it stays); no part moves."""
    return moment, xp.zeros_like(moment)


def reordered(value: Any, order: np.ndarray, xp: Any) -> Any:
    """The pooled moment, covariance or precision factor: the same in any order of the
    components."""
    return value


# ---------------------------------------------------------------------- the E-step
def layout(mu_c64: Any, prec_chol: Any, dtype: Any, xp: Any) -> tuple:
    """Whitened means ``mu U``: ``q = |x U|^2 - 2 (x U) (mu U)^T + |mu U|^2``."""
    chol_mu64 = mu_c64 @ prec_chol
    rhs = xp.astype(-2.0 * chol_mu64, dtype).T
    b = xp.astype(xp.sum(chol_mu64 * chol_mu64, axis=1), dtype)
    return rhs, b, xp.ones(mu_c64.shape[0], dtype=dtype, device=device(mu_c64))


def quadratic_pieces(Xc: Any, p: Any, xp: Any) -> tuple:
    Z = Xc @ p.prec_chol
    return Z @ p.rhs, xp.sum(Z * Z, axis=1)


# ---------------------------------------------------------------------- statistics
def chunk_sums(Xc: Any, w: Any, wX: Any, R: Any, centre: Any, xp: Any) -> tuple:
    """``(m, S1, T2)``, every piece in float64 from the responsibilities as they are:
    ``m_k = sum_n w_n r_nk``, ``S1_k = sum_n w_n r_nk x``, ``T2 = sum_n w_n (sum_k r_nk)
    x x^T``. O(n K D + n D^2), cheap next to the E-step."""
    f64 = xp.float64
    Xc64 = xp.astype(Xc, f64)
    wR = xp.astype(w, f64)[:, None] * xp.astype(R, f64)
    return (xp.sum(wR, axis=0), wR.T @ Xc64,
            (Xc64 * xp.sum(wR, axis=1)[:, None]).T @ Xc64)


def sums_moments(sums: tuple, m: Any, s: Any, centre: Any, xp: Any) -> tuple:
    """``(means, pooled scatter)``: ``T2 - sum_k S1_k S1_k^T / m_k`` is a sum of
    per-component scatters, positive semi-definite up to float64 rounding (from float32
    sums the difference of two large terms is indefinite by float32 rounding)."""
    m64, S1, T2 = sums
    xbc = S1 / safe(m64, xp)[:, None]
    Mb = T2 - (xbc * m64[:, None]).T @ xbc
    return xbc, 0.5 * (Mb + Mb.T)


def outer_term(d: Any, coef: Any, xp: Any) -> Any:
    """``sum_k coef_k d_k d_k^T``: pooled over the components."""
    return (d * coef[:, None]).T @ d


def scale_moment(moment: Any, rho: Any, rho_time: float) -> Any:
    """The pooled scatter is forgotten by time, as its mass."""
    return rho_time * moment


def fold_tied_mass(tied_mass: Any, rho_time: float, mass: Any, xp: Any) -> Any:
    return rho_time * tied_mass + xp.sum(mass)


def covariances_from_moments(moment: Any, mass: Any, tied_mass: Any, reg_covar: float,
                             old: Any, has_mass: Any, xp: Any) -> Any:
    """The regularised pooled scatter over the pooled mass; without any, ``old`` stays."""
    new = regularised_scatter(moment / safe(tied_mass, xp)[0], reg_covar, xp)
    return xp.where(tied_mass[0] > 0, new, old)  # (on the device: no host read)


# ---------------------------------------------------------------------- seeding








def pooled_variance(state: Any, reg_covar: float, xp: Any,
                    any_live: bool | None = None) -> Any:
    """None: a reseeded component shares the tied covariance already."""
    return None


def seed(state: Any, comp_idx: np.ndarray, variance: Any, *, seed_mass: float,
         reg_covar: float, first: bool, xp: Any) -> tuple:
    """The first seeding sets the pooled scatter (``seed_mass`` per seeded component);
    later seeds share the existing covariance."""
    if not first:
        return state.moment, state.covariances, state.tied_mass
    n_new = len(comp_idx)
    dev = device(state.means)
    tied_mass = xp.asarray([seed_mass * n_new], dtype=xp.float64, device=dev)
    return seed_mass * n_new * variance, regularised(variance, reg_covar, xp), tied_mass


def initial_moment(var: Any, n_components: int, seed_mass: float, tied_mass: Any,
                   xp: Any) -> tuple:
    dev = device(var)
    return (seed_mass * n_components * var,
            xp.asarray([seed_mass * n_components], dtype=xp.float64, device=dev))


def moment_from_covariances(covariances: np.ndarray, mass: np.ndarray,
                            reg_covar: float) -> np.ndarray:
    return mass.sum() * unregularised(covariances, reg_covar)


# ---------------------------------------------------------------------- the variational mixture
def check_covariance_prior(prior: np.ndarray, n_features: int) -> None:
    """A user's ``covariance_prior``: one (D, D) symmetric positive-definite matrix."""
    check_prior_shape(prior, (n_features, n_features), "tied covariance_prior")
    check_prior_spd(prior, "tied")


def degrees_of_freedom(dof_prior: float, mass: Any, tied_mass: Any, n_components: int,
                       xp: Any) -> Any:
    """The shared Wishart's degrees of freedom ``nu_0 + N / K`` (scikit-learn's), ``N`` the
    pooled moment's mass; a 0-d array."""
    return dof_prior + tied_mass[0] / n_components


def posterior_covariances(prior: Any, moment: Any, mass: Any, tied_mass: Any, outer: Any,
                          dof: Any, reg_covar: float, xp: Any) -> Any:
    """scikit-learn's tied ``covariances_``: ``(W_0^-1 + (M + reg_covar N I + outer) / K) /
    nu`` (``outer = sum_k beta_0 n_k / beta_k d_k d_k^T``), symmetrised, rounding floor."""
    K = mass.shape[0]
    reg = (reg_covar * tied_mass[0]) * eye(moment.shape[-1], moment, xp)
    scale = prior + (moment + reg + outer) / K
    return regularised_scatter(scale / dof, 0.0, xp)
