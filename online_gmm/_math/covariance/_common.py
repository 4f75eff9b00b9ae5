"""Pieces the covariance modules share: the positive-definiteness message, the
regularisation of a scatter matrix, and the two families' small helpers (matrix types
``full``/``tied``, elementwise types ``diag``/``spherical``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..array_api import device, scatter_rows

PD_MSG = (
    "Fitting the mixture model failed because some components have ill-defined empirical "
    "covariance (for instance caused by singleton or collapsed samples). Try to decrease the "
    "number of components, increase reg_covar, or scale the input data."
)


def safe(mass: Any, xp: Any) -> Any:
    """``mass`` with its non-positive entries replaced by 1 (a divisor that is never 0)."""
    return xp.where(mass > 0, mass, xp.ones_like(mass))


def elementwise_covariances_from_moments(moment: Any, mass: Any, tied_mass: Any,
                                        reg_covar: float, old: Any, has_mass: Any,
                                        xp: Any) -> Any:
    """``moment / mass + reg_covar``, and ``old`` where a component has no mass (``diag``,
    ``spherical``): one new array, made in place (the same values as dividing and then
    choosing)."""
    def rows(v):  # (K,) against the covariances' rows
        return xp.reshape(v, (v.shape[0],) + (1,) * (moment.ndim - 1))

    out = xp.where(rows(has_mass), moment, old)
    out /= rows(xp.where(has_mass, mass, xp.ones_like(mass)))
    out += rows(xp.where(has_mass, xp.full_like(mass, reg_covar), xp.zeros_like(mass)))
    return out


def row_sq_norms(x: Any, xp: Any) -> Any:
    """``sum(x * x, axis=1)`` of a (K, D) array, by the ``linalg`` extension's norm where
    the namespace has it (one reduction: PyTorch, CuPy make no (K, D) temporary)."""
    if hasattr(xp, "linalg"):
        return xp.linalg.vector_norm(x, axis=1) ** 2
    return xp.sum(x * x, axis=1)


def eye(d: int, like: Any, xp: Any) -> Any:
    return xp.eye(d, dtype=like.dtype, device=device(like))


def add_to_diagonal(mat: Any, value: float, xp: Any) -> Any:
    return mat + value * eye(mat.shape[-1], mat, xp)


def rounding_floor(cov: Any, xp: Any) -> Any:
    """``10 D eps trace`` on the diagonal: the size of the float64 rounding error of a scatter
    matrix (expanded sums of outer products lose about ``eps |x|^2`` per entry), so that a
    rank-deficient batch far above ``reg_covar`` (variances of 1e9 against 1e-6) still gives a
    positive-definite matrix. A relative change of about 1e-14 at D = 4, 4e-11 at D = 128."""
    d = cov.shape[-1]
    trace = xp.sum(xp.abs(xp.linalg.diagonal(cov)), axis=-1)
    scale = trace * (10.0 * d * 2.220446049250313e-16)
    e = eye(d, cov, xp)
    return scale[..., None, None] * e if cov.ndim == 3 else scale * e


def regularised_scatter(cov: Any, reg_covar: float, xp: Any) -> Any:
    """A symmetrised scatter matrix (or stack) plus ``reg_covar`` and the rounding floor."""
    cov = 0.5 * (cov + xp.matrix_transpose(cov))
    return add_to_diagonal(cov, reg_covar, xp) + rounding_floor(cov, xp)


def elementwise_precision_cholesky(covariances: Any, xp: Any, factor: Any = None,
                                   check: bool = True) -> Any:
    """``1 / sqrt(variance)`` (``diag``, ``spherical``); every variance must be positive
    (``check=False``: not checked here, a non-positive variance gives inf or NaN, for a
    caller that checks the finiteness of the result later, without a host read now)."""
    if check and bool(xp.any(covariances <= 0.0)):
        raise ValueError(PD_MSG)
    out = xp.sqrt(covariances)
    out **= -1.0  # (1 / sqrt in place: the same values, no second array)
    return out


def live_weights(state: Any, xp: Any, any_live: bool | None = None) -> Any:
    """Mass shares of the seeded components with mass (zeros elsewhere), or None if none
    (``any_live``: whether there is one, where the caller knows it: nothing read)."""
    live = state.seeded & (state.mass > 0)
    if not (bool(xp.any(live)) if any_live is None else any_live):
        return None
    wts = xp.where(live, state.mass, xp.zeros_like(state.mass))
    return wts / xp.sum(wts)


def _is_spd(mat: np.ndarray) -> bool:
    return bool(np.allclose(mat, mat.T) and np.all(np.linalg.eigvalsh(mat) > 0))


def check_spd(mats: np.ndarray, covariance_type: str) -> None:
    for mat in mats:
        if not _is_spd(mat):
            raise ValueError(  # scikit-learn's message
                f"'{covariance_type} precision' should be symmetric, positive-definite"
            )


def check_positive(p: np.ndarray, covariance_type: str) -> None:
    if np.any(p <= 0):
        raise ValueError(f"'{covariance_type} precision' should be positive")  # scikit-learn's


def check_prior_shape(prior: np.ndarray, shape: tuple, name: str) -> None:
    """scikit-learn's message for a prior of the wrong shape."""
    if prior.shape != shape:
        raise ValueError(
            f"The parameter '{name}' should have the shape of {shape}, but got {prior.shape}"
        )


