"""``OnlineGaussianMixture``: the scikit-learn estimator. Thin: validation, bookkeeping and
the scikit-learn API; the math lives in plain functions (``_online_em``, ``_estep``,
``_stats``)."""

from __future__ import annotations

import time
import warnings
import weakref
from collections.abc import Callable
from numbers import Integral, Real
from typing import Any

import numpy as np
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    DensityMixin,
    TransformerMixin,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, check_scalar, validate_data

from . import _array_api, _dask
from ._array_api import device, to_numpy
from ._estep import posterior, prepare, weighted_log_density
from ._gaussian import (
    COVARIANCE_TYPES,
    covariance_shape,
    n_parameters,
    precisions_from_cholesky,
)
from ._kernels import all_finite
from ._online_em import (
    EMConfig,
    em_step,
    empty_state,
    needs_seeding,
    seed_from_sample,
    user_initialised_state,
)
from ._schedules import ANNEAL_SCHEDULES, forgetting_rate_at, temperature_at
from ._seeding import INIT_PARAMS
from ._stats import MixtureState
from ._version import __version__

_FORGETTING = ("responsibility", "uniform")
#: The hyper-parameters ``_validate_hyperparameters`` checks (its cache key).
_VALIDATED_PARAMS = (
    "n_components", "covariance_type", "tol", "reg_covar", "max_iter", "n_init", "batch_size",
    "init_params", "init_size", "forgetting", "forgetting_rate", "temperature_init",
    "temperature_final", "anneal_steps", "anneal_schedule", "seed_mass", "dead_threshold",
    "max_reseed", "verbose", "verbose_interval",
)
#: estimator -> the key of its hyper-parameters last found valid. Kept outside the
#: estimators, so that their ``__dict__`` (pickles, ``clone``, a failed call's "nothing
#: changed") holds only what it held before.
_valid_hyperparameters: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class OnlineGaussianMixture(
    ClassNamePrefixFeaturesOutMixin, TransformerMixin, DensityMixin, BaseEstimator
):
    """Gaussian mixture fitted by online EM, with annealing and responsibility-weighted forgetting.

    A drop-in for :class:`sklearn.mixture.GaussianMixture` (same parameters, fitted attributes
    and methods) that also learns from a stream: :meth:`partial_fit` folds one mini-batch into
    the model's sufficient statistics. The E-step runs at a temperature that is annealed over
    the first batches, and each component forgets old evidence in proportion to the
    responsibility it absorbs. See ``docs/algorithm.md`` for the math.

    Parameters
    ----------
    n_components : int, default=1
        Number of mixture components.
    covariance_type : {"full", "tied", "diag", "spherical"}, default="diag"
        Covariance parametrisation, as in scikit-learn. ``diag`` is the default here (not
        ``full`` as in scikit-learn) because streams of embeddings are high-dimensional.
    tol : float, default=1e-3
        :meth:`fit` stops when the per-epoch change of the mean log-likelihood is below it.
    reg_covar : float, default=1e-6
        Added to the diagonal of every covariance.
    max_iter : int, default=100
        Maximum number of epochs of :meth:`fit`.
    n_init : int, default=1
        Independent restarts of :meth:`fit`; the best (highest lower bound) is kept.
    batch_size : int, default=1024
        Mini-batch size of :meth:`fit`.
    init_params : {"k-means++", "kmeans", "random", "random_from_data"}, default="k-means++"
        How components are seeded: k-means++ seeds on samples, ``kmeans`` runs
        scikit-learn's ``KMeans`` (Lloyd) and seeds on its centres, ``random`` on means of
        random responsibilities, ``random_from_data`` on random samples. :meth:`partial_fit`
        seeds from its first batch; a stream is seeded best by a first call on a larger sample
        (see ``init_size``).
    init_size : int or None, default=None
        :meth:`fit` seeds from this many rows of ``X`` drawn at random (as
        ``MiniBatchKMeans``'s ``init_size``), not from its first mini-batch. None:
        ``max(3 * batch_size, 3 * n_components)``; at most ``n_samples``. With
        ``init_params="kmeans"``, a larger sample (a few hundred rows per component) gives
        seeds close to scikit-learn's full-data k-means, at the cost of Lloyd iterations
        over it.
    weights_init, means_init, precisions_init : array-like, default=None
        User-provided initial parameters (shapes as in scikit-learn).
    forgetting : {"responsibility", "uniform"}, default="responsibility"
        ``responsibility``: a component keeps ``(1 - eta) ** m_k`` of its evidence after
        absorbing mass ``m_k``; ``uniform``: every component keeps ``(1 - eta) ** n``.
    forgetting_rate : float or callable, default=0.0
        eta in [0, 1), or ``step -> eta`` (e.g. :class:`online_gmm.PowerDecay`). 0 keeps exact
        cumulative statistics (a stationary stream).
    temperature_init, temperature_final : float, default=1.0
        E-step temperature at the first batch and after ``anneal_steps`` batches.
    anneal_steps : int, default=0
        Batches over which the temperature moves from init to final.
    anneal_schedule : {"constant", "linear", "cosine", "exponential"} or callable, \
default="exponential"
        Path of the temperature, or ``step -> temperature``.
    seed_mass : float, default=1.0
        Evidence (pseudo-count) a freshly seeded component starts with.
    dead_threshold : float, default=1e-3
        A component whose weight falls below ``dead_threshold / n_components`` is reseeded.
    max_reseed : int or None, default=None
        At most this many dead components are reseeded per batch (None: as many as the batch
        has samples).
    random_state : int, RandomState instance or None, default=None
        Seeds the seeding, the shuffling of :meth:`fit` and :meth:`sample`.
    warm_start : bool, default=False
        If True, :meth:`fit` continues from the current model instead of resetting it.
    verbose : int, default=0
        Print progress of :meth:`fit`.
    verbose_interval : int, default=10
        Epochs between progress lines.

    Attributes
    ----------
    weights_ : ndarray of shape (n_components,)
    means_ : ndarray of shape (n_components, n_features)
    covariances_ : ndarray
        Shape depends on ``covariance_type`` as in scikit-learn.
    precisions_ : ndarray
    precisions_cholesky_ : ndarray
    converged_ : bool
        Whether :meth:`fit` converged (always False after :meth:`partial_fit` alone).
    n_iter_ : int
        Epochs run by the best :meth:`fit`, or online steps taken by :meth:`partial_fit`.
    lower_bound_ : float
        Mean log-likelihood of the last epoch (:meth:`fit`) or batch (:meth:`partial_fit`),
        each batch scored before it updates the model.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when fitted on data with string feature names.
    n_steps_ : int
        Online-EM steps (batches) taken.
    n_samples_seen_ : int
        Samples seen by all steps.
    temperature_ : float
        E-step temperature of the last step.
    n_reseeded_ : int
        Dead components reseeded so far.

    See Also
    --------
    sklearn.mixture.GaussianMixture : Batch EM.

    Examples
    --------
    >>> import numpy as np
    >>> from online_gmm import OnlineGaussianMixture
    >>> rng = np.random.default_rng(0)
    >>> X = np.concatenate([rng.normal(-5, 1, (500, 2)), rng.normal(5, 1, (500, 2))])
    >>> gmm = OnlineGaussianMixture(n_components=2, random_state=0)
    >>> for batch in np.array_split(rng.permutation(X), 10):
    ...     gmm = gmm.partial_fit(batch)
    >>> np.sort(gmm.means_[:, 0]).round(0)
    array([-5.,  5.])
    >>> gmm.predict([[-5, -5], [5, 5]]).tolist() in ([0, 1], [1, 0])
    True
    """

    def __init__(
        self,
        n_components: int = 1,
        *,
        covariance_type: str = "diag",
        tol: float = 1e-3,
        reg_covar: float = 1e-6,
        max_iter: int = 100,
        n_init: int = 1,
        batch_size: int = 1024,
        init_params: str = "k-means++",
        init_size: int | None = None,
        weights_init: Any = None,
        means_init: Any = None,
        precisions_init: Any = None,
        forgetting: str = "responsibility",
        forgetting_rate: float | Callable[[int], float] = 0.0,
        temperature_init: float = 1.0,
        temperature_final: float = 1.0,
        anneal_steps: int = 0,
        anneal_schedule: str | Callable[[int], float] = "exponential",
        seed_mass: float = 1.0,
        dead_threshold: float = 1e-3,
        max_reseed: int | None = None,
        random_state: Any = None,
        warm_start: bool = False,
        verbose: int = 0,
        verbose_interval: int = 10,
    ) -> None:
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.batch_size = batch_size
        self.init_params = init_params
        self.init_size = init_size
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.forgetting = forgetting
        self.forgetting_rate = forgetting_rate
        self.temperature_init = temperature_init
        self.temperature_final = temperature_final
        self.anneal_steps = anneal_steps
        self.anneal_schedule = anneal_schedule
        self.seed_mass = seed_mass
        self.dead_threshold = dead_threshold
        self.max_reseed = max_reseed
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval

    # ------------------------------------------------------------------ validation
    def _validate_hyperparameters(self) -> None:
        """Check every hyper-parameter (``check_scalar``'s messages); a no-op when their
        values and types are those last found valid (a ~1 us comparison instead of ~20 us
        of checks on every ``partial_fit``)."""
        key = tuple([(type(v), v) for v in (getattr(self, a, None) for a in _VALIDATED_PARAMS)])
        try:
            if key == _valid_hyperparameters.get(self):
                return
        except TypeError:  # an unhashable (subclass) estimator: checked every time
            self._check_hyperparameters()
            return
        self._check_hyperparameters()
        _valid_hyperparameters[self] = key

    def _check_hyperparameters(self) -> None:
        name = type(self).__name__

        def choice(attr: str, options: tuple, allow_callable: bool = False) -> None:
            value = getattr(self, attr)
            if allow_callable and callable(value):
                return
            if not isinstance(value, str) or value not in options:
                extra = " or a callable" if allow_callable else ""
                raise ValueError(
                    f"The '{attr}' parameter of {name} must be one of {list(options)}{extra}. "
                    f"Got {value!r} instead."
                )

        check_scalar(self.n_components, "n_components", Integral, min_val=1)
        choice("covariance_type", COVARIANCE_TYPES)
        check_scalar(self.tol, "tol", Real, min_val=0.0)
        check_scalar(self.reg_covar, "reg_covar", Real, min_val=0.0)
        check_scalar(self.max_iter, "max_iter", Integral, min_val=1)
        check_scalar(self.n_init, "n_init", Integral, min_val=1)
        check_scalar(self.batch_size, "batch_size", Integral, min_val=1)
        choice("init_params", INIT_PARAMS)
        if self.init_size is not None:
            check_scalar(self.init_size, "init_size", Integral, min_val=1)
        choice("forgetting", _FORGETTING)
        if not callable(self.forgetting_rate):
            check_scalar(
                self.forgetting_rate, "forgetting_rate", Real, min_val=0.0, max_val=1.0,
                include_boundaries="left",
            )
        for attr in ("temperature_init", "temperature_final"):
            check_scalar(getattr(self, attr), attr, Real, min_val=0.0, include_boundaries="neither")
            if not np.isfinite(getattr(self, attr)):
                raise ValueError(f"{attr} must be finite, got {getattr(self, attr)!r}.")
        check_scalar(self.anneal_steps, "anneal_steps", Integral, min_val=0)
        choice("anneal_schedule", ANNEAL_SCHEDULES, allow_callable=True)
        check_scalar(self.seed_mass, "seed_mass", Real, min_val=0.0)
        check_scalar(self.dead_threshold, "dead_threshold", Real, min_val=0.0, max_val=1.0)
        if self.max_reseed is not None:
            check_scalar(self.max_reseed, "max_reseed", Integral, min_val=0)
        check_scalar(self.verbose, "verbose", Integral, min_val=0)
        check_scalar(self.verbose_interval, "verbose_interval", Integral, min_val=1)
        for attr in ("tol", "reg_covar", "seed_mass"):
            if not np.isfinite(getattr(self, attr)):
                raise ValueError(f"{attr} must be finite, got {getattr(self, attr)!r}.")

    def _validate_initial_parameters(self, n_features: int) -> None:
        K, ct = self.n_components, self.covariance_type
        if self.weights_init is not None:
            w = np.asarray(self.weights_init, dtype=np.float64)
            if w.shape != (K,):
                raise ValueError(
                    f"weights_init must have shape ({K},), got {w.shape}."
                )
            if not np.all(np.isfinite(w)) or np.any(w < 0) or np.any(w > 1):
                raise ValueError("weights_init must be finite and lie in [0, 1].")
            if not np.isclose(w.sum(), 1.0, atol=1e-6 if w.dtype == np.float32 else 1e-8):
                raise ValueError(f"weights_init must sum to 1, got {w.sum()!r}.")
        if self.means_init is not None:
            m = np.asarray(self.means_init, dtype=np.float64)
            if m.shape != (K, n_features):
                raise ValueError(
                    f"means_init must have shape ({K}, {n_features}), got {m.shape}."
                )
            if not np.all(np.isfinite(m)):
                raise ValueError("means_init must be finite.")
        if self.precisions_init is not None:
            p = np.asarray(self.precisions_init, dtype=np.float64)
            shape = covariance_shape(ct, K, n_features)
            if p.shape != shape:
                raise ValueError(
                    f"precisions_init for covariance_type={ct!r} must have shape {shape}, "
                    f"got {p.shape}."
                )
            if not np.all(np.isfinite(p)):
                raise ValueError("precisions_init must be finite.")
            mats = p if ct == "full" else (p[None] if ct == "tied" else None)
            if mats is None:
                if np.any(p <= 0):
                    raise ValueError(f"{ct!r} precisions_init must be positive.")
            else:
                for mat in mats:
                    if not np.allclose(mat, mat.T) or np.any(np.linalg.eigvalsh(mat) <= 0):
                        raise ValueError(
                            f"{ct!r} precisions_init must be symmetric positive definite."
                        )

    def _check_X(self, X, reset: bool):
        if not reset and _is_plain_valid_batch(X, self):
            return X
        xp = _array_api.input_namespace(X)
        return validate_data(
            self, X, reset=reset, dtype=[xp.float64, xp.float32], ensure_min_samples=1
        )

    def _check_sample_weight(self, sample_weight, X, xp):
        n = X.shape[0]
        if sample_weight is None:
            return xp.ones(n, dtype=X.dtype, device=device(X))
        sw = sample_weight
        if not hasattr(sw, "__array_namespace__") and not isinstance(sw, np.ndarray):
            sw = np.asarray(sw)
        sw_np = to_numpy(sw)
        if sw_np.ndim == 0:
            sw_np = np.full(n, float(sw_np))
        if sw_np.ndim != 1 or sw_np.shape[0] != n:
            raise ValueError(
                f"sample_weight must have shape ({n},), got {tuple(sw_np.shape)}."
            )
        if not np.issubdtype(sw_np.dtype, np.number) or np.iscomplexobj(sw_np):
            raise ValueError("sample_weight must be real numbers.")
        sw_np = sw_np.astype(np.float64)
        if not np.all(np.isfinite(sw_np)):
            raise ValueError("sample_weight contains NaN or infinity.")
        if np.any(sw_np < 0):
            raise ValueError("sample_weight must be non-negative.")
        return _array_api.asarray_like(sw_np, X, xp, dtype=X.dtype)

    # ------------------------------------------------------------------ state plumbing
    def __getstate__(self):
        state = dict(super().__getstate__())  # a copy: object's is __dict__ itself
        state["_online_gmm_version"] = __version__
        return state

    def __setstate__(self, state):
        saved = state.pop("_online_gmm_version", "0.1.0")  # 0.1.0 files did not record it
        state.setdefault("init_size", None)  # a parameter added after 0.1.0
        if saved != __version__:
            warnings.warn(
                f"Trying to unpickle {type(self).__name__} from online-gmm version {saved} "
                f"when using version {__version__}. This might lead to breaking code or "
                "invalid results; online_gmm.load checks the file format.",
                UserWarning,
                stacklevel=2,
            )
        super().__setstate__(state)

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "_state")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.array_api_support = True
        return tags

    @property
    def _n_features_out(self) -> int:
        return self.n_components

    def _config(self) -> EMConfig:
        return EMConfig(
            n_components=self.n_components,
            covariance_type=self.covariance_type,
            reg_covar=float(self.reg_covar),
            forgetting=self.forgetting,
            seed_mass=float(self.seed_mass),
            dead_threshold=float(self.dead_threshold),
            max_reseed=None if self.max_reseed is None else int(self.max_reseed),
            init_params=self.init_params,
        )

    def _reset(self, X, xp) -> None:
        self._state = empty_state(
            self.n_components, X.shape[1], self.covariance_type, xp, device(X)
        )
        self._user_init_pending = self.means_init is not None
        self._reset_bookkeeping()

    def _reset_bookkeeping(self) -> None:
        self._rng = check_random_state(self.random_state)
        self.n_steps_ = 0
        self.n_samples_seen_ = 0
        self.n_reseeded_ = 0
        self.n_iter_ = 0
        self.converged_ = False
        self.lower_bound_ = -np.inf
        self.temperature_ = temperature_at(0, **self._schedule_kwargs())
        self._publish()

    def _schedule_kwargs(self) -> dict:
        return dict(
            schedule=self.anneal_schedule,
            temperature_init=self.temperature_init,
            temperature_final=self.temperature_final,
            anneal_steps=self.anneal_steps,
        )

    def _publish(self, precisions=None) -> None:
        """Expose the state as scikit-learn's fitted attributes (views, no copies)."""
        self.__dict__.update(self._published(self._state, precisions))

    def _published(self, s: MixtureState, precisions=None) -> dict:
        return {
            "weights_": s.weights,
            "means_": s.means,
            "covariances_": s.covariances,
            "precisions_cholesky_": s.precisions_cholesky,
            "precisions_": self._precisions(s) if precisions is None else precisions,
        }

    def _precisions(self, s: MixtureState):
        xp, _ = _array_api.get_namespace(s.means)
        return precisions_from_cholesky(s.precisions_cholesky, self.covariance_type, xp)

    def _step(self, X, w, xp, fast: bool):
        """One online-EM step; the model is untouched if anything raises."""
        state = self._state
        config = self._config()
        user_init = self._user_init_pending
        # only seeding draws from the RNG (a snapshot costs ~40 us: not on every step)
        seeding = user_init or needs_seeding(state, config)
        rng_state = self._rng.get_state() if seeding else None
        try:
            if user_init:
                self._validate_initial_parameters(X.shape[1])
                state = user_initialised_state(
                    state, X, w, config=config, means_init=self.means_init,
                    weights_init=self.weights_init, precisions_init=self.precisions_init,
                    xp=xp, fast=fast,
                )
            temperature = temperature_at(self.n_steps_, **self._schedule_kwargs())
            eta = forgetting_rate_at(self.n_steps_, self.forgetting_rate)
            new_state, info = em_step(
                state, X, w, config=config, temperature=temperature,
                forgetting_rate=eta, rng=self._rng, xp=xp, fast=fast,
                # the user's initial state is another state: em_step asks again
                seeding=None if user_init else seeding,
            )
            _check_finite_state(new_state, xp)
            changes = self._step_changes(new_state, info, self._precisions(new_state))
        except BaseException:
            if rng_state is not None:
                self._rng.set_state(rng_state)
            raise
        self.__dict__.update(changes)  # the commit: whole or not at all
        return info

    def _step_changes(self, new_state: MixtureState, info, precisions) -> dict:
        """The attributes a finished step sets (shared with :mod:`online_gmm._dask`). They
        are gathered while the step can still be undone and land in one ``dict.update``: a
        step is committed whole or not at all, even if an exception (a signal) arrives."""
        return {
            "_state": new_state,
            "_user_init_pending": False,
            "n_steps_": self.n_steps_ + 1,
            "n_samples_seen_": self.n_samples_seen_ + info.n_samples,
            "n_reseeded_": self.n_reseeded_ + info.n_reseeded,
            "temperature_": info.temperature,
            **self._published(new_state, precisions),
        }

    # ------------------------------------------------------------------ fitting
    def partial_fit(self, X, y=None, sample_weight=None) -> OnlineGaussianMixture:
        """Update the model with one mini-batch (one online-EM step).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The batch. May hold fewer samples than ``n_components``: the remaining
            components are seeded from later batches.
        y : Ignored
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights of the samples.

        Returns
        -------
        self : OnlineGaussianMixture
        """
        if _dask.is_dask_array(X):
            return _dask.partial_fit(self, X, sample_weight)
        self._validate_hyperparameters()
        first = not self.__sklearn_is_fitted__()
        before = dict(self.__dict__) if first else None
        try:
            X = self._check_X(X, reset=first)
            xp, fast = _array_api.get_namespace(X)
            w = self._check_sample_weight(sample_weight, X, xp)
            self._start_call(X, xp, first)
            info = self._step(X, w, xp, fast)
        except BaseException:
            if first:  # a failed first call leaves the model unfitted, as it was
                self.__dict__.clear()
                self.__dict__.update(before)
            raise
        self.n_iter_ = self.n_steps_
        if info.weight > 0:
            self.lower_bound_ = info.loglik / info.weight
        return self

    def _start_call(self, X_like, xp, first: bool) -> None:
        """A first ``partial_fit`` checks the user's initial parameters and resets the
        model; a later one checks that the data's namespace is the state's (shared with
        :mod:`online_gmm._dask`, whose ``X_like`` is an empty host array)."""
        if first:
            if self.means_init is not None or self.weights_init is not None:
                self._validate_initial_parameters(X_like.shape[1])
            self._reset(X_like, xp)
        else:
            self._check_namespace(xp)

    def fit(self, X, y=None) -> OnlineGaussianMixture:
        """Reset, then run epochs of shuffled mini-batches through :meth:`partial_fit`'s update
        until the epoch's mean log-likelihood changes by less than ``tol``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : Ignored

        Returns
        -------
        self : OnlineGaussianMixture
        """
        if _dask.is_dask_array(X):
            return _dask.fit(self, X)
        self._validate_hyperparameters()
        continuing = self.warm_start and self.__sklearn_is_fitted__()
        X = self._check_X(X, reset=not continuing)
        xp, fast = _array_api.get_namespace(X)
        if self.means_init is not None or self.weights_init is not None:
            self._validate_initial_parameters(X.shape[1])
        w = xp.ones(X.shape[0], dtype=X.dtype, device=device(X))
        self._fit_restarts(X, xp, continuing, lambda: self._fit_epochs(X, w, xp, fast))
        self._warn_if_not_converged()
        return self

    def _fit_restarts(self, X_like, xp, continuing: bool, run_epochs: Callable[[], None]) -> None:
        """``n_init`` restarts of ``run_epochs`` (one unless continuing), keeping the best
        lower bound (shared with :mod:`online_gmm._dask`)."""
        n_init = 1 if continuing else self.n_init
        best = None
        for init in range(n_init):
            if not continuing:
                rng = self._rng if init > 0 else check_random_state(self.random_state)
                self._reset(X_like, xp)
                self._rng = rng
            elif init == 0:
                self._check_namespace(xp, "fit")
            if self.verbose:
                print(f"Initialization {init}")
            run_epochs()
            if best is None or self.lower_bound_ > best[0]:
                best = (self.lower_bound_, self._snapshot())
        self._restore(best[1])

    def _warn_if_not_converged(self) -> None:
        if not self.converged_:
            warnings.warn(
                "Best performing initialization did not converge. Try different init "
                "parameters, or increase max_iter, tol, or check for degenerate data.",
                ConvergenceWarning,
                stacklevel=3,
            )

    def _fit_epochs(self, X, w, xp, fast: bool) -> None:
        n = X.shape[0]
        if not self._user_init_pending and not bool(xp.any(self._state.seeded)):
            self._seed_for_fit(X, w, xp, fast)

        def epoch_steps():
            order = self._rng.permutation(n)
            for start in range(0, n, self.batch_size):
                idx = order[start : start + self.batch_size]
                if not fast:
                    idx = xp.asarray(idx, device=device(X))
                yield self._step(xp.take(X, idx, axis=0), xp.take(w, idx, axis=0), xp, fast)

        self._run_epochs(epoch_steps)

    def _seed_for_fit(self, X, w, xp, fast: bool) -> None:
        """Seed every component from ``init_size`` random rows of ``X`` (the first step's
        seeding, on a larger sample than one mini-batch; no statistics are added)."""
        n = X.shape[0]
        size = self.init_size
        if size is None:
            size = max(3 * self.batch_size, 3 * self.n_components)
        if size < n:
            idx = np.sort(self._rng.choice(n, size=size, replace=False))
            if not fast:
                idx = xp.asarray(idx, device=device(X))
            X, w = xp.take(X, idx, axis=0), xp.take(w, idx, axis=0)
        self._state = seed_from_sample(
            self._state, X, w, config=self._config(), rng=self._rng, xp=xp, fast=fast
        )
        self._publish()

    def _run_epochs(self, epoch_steps: Callable[[], Any]) -> None:
        """Epochs until the change of the mean log-likelihood is below ``tol``.

        ``epoch_steps()`` runs one epoch's online-EM steps and yields their ``StepInfo``
        (shared with :mod:`online_gmm._dask`, whose epochs visit row-chunks instead)."""
        self.converged_ = False
        prev = -np.inf
        t0 = time.perf_counter()
        for epoch in range(1, self.max_iter + 1):
            ll = weight = 0.0
            for info in epoch_steps():
                ll += info.loglik
                weight += info.weight
            self.lower_bound_ = ll / weight if weight > 0 else -np.inf
            self.n_iter_ = epoch
            if self.verbose and epoch % self.verbose_interval == 0:
                print(
                    f"  Iteration {epoch}\t time lapse {time.perf_counter() - t0:.5f}s\t "
                    f"ll change {self.lower_bound_ - prev:.5f}"
                )
            if abs(self.lower_bound_ - prev) < self.tol:
                self.converged_ = True
                break
            prev = self.lower_bound_
        if self.verbose:
            print(f"Initialization converged: {self.converged_}")

    _SNAPSHOT = (
        "_state", "_rng", "_user_init_pending", "n_steps_", "n_samples_seen_", "n_reseeded_",
        "n_iter_", "converged_", "lower_bound_", "temperature_",
    )

    def _snapshot(self) -> dict:
        import copy

        snap = {k: getattr(self, k) for k in self._SNAPSHOT}
        snap["_rng"] = copy.deepcopy(self._rng)
        return snap

    def _restore(self, snap: dict) -> None:
        for k, v in snap.items():
            setattr(self, k, v)
        self._publish()

    def _check_namespace(self, xp, method: str = "partial_fit") -> None:
        state_xp, _ = _array_api.get_namespace(self._state.means)
        if state_xp is not xp:
            raise ValueError(
                f"Inputs passed to {type(self).__name__}.{method}() must use the same "
                f"namespace as the fitted model: its state lives in {state_xp.__name__!r}, "
                f"the data is a {xp.__name__!r} array."
            )

    def fit_predict(self, X, y=None):
        """Fit, then return the component of each sample (as scikit-learn's)."""
        return self.fit(X).predict(X)

    # ------------------------------------------------------------------ inference
    def _prepared(self, X, method: str):
        check_is_fitted(self)
        self._require_seeded()
        X = self._check_X(X, reset=False)
        xp, fast = _array_api.get_namespace(X)
        self._check_namespace(xp, method)
        s = self._state
        p = prepare(s.weights, s.means, s.precisions_cholesky, self.covariance_type, X.dtype, xp)
        return X, p, xp, fast

    def _require_seeded(self) -> None:
        if not bool(_array_api.to_numpy(self._state.seeded).any()):
            raise ValueError(
                f"{type(self).__name__} has no seeded component yet: every sample it was "
                "given had zero weight. Fit it on samples with positive weight first."
            )

    def score_samples(self, X):
        """Log-likelihood of each sample under the model (T = 1), in the data's dtype.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        log_prob : array of shape (n_samples,)
        """
        X, p, xp, fast = self._prepared(X, "score_samples")
        return posterior(X, p, xp, fast)[1]

    def score(self, X, y=None) -> float:
        """Mean per-sample log-likelihood of ``X``."""
        return float(to_numpy(self.score_samples(X)).astype(np.float64).mean())

    def predict_proba(self, X):
        """Posterior probability of each component for each sample (T = 1).

        Returns
        -------
        resp : array of shape (n_samples, n_components)
        """
        X, p, xp, fast = self._prepared(X, "predict_proba")
        return posterior(X, p, xp, fast)[0]

    def transform(self, X):
        """The posterior (:meth:`predict_proba`), so the mixture can feed a pipeline step."""
        X, p, xp, fast = self._prepared(X, "transform")
        return posterior(X, p, xp, fast)[0]

    def predict(self, X):
        """Most probable component of each sample."""
        X, p, xp, fast = self._prepared(X, "predict")
        return xp.argmax(weighted_log_density(X, p, xp, fast), axis=1)

    def sample(self, n_samples: int = 1):
        """Draw samples from the fitted mixture (as scikit-learn's ``GaussianMixture``).

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        y : ndarray of shape (n_samples,)
        """
        check_is_fitted(self)
        check_scalar(n_samples, "n_samples", Integral, min_val=1)
        return self.to_sklearn(_allow_unseeded=True).sample(n_samples)

    def _n_parameters(self) -> int:
        return n_parameters(self.covariance_type, self.n_components, self.means_.shape[1])

    def bic(self, X) -> float:
        """Bayesian information criterion on ``X`` (lower is better)."""
        n = X.shape[0]
        return -2 * self.score(X) * n + self._n_parameters() * np.log(n)

    def aic(self, X) -> float:
        """Akaike information criterion on ``X`` (lower is better)."""
        return -2 * self.score(X) * X.shape[0] + 2 * self._n_parameters()

    # ------------------------------------------------------------------ interop
    def to_sklearn(self, *, _allow_unseeded: bool = False):
        """An equivalent fitted :class:`sklearn.mixture.GaussianMixture` (NumPy, float64).

        Returns
        -------
        gmm : sklearn.mixture.GaussianMixture
        """
        from sklearn.mixture import GaussianMixture

        check_is_fitted(self)
        s = self._state
        seeded = to_numpy(s.seeded).astype(bool)
        if not seeded.all() and not _allow_unseeded:
            raise ValueError(
                f"{int((~seeded).sum())} of {self.n_components} components have not been "
                "seeded yet (the model has seen fewer samples than n_components); feed more "
                "data before converting."
            )
        gm = GaussianMixture(
            n_components=self.n_components,
            covariance_type=self.covariance_type,
            tol=self.tol,
            reg_covar=self.reg_covar,
            max_iter=self.max_iter,
            n_init=self.n_init,
            init_params=self.init_params,
            random_state=self.random_state,
            warm_start=self.warm_start,
            verbose=self.verbose,
            verbose_interval=self.verbose_interval,
        )
        gm.weights_ = to_numpy(s.weights).astype(np.float64)
        gm.means_ = to_numpy(s.means).astype(np.float64)
        gm.covariances_ = to_numpy(s.covariances).astype(np.float64)
        gm.precisions_cholesky_ = to_numpy(s.precisions_cholesky).astype(np.float64)
        gm.precisions_ = to_numpy(self.precisions_).astype(np.float64)
        gm.converged_ = bool(self.converged_)
        gm.n_iter_ = int(self.n_iter_)
        gm.lower_bound_ = float(self.lower_bound_)
        gm.n_features_in_ = self.n_features_in_
        if hasattr(self, "feature_names_in_"):
            gm.feature_names_in_ = self.feature_names_in_
        return gm

    @classmethod
    def from_sklearn(
        cls, gmm, *, n_samples_seen: float | None = None, **params: Any
    ) -> OnlineGaussianMixture:
        """Start an online model from a fitted :class:`sklearn.mixture.GaussianMixture`.

        Parameters
        ----------
        gmm : sklearn.mixture.GaussianMixture
            A fitted model; its ``n_components``, ``covariance_type``, ``reg_covar``, ``tol``
            and ``max_iter`` are taken over unless given in ``params``.
        n_samples_seen : float, default=None
            How much evidence the fitted parameters stand for: component k starts with mass
            ``weights_[k] * n_samples_seen``. None gives every component ``seed_mass``, so
            the stream quickly overrides the batch fit.
        **params
            Other parameters of :class:`OnlineGaussianMixture`.

        Returns
        -------
        model : OnlineGaussianMixture
            Fitted: ready for :meth:`predict` and for more :meth:`partial_fit`.
        """
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
        reg = float(model.reg_covar)
        ct = model.covariance_type
        if ct in ("full", "tied"):
            var = cov - reg * np.eye(cov.shape[-1])
        else:
            var = np.maximum(cov - reg, 0.0)
        if ct == "full":
            moment = mass[:, None, None] * var
        elif ct == "diag":
            moment = mass[:, None] * var
        elif ct == "spherical":
            moment = mass * var
        else:
            moment = mass.sum() * var
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
        model._reset_bookkeeping()
        model.n_features_in_ = means.shape[1]
        if hasattr(gmm, "feature_names_in_"):
            model.feature_names_in_ = gmm.feature_names_in_
        model.converged_ = bool(getattr(gmm, "converged_", False))
        model.n_iter_ = int(getattr(gmm, "n_iter_", 0))
        model.lower_bound_ = float(getattr(gmm, "lower_bound_", -np.inf))
        model._publish()
        return model


