"""Covariance parametrisations: moments -> covariances -> precision Cholesky factors.

Conventions are scikit-learn's (``sklearn/mixture/_gaussian_mixture.py``): for ``full`` and
``tied`` the precision Cholesky factor ``U`` is upper triangular with ``precision = U @ U.T``,
``diag`` and ``spherical`` store ``1 / sqrt(variance)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")


def covariance_shape(covariance_type: str, n_components: int, n_features: int) -> tuple:
    return {
        "full": (n_components, n_features, n_features),
        "tied": (n_features, n_features),
        "diag": (n_components, n_features),
        "spherical": (n_components,),
    }[covariance_type]


def _add_to_diagonal(mat: Any, value: float, xp: Any) -> Any:
    d = mat.shape[-1]
    return mat + value * xp.eye(d, dtype=mat.dtype, device=_device(mat))


def _device(x: Any) -> Any:
    import array_api_compat

    return array_api_compat.device(x)


def covariances_from_moments(
    M: Any, mass: Any, tied_mass: Any, covariance_type: str, reg_covar: float, xp: Any
) -> Any:
    """``Sigma = M / n + reg_covar`` per covariance type (components with n == 0 give NaN-free
    placeholders; callers keep their previous covariance there)."""
    safe = xp.where(mass > 0, mass, xp.ones_like(mass))
    if covariance_type == "diag":
        return M / safe[:, None] + reg_covar
    if covariance_type == "spherical":  # M holds the per-feature mean of the moment
        return M / safe + reg_covar
    if covariance_type == "full":
        cov = M / safe[:, None, None]
        cov = 0.5 * (cov + xp.permute_dims(cov, (0, 2, 1)))
        return _add_to_diagonal(cov, reg_covar, xp) + _rounding_floor(cov, xp)
    # tied
    tm = xp.where(tied_mass > 0, tied_mass, xp.ones_like(tied_mass))
    cov = M / tm[0]
    cov = 0.5 * (cov + cov.T)
    return _add_to_diagonal(cov, reg_covar, xp) + _rounding_floor(cov, xp)


def _rounding_floor(cov: Any, xp: Any) -> Any:
    """``10 D eps trace`` on the diagonal: the size of the float64 rounding error of a scatter
    matrix (expanded sums of outer products lose about ``eps |x|^2`` per entry), so that a
    rank-deficient batch far above ``reg_covar`` (variances of 1e9 against 1e-6) still gives a
    positive-definite matrix. A relative change of about 1e-14 at D = 4, 4e-11 at D = 128."""
    d = cov.shape[-1]
    trace = xp.sum(xp.abs(xp.linalg.diagonal(cov)), axis=-1)
    scale = trace * (10.0 * d * 2.220446049250313e-16)
    eye = xp.eye(d, dtype=cov.dtype, device=_device(cov))
    return scale[..., None, None] * eye if cov.ndim == 3 else scale * eye


def precision_cholesky(covariances: Any, covariance_type: str, xp: Any, fast: bool) -> Any:
    """Upper-triangular precision factor (full, tied) or 1/sqrt(var) (diag, spherical)."""
    if covariance_type in ("diag", "spherical"):
        if bool(xp.any(covariances <= 0.0)):
            raise ValueError(_PD_MSG)
        return 1.0 / xp.sqrt(covariances)
    if fast:
        return _precision_cholesky_numpy(covariances, covariance_type)
    try:
        chol = xp.linalg.cholesky(covariances)
    except Exception as exc:  # torch raises its own LinAlgError
        raise ValueError(_PD_MSG) from exc
    if not bool(xp.all(xp.isfinite(chol))):
        raise ValueError(_PD_MSG)
    d = covariances.shape[-1]
    eye = xp.eye(d, dtype=covariances.dtype, device=_device(covariances))
    if covariance_type == "tied":
        return xp.linalg.solve(chol, eye).T
    inv = xp.linalg.solve(chol, xp.broadcast_to(eye, covariances.shape))
    return xp.permute_dims(inv, (0, 2, 1))


_PD_MSG = (
    "Fitting the mixture model failed because some components have ill-defined empirical "
    "covariance (for instance caused by singleton or collapsed samples). Try to decrease the "
    "number of components, or increase reg_covar."
)


def _precision_cholesky_numpy(covariances: np.ndarray, covariance_type: str) -> np.ndarray:
    """The upper-triangular precision factors ``inv(L).T`` of ``covariances`` (D, D) or
    (K, D, D), with ``L`` the lower Cholesky factor: LAPACK's ``potrf``, then a solve
    against the identity, on each matrix in one C loop over the stack (NumPy's ``linalg``
    gufuncs; no Python loop over the components)."""
    try:
        chol = np.linalg.cholesky(covariances)
    except np.linalg.LinAlgError as exc:
        raise ValueError(_PD_MSG) from exc
    if not np.isfinite(chol).all():  # NaN input passes potrf in some LAPACKs
        raise ValueError(_PD_MSG)
    d = covariances.shape[-1]
    inv = np.linalg.solve(chol, np.broadcast_to(np.eye(d), covariances.shape))
    # (solve's LU of a triangular matrix may pivot: its rounding above the diagonal goes)
    return np.triu(np.swapaxes(inv, -1, -2))


def precisions_from_cholesky(prec_chol: Any, covariance_type: str, xp: Any) -> Any:
    if covariance_type == "full":
        return prec_chol @ xp.permute_dims(prec_chol, (0, 2, 1))
    if covariance_type == "tied":
        return prec_chol @ prec_chol.T
    return prec_chol**2


def log_det_cholesky(prec_chol: Any, covariance_type: str, n_features: int, xp: Any) -> Any:
    """log|U| per component (a scalar broadcast for tied)."""
    if covariance_type == "full":
        return xp.sum(xp.log(xp.linalg.diagonal(prec_chol)), axis=-1)
    if covariance_type == "tied":
        return xp.sum(xp.log(xp.linalg.diagonal(prec_chol)))
    if covariance_type == "diag":
        return xp.sum(xp.log(prec_chol), axis=1)
    return n_features * xp.log(prec_chol)


def covariances_from_precisions(precisions: Any, covariance_type: str, xp: Any) -> Any:
    if covariance_type in ("diag", "spherical"):
        return 1.0 / precisions
    return xp.linalg.inv(precisions)


def n_parameters(covariance_type: str, n_components: int, n_features: int) -> int:
    """Free parameters of the model (as scikit-learn's ``GaussianMixture._n_parameters``)."""
    if covariance_type == "full":
        cov_params = n_components * n_features * (n_features + 1) / 2.0
    elif covariance_type == "diag":
        cov_params = n_components * n_features
    elif covariance_type == "tied":
        cov_params = n_features * (n_features + 1) / 2.0
    else:
        cov_params = n_components
    return int(cov_params + n_features * n_components + n_components - 1)
