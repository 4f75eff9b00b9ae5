"""Conversions between :class:`~online_gmm.OnlineGaussianMixture` and scikit-learn's
:class:`sklearn.mixture.GaussianMixture` (the bodies of ``to_sklearn`` and
``from_sklearn``), and from :class:`~online_gmm.OnlineBayesianGaussianMixture` to
:class:`sklearn.mixture.BayesianGaussianMixture` (``to_sklearn_bayesian``)."""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any

import numpy as np
from sklearn.utils.validation import check_is_fitted, check_scalar

from .._math.array_api import asarray_like, to_numpy
from .._math.covariance import covariance
from .._math.state import MixtureState


def to_sklearn(model: Any, *, allow_unseeded: bool = False) -> Any:
    """An equivalent fitted :class:`sklearn.mixture.GaussianMixture` of ``model``."""
    from sklearn.mixture import GaussianMixture

    s = _checked_state(model, allow_unseeded)
    gm = GaussianMixture(
        n_components=model.n_components,
        covariance_type=model.covariance_type,
        tol=model.tol,
        reg_covar=model.reg_covar,
        max_iter=model.max_iter,
        n_init=model.n_init,
        init_params=model.init_params,
        random_state=model.random_state,
        warm_start=model.warm_start,
        verbose=model.verbose,
        verbose_interval=model.verbose_interval,
    )
    gm.weights_ = to_numpy(s.weights).astype(np.float64)
    gm.means_ = to_numpy(s.means).astype(np.float64)
    gm.covariances_ = to_numpy(s.covariances).astype(np.float64)
    gm.precisions_cholesky_ = to_numpy(s.precisions_cholesky).astype(np.float64)
    gm.precisions_ = to_numpy(model._precisions(s)).astype(np.float64)  # (not float32 copies)
    return _with_bookkeeping(gm, model)


def sample(model: Any, n_samples: int) -> tuple:
    """``model.sample(n_samples)``: scikit-learn's sampler (its checks and messages, the
    draws of ``random_state``) on the equivalent scikit-learn model, the draws returned as
    scikit-learn's ``sample`` returns them: in the model's namespace and on its device
    (``X`` float64, the state's dtype; ``y`` int64)."""
    check_is_fitted(model)
    check_scalar(n_samples, "n_samples", Integral)
    X, y = model.to_sklearn(_allow_unseeded=True).sample(n_samples)
    like = model._state.means
    if isinstance(like, np.ndarray):
        return X, y
    import array_api_compat

    xp = array_api_compat.array_namespace(like)
    return asarray_like(X, like, xp), asarray_like(y, like, xp, dtype=xp.int64)


def _checked_state(model: Any, allow_unseeded: bool) -> MixtureState:
    check_is_fitted(model)
    s = model._state
    seeded = to_numpy(s.seeded).astype(bool)
    if not seeded.all() and not allow_unseeded:
        raise ValueError(
            f"{int((~seeded).sum())} of {model.n_components} components have not been "
            "seeded yet (the model has seen fewer samples than n_components); feed more "
            "data before converting."
        )
    return s


def _with_bookkeeping(sk: Any, model: Any) -> Any:
    sk.converged_ = bool(model.converged_)
    sk.n_iter_ = int(model.n_iter_)
    sk.lower_bound_ = float(model.lower_bound_)
    sk.n_features_in_ = model.n_features_in_
    if hasattr(model, "feature_names_in_"):
        sk.feature_names_in_ = model.feature_names_in_
    return sk


def _host(a: Any) -> Any:
    """A float64 NumPy copy; a 0-d array as a float (scikit-learn's scalars)."""
    out = np.asarray(to_numpy(a), dtype=np.float64).copy()
    return float(out) if out.ndim == 0 else out


def to_sklearn_bayesian(model: Any, *, allow_unseeded: bool = False) -> Any:
    """An equivalent fitted :class:`sklearn.mixture.BayesianGaussianMixture` of the
    variational ``model`` (its prior and posterior; the same ``predict_proba`` and
    ``score_samples``)."""
    from sklearn.mixture import BayesianGaussianMixture

    _checked_state(model, allow_unseeded)
    params = BayesianGaussianMixture().get_params()
    bgm = BayesianGaussianMixture(**{k: v for k, v in model.get_params().items()
                                     if k in params})
    for name in ("weight_concentration_prior_", "mean_precision_prior_",
                 "degrees_of_freedom_prior_", "mean_precision_",
                 "means_", "degrees_of_freedom_", "covariances_", "precisions_cholesky_",
                 "precisions_", "weights_"):
        setattr(bgm, name, _host(getattr(model, name)))
    bgm.mean_prior_ = _host(model._prior.mean)  # (the float64 prior, not its float32 copy)
    bgm.covariance_prior_ = _host(model._prior.covariance)
    wc = model.weight_concentration_
    bgm.weight_concentration_ = (tuple(_host(c) for c in wc) if isinstance(wc, tuple)
                                 else _host(wc))
    return _with_bookkeeping(bgm, model)


def from_sklearn(cls: type, gmm: Any, *, n_samples_seen: float | None = None,
                 **params: Any) -> Any:
    """A fitted ``cls`` (an :class:`~online_gmm.OnlineGaussianMixture`) started from the
    fitted ``gmm``; see :meth:`OnlineGaussianMixture.from_sklearn`."""
    check_is_fitted(gmm)
    base = dict(
        n_components=gmm.n_components,
        covariance_type=gmm.covariance_type,
        reg_covar=gmm.reg_covar,
        tol=gmm.tol,
        max_iter=gmm.max_iter,
    )
    base.update(params)
    model = cls(**base)
    model._validate_hyperparameters()
    if model.n_components != gmm.n_components or (
        model.covariance_type != gmm.covariance_type
    ):
        raise ValueError("n_components and covariance_type must match the fitted model.")
    means = np.asarray(gmm.means_, dtype=np.float64)
    weights = np.asarray(gmm.weights_, dtype=np.float64)
    if n_samples_seen is None:
        mass = np.full(model.n_components, float(model.seed_mass))
    else:
        check_scalar(n_samples_seen, "n_samples_seen", Real, min_val=0.0)
        mass = weights * float(n_samples_seen)
    cov = np.asarray(gmm.covariances_, dtype=np.float64)
    moment = covariance(model.covariance_type).moment_from_covariances(
        cov, mass, float(model.reg_covar)
    )
    model._state = MixtureState(
        weights=weights,
        means=means,
        covariances=cov,
        precisions_cholesky=np.asarray(gmm.precisions_cholesky_, dtype=np.float64),
        mass=mass,
        nu=weights * mass.sum() if mass.sum() > 0 else weights.copy(),
        moment=moment,
        tied_mass=np.asarray([mass.sum()]),
        seeded=np.ones(model.n_components, dtype=bool),
    )
    model._user_init_pending = False
    model._warmup = None
    model._published_dtype = "float32" if gmm.means_.dtype == np.float32 else "float64"
    model._reset_bookkeeping()
    model.n_features_in_ = means.shape[1]
    if hasattr(gmm, "feature_names_in_"):
        model.feature_names_in_ = gmm.feature_names_in_
    model.converged_ = bool(getattr(gmm, "converged_", False))
    model.n_iter_ = int(getattr(gmm, "n_iter_", 0))
    model.lower_bound_ = float(getattr(gmm, "lower_bound_", -np.inf))
    model._publish()
    return model