def _is_plain_valid_batch(X, model) -> bool:
    """Whether ``X`` needs none of ``validate_data``'s conversions or checks (a hot-path
    shortcut for the common case of a fitted model fed float NumPy batches; anything else,
    and any doubt about finiteness, goes through ``validate_data`` and its messages)."""
    if type(X) is not np.ndarray or X.ndim != 2 or X.dtype not in _FLOAT_DTYPES:
        return False
    if X.shape[0] < 1 or X.shape[1] != getattr(model, "n_features_in_", -1):
        return False
    if hasattr(model, "feature_names_in_"):
        return False  # validate_data warns about the missing names
    from sklearn import get_config

    config = get_config()
    if config["array_api_dispatch"]:
        return False
    if config["assume_finite"]:
        return True
    return all_finite(X)  # NaN or inf: validate_data raises its message


_FLOAT_DTYPES = (np.dtype(np.float64), np.dtype(np.float32))


def _check_finite_state(state: MixtureState, xp) -> None:
    """Refuse to commit a state with NaN or inf (it would poison every later step)."""
    for name in ("weights", "means", "covariances", "precisions_cholesky", "mass", "nu"):
        arr = getattr(state, name)
        if not (all_finite(arr) if isinstance(arr, np.ndarray)
                else bool(xp.all(xp.isfinite(arr)))):
            raise FloatingPointError(
                f"The update produced non-finite {name}; the model was left unchanged. "
                "This usually means the data's scale overflows float arithmetic "
                "(rescale it) or reg_covar is too small."
            )
