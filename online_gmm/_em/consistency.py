"""What a fitted model's state must be for its parameters: the checks that keep a model
usable. :func:`check_fitted_parameters` (``partial_fit``, ``fit`` with ``warm_start``,
``save``): the parameters that shape the state were not changed by ``set_params``;
:func:`state_problem` (``load``): a state that predicts and samples (weights a
distribution, positive variances, precision factors consistent with the covariances);
:func:`check_loaded` (``load``): a warm-up's buffer within its caps."""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np

from .._math.array_api import to_numpy
from .._math.covariance import COVARIANCE_TYPES, covariance
from .warmup import AUTO_MAX_ROWS, MAX_BUFFER_BYTES

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


#: model -> the (shapes, n_components, covariance_type) last found consistent: a step
#: keeps the shapes, so the check runs again only when one of them changed.
_consistent: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def check_fitted_parameters(model: Any, method: str = "partial_fit") -> None:
    """Refuse ``n_components`` or ``covariance_type`` changed (``set_params``) on a fitted
    model: the state is the one of the parameters it was fitted with."""
    state = model.__dict__.get("_state")
    if state is None:
        return
    key = (tuple(state.means.shape), tuple(state.covariances.shape), model.n_components,
           model.covariance_type)
    try:
        if _consistent.get(model) == key:
            return
    except TypeError:  # (an unhashable subclass: checked every time)
        _check_fitted(model, state, method)
        return
    _check_fitted(model, state, method)
    _consistent[model] = key


def _check_fitted(model: Any, state: Any, method: str) -> None:
    name = type(model).__name__
    K = int(state.weights.shape[0])
    if model.n_components != K:
        raise ValueError(
            f"n_components={model.n_components!r}, but this {name} was fitted with {K} "
            f"components: {method} cannot change n_components. Set it back to {K}, or call "
            "fit() (warm_start=False) to fit a new model."
        )
    D = int(state.means.shape[1])
    same = (tuple(state.covariances.shape)
            == tuple(covariance(model.covariance_type).shape(K, D)))
    if same and K != D:  # (K == D: diag and tied have one shape; look closer)
        return
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


def check_loaded(fields: dict, n_features: int, max_restarts: int, X: Any = None,
                 w: Any = None) -> str | None:
    """What is wrong with a warm-up read from a file (``fields``: ``size``, ``restarts``,
    ``n_rows``, ``limit``, ``refining``; then its rows ``X`` and weights ``w``), or None:
    counts in range (restarts at most the parameter ``warmup_restarts``, the buffer within
    ``MAX_BUFFER_BYTES`` for rows of ``n_features`` of the rows' itemsize, 4 bytes before
    they are read, and ``limit`` within ``AUTO_MAX_ROWS``: :mod:`online_gmm._em.warmup`'s caps),
    rows finite, weights 1-D, positive and finite."""
    size, restarts, n, limit = (fields[k] for k in ("size", "restarts", "n_rows", "limit"))
    if not all(type(x) is int for x in (size, restarts, n, limit)) or (
            type(fields["refining"]) is not bool):
        return "size, restarts, n_rows and limit must be integers, refining a boolean"
    if not 1 <= restarts <= max_restarts:
        return (f"restarts={restarts}, but warmup_restarts={max_restarts}: at least 1 and "
                "at most warmup_restarts")
    itemsize = 4 if X is None else X.dtype.itemsize
    cap = max(1, MAX_BUFFER_BYTES // max(1, n_features * itemsize))
    if not (1 <= size <= cap and 0 <= limit <= min(cap, AUTO_MAX_ROWS)):
        return (f"size={size} and limit={limit} exceed the buffer's cap ({cap} rows of "
                f"{n_features} features; limit at most {AUTO_MAX_ROWS})")
    if not 0 <= n <= max(size, limit):
        return f"n_rows={n} is not within the buffer's {max(size, limit)} rows"
    if X is not None and not (np.isfinite(X).all() and np.isfinite(w).all()
                              and (w > 0).all() and w.ndim == 1):
        return "the rows must be finite and their weights positive and finite"
    return None