def check_prior_spd(prior: np.ndarray, covariance_type: str) -> None:
    if not _is_spd(prior):
        raise ValueError(
            f"'{covariance_type} covariance_prior' should be symmetric, positive-definite"
        )


def check_prior_positive(prior: np.ndarray, covariance_type: str) -> None:
    if np.any(prior <= 0.0):
        raise ValueError(f"'{covariance_type} covariance_prior' should be positive")


def row_bytes(n_components: int, n_features: int, itemsize: int) -> int:
    """Working memory of one row of an E-step chunk: its (K,) log-densities and
    responsibilities and its (D,) shifted copies (``full`` adds its per-component ones)."""
    return itemsize * (3 * n_components + 4 * n_features)


def per_component(value: Any, shape: tuple, xp: Any) -> Any:
    """``value`` (one component's layout) repeated for every component (a copy)."""
    return xp.asarray(xp.broadcast_to(value[None, ...], shape), copy=True)


# ---------------------------------------------------------------------- per-component types
def seed_per_component(state: Any, comp_idx: Any, var: Any, cov_one: Any, seed_mass: float,
                       xp: Any) -> tuple:
    """``(moment, covariances, tied_mass)`` with rows ``comp_idx`` set to one seed's."""
    n_new = len(comp_idx)
    moment = scatter_rows(state.moment, comp_idx, _rows(seed_mass * var, n_new, xp), xp)
    cov = scatter_rows(state.covariances, comp_idx, _rows(cov_one, n_new, xp), xp)
    return moment, cov, state.tied_mass


def _rows(value: Any, n: int, xp: Any) -> Any:
    return xp.broadcast_to(value[None, ...], (n, *value.shape))


def as_float64(value: Any, like: Any, xp: Any) -> Any:
    return xp.asarray(value, dtype=xp.float64, device=device(like))


def unchanged_tied_mass(tied_mass: Any, rho_time: float, mass: Any, xp: Any) -> Any:
    """Only ``tied`` keeps a pooled mass."""
    return tied_mass


def per_component_degrees_of_freedom(dof_prior: float, mass: Any, tied_mass: Any,
                                     n_components: int, xp: Any) -> Any:
    """(K,) the Wishart posterior's degrees of freedom ``nu_0 + n_k``."""
    return dof_prior + mass


def per_component_initial_moment(var: Any, n_components: int, seed_mass: float,
                                 tied_mass: Any, xp: Any) -> tuple:
    """``(moment, tied_mass)`` of user-initialised components (``var`` per component)."""
    return seed_mass * var, tied_mass


# ---------------------------------------------------------------------- matrix types
def matrix_covariances_from_precisions(precisions: Any, xp: Any) -> Any:
    """Covariances of user-given precision matrices, symmetrised."""
    cov = xp.linalg.inv(precisions)
    return 0.5 * (cov + xp.matrix_transpose(cov))


def matrix_weighted_variance(R: Any, w64: Any, total: Any, xp: Any) -> Any:
    """Weighted covariance matrix of the centred rows ``R`` (float64)."""
    return (R * w64[:, None]).T @ R / total


def matrix_has_spread(var: Any, xp: Any) -> bool:
    return float(xp.max(xp.linalg.diagonal(var))) > 0


def matrix_regularised(var: Any, reg_covar: float, xp: Any) -> Any:
    """A seed's covariance from a (possibly rank-deficient) variance: regularised as every
    M-step's covariance is (``reg_covar`` and the rounding floor, relative to the data's
    own scale), so a first batch of fewer rows than features at any scale is positive
    definite."""
    return regularised_scatter(var, reg_covar, xp)


def matrix_unregularised(covariances: np.ndarray, reg_covar: float) -> np.ndarray:
    return covariances - reg_covar * np.eye(covariances.shape[-1])


def upper_factor(covariances: Any, xp: Any, factor: Any, check: bool = True) -> Any:
    """``factor``: the backend's upper precision factors of SPD matrices (one or a stack);
    it checks them as its backend says (``check`` is for the elementwise types)."""
    return factor(covariances)


# ---------------------------------------------------------------------- elementwise types
def elementwise_precisions(prec_chol: Any, xp: Any) -> Any:
    return prec_chol**2


def elementwise_covariances_from_precisions(precisions: Any, xp: Any) -> Any:
    return 1.0 / precisions


def elementwise_has_spread(var: Any, xp: Any) -> bool:
    return float(xp.max(var)) > 0


def elementwise_regularised(var: Any, reg_covar: float, xp: Any) -> Any:
    return var + reg_covar


def elementwise_unregularised(covariances: np.ndarray, reg_covar: float) -> np.ndarray:
    return np.maximum(covariances - reg_covar, 0.0)


def per_component_reordered(value: Any, order: np.ndarray, xp: Any) -> Any:
    """A per-component array (a moment, covariances or precision factors) with its
    components in the order ``order`` (slot ``i`` gets component ``order[i]``)."""
    from ..array_api import take_index

    return xp.take(value, take_index(order, value, xp), axis=0)


def per_component_moved_moment(moment: Any, source: int, target: int, xp: Any) -> tuple:
    """``(rest, moved)``: the moment without component ``source``'s own part, and one that
    holds only that part, in slot ``target`` (to merge ``source`` into ``target`` by the
    pairwise rule)."""
    from ..array_api import scatter_rows

    row = moment[source : source + 1, ...]
    rest = scatter_rows(moment, np.array([source]), xp.zeros_like(row), xp)
    moved = scatter_rows(xp.zeros_like(moment), np.array([target]), row, xp)
    return rest, moved

