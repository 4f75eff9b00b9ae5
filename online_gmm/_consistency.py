"""What a fitted model's state must be for its parameters: the checks that keep a model
usable. :func:`check_fitted_parameters` (``partial_fit``, ``fit`` with ``warm_start``,
``save``): the parameters that shape the state were not changed by ``set_params``;
:func:`state_problem` (``load``): a state that predicts and samples (weights a
distribution, positive variances, precision factors consistent with the covariances)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._array_api import to_numpy
from ._covariance import COVARIANCE_TYPES, covariance

#: Relative tolerance of the precision factors against the covariances (a file's factors
#: are computed from its covariances, or are scikit-learn's of them).
FACTOR_RTOL = 1e-6
#: How far from 1 the weights of a state may sum.
WEIGHTS_ATOL = 1e-6


def fitted_covariance_types(state: Any) -> tuple[str, ...]:
    """The covariance types whose layout ``state`` has (two only for ``diag`` / ``tied``
    with one feature and one component, where they are the same model)."""
    K, D = state.means.shape
    found = tuple(t for t in COVARIANCE_TYPES
                  if tuple(state.covariances.shape) == tuple(covariance(t).shape(K, D)))
    if set(found) == {"diag", "tied"} and D > 1:
        # (K == D): a tied factor is upper triangular, a diag one holds no zero
        factor = to_numpy(state.precisions_cholesky)
        found = ("tied",) if not np.tril(factor, -1).any() else ("diag",)
    return found


def check_fitted_parameters(model: Any, method: str = "partial_fit") -> None:
    """Refuse ``n_components`` or ``covariance_type`` changed (``set_params``) on a fitted
    model: the state is the one of the parameters it was fitted with."""
    state = model.__dict__.get("_state")
    if state is None:
        return
    name = type(model).__name__
    K = int(state.weights.shape[0])
    if model.n_components != K:
        raise ValueError(
            f"n_components={model.n_components!r}, but this {name} was fitted with {K} "
            f"components: {method} cannot change n_components. Set it back to {K}, or call "
            "fit() (warm_start=False) to fit a new model."
        )
    fitted = fitted_covariance_types(state)
    if model.covariance_type not in fitted:
        was = fitted[0] if fitted else "another type"
        raise ValueError(
            f"covariance_type={model.covariance_type!r}, but this {name} was fitted with "
            f"covariance_type={was!r}: {method} cannot change covariance_type. Set it back "
            f"to {was!r}, or call fit() (warm_start=False) to fit a new model."
        )


def state_problem(arrays: dict, covariance_type: str) -> str | None:
    """What makes ``arrays`` (a state's fields, NumPy, shapes and finiteness checked) a
    state that cannot predict or sample, or None."""
    w, seeded = arrays["weights"], arrays["seeded"]
    for f in ("weights", "mass", "nu", "tied_mass"):
        if (arrays[f] < 0).any():
            return f"state.{f} holds negative values"
    if seeded.any() and abs(float(w.sum()) - 1.0) > WEIGHTS_ATOL:
        return f"state.weights sum to {float(w.sum()):.6g}, not 1"
    if seeded.any() and not (w[seeded] > 0).any():
        return "state.weights are zero for every seeded component"
    cov_type = covariance(covariance_type)
    cov, factor = arrays["covariances"], arrays["precisions_cholesky"]
    if cov.ndim >= 2:  # full, tied: the factors' and covariances' diagonals
        diag_cov, diag_factor = np.diagonal(cov, 0, -2, -1), np.diagonal(factor, 0, -2, -1)
    else:
        diag_cov, diag_factor = cov, factor
    if not (diag_cov > 0).all():
        return "state.covariances has non-positive variances"
    if not (diag_factor > 0).all():
        return "state.precisions_cholesky has non-positive factors"
    try:
        expected = cov_type.precision_cholesky(cov, np, _upper_factor)
    except (ValueError, np.linalg.LinAlgError):
        return "state.covariances are not positive definite"
    if not np.allclose(factor, expected, rtol=FACTOR_RTOL,
                       atol=FACTOR_RTOL * float(np.abs(expected).max())):
        return "state.precisions_cholesky does not match state.covariances"
    return None


def _upper_factor(covariances: np.ndarray) -> np.ndarray:
    """Upper precision factors of SPD matrices (scikit-learn's convention)."""
    L = np.linalg.cholesky(covariances)
    eye = np.broadcast_to(np.eye(covariances.shape[-1]), covariances.shape)
    return np.swapaxes(np.linalg.solve(L, eye), -1, -2)
