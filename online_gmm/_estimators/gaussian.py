"""``OnlineGaussianMixture``: the scikit-learn estimator. Thin: the scikit-learn API and
bookkeeping; parameters come from the table (``_math.parameters``), a step is
``_em.online.advance``, the math lives in plain functions behind it."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import array_api_compat
import numpy as np
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    DensityMixin,
    TransformerMixin,
)
from sklearn.utils import check_random_state
from sklearn.utils.validation import validate_data

from .._backends import select_backend
from .._em import dask as _dask
from .._em import warmup as _warmup
from .._em.consistency import check_fitted_parameters
from .._em.online import (
    NO_HOOKS,
    EMConfig,
    Hooks,
    InitialParameters,
    Schedules,
    advance,
)
from .._math import array_api as _array_api
from .._math.array_api import device
from .._math.covariance import covariance
from .._math.parameters import (
    MIXTURE_PARAMETERS,
    cache_keys,
    check_initial_parameters,
    constraints,
    validate,
)
from .._math.state import MixtureState, empty_state
from .._version import __version__
from . import interop as _interop
from .base import BaseOnlineMixture
from .inference import MixtureInference
from .input import check_sample_weight, is_plain_valid_batch, validate_hyperparameters
from .locks import update_lock

#: The hyper-parameters whose last valid values are cached, by value and by identity
#: (the parameter table's ``by_identity``: array-likes, ``random_state``, ``warm_start``).
_VALIDATED_PARAMS, _IDENTITY_PARAMS = cache_keys(MIXTURE_PARAMETERS)


class OnlineGaussianMixture(
    BaseOnlineMixture, MixtureInference, ClassNamePrefixFeaturesOutMixin, TransformerMixin,
    DensityMixin, BaseEstimator,
):
    """Gaussian mixture fitted by online EM, with annealing and responsibility-weighted forgetting.

    A drop-in for :class:`sklearn.mixture.GaussianMixture` (its parameters, fitted attributes
    and methods; two defaults differ, ``covariance_type`` and ``init_params``, see below) that
    also learns from a stream: :meth:`partial_fit` folds one mini-batch into the model's
    sufficient statistics. The E-step runs at a temperature that is annealed over the first
    batches, and each component forgets old evidence in proportion to the responsibility it
    absorbs. See ``docs/algorithm.md`` for the math.

    Parameters
    ----------
    n_components : int, default=1
        Number of mixture components.
    covariance_type : {"diag", "full", "tied", "spherical"}, default="diag"
        Covariance parametrisation, as in scikit-learn. ``diag`` is the default here (not
        ``full`` as in scikit-learn) because streams of embeddings are high-dimensional: a
        full covariance is ``D x D`` per component, and factorising it costs ``D ** 3`` per
        step.
    tol : float, default=1e-3
        :meth:`fit` (batch EM, as scikit-learn's) stops when the change of the lower bound
        (the mean log-likelihood) from one iteration to the next is below it.
    reg_covar : float, default=1e-6
        Added to the diagonal of every covariance.
    max_iter : int, default=100
        Maximum number of EM iterations of :meth:`fit` (0: the initialisation alone, as
        scikit-learn's).
    n_init : int, default=1
        Initialisations of :meth:`fit`; the one of highest lower bound is kept.
    batch_size : int, default=1024
        Rows per online-EM step where the model splits a source into steps itself (the
        command line's streaming); :meth:`fit` passes over all rows at once.
    init_params : {"k-means++", "kmeans", "random", "random_from_data"}, default="k-means++"
        How components are seeded (scikit-learn's default is ``kmeans``; ``k-means++`` is
        the default here because a stream seeds from its first batch, and k-means++ needs
        no Lloyd iterations over it): k-means++ seeds on samples, ``kmeans`` runs
        scikit-learn's ``KMeans`` (Lloyd) and seeds on its centres, ``random`` on means of
        random responsibilities, ``random_from_data`` on random samples. :meth:`partial_fit`
        seeds from its first batch; a stream is seeded best by a first call on a larger sample
        (see ``init_size``).
    init_size : int or None, default=None
        :meth:`fit` initialises from this many rows of ``X`` drawn at random (as
        ``MiniBatchKMeans``'s ``init_size``). None: every row (scikit-learn's
        initialisation), or with the warm-up's restarts (the default initialisation) the
        warm-up's first mark (64 rows per component, at most 32,768); for a Dask array at
        most 32,768 rows.
    warmup_size : int or "auto", default="auto"
        While components are seeded from data (no ``means_init``), the first
        ``warmup_size`` weighted rows are buffered ("auto": 64 per component, at most 512
        MiB) and ``warmup_restarts`` restarts on them (greedy k-means++ seeds and Lloyd
        iterations on at most 4,096 of its rows; the best restart then one EM iteration
        on all of them) replace the provisional model of the first steps, no row counted
        twice. "auto" then refits the state by EM iterations each time the rows held
        double, to 32,768 (while ``forgetting_rate`` is 0), each refit until the buffer's
        mean log-likelihood changes by less than 0.001 nats per row and feature; a refit
        whose first iteration changes it by less than that ends the warm-up. :meth:`fit`
        runs the restarts on its seeding sample, then batch EM on all of it to ``tol``.
        0: no warm-up. See ``docs/algorithm.md``, "Warm-up".
    warmup_restarts : int, default=3
        Restarts of the warm-up; the one of lowest k-means inertia (with k-means++
        seeding; else of highest buffer log-likelihood) is kept.
    weights_init : array-like of shape (n_components,), default=None
        User-provided initial weights (as in scikit-learn).
    means_init : array-like of shape (n_components, n_features), default=None
        User-provided initial means (as in scikit-learn).
    precisions_init : array-like, default=None
        User-provided initial precisions, of the shape ``covariance_type`` gives them (as in
        scikit-learn).
    forgetting : {"responsibility", "uniform"}, default="responsibility"
        ``responsibility``: a component keeps ``(1 - eta) ** m_k`` of its evidence after
        absorbing mass ``m_k``; ``uniform``: every component keeps ``(1 - eta) ** n``.
    forgetting_rate : float or callable, default=0.0
        eta in [0, 1), or ``step -> eta`` (e.g. :class:`online_gmm.PowerDecay`). 0 keeps exact
        cumulative statistics (a stationary stream).
    temperature_init : float, default=1.0
        E-step temperature at the first batch.
    temperature_final : float, default=1.0
        E-step temperature after ``anneal_steps`` batches.
    anneal_steps : int, default=0
        Batches over which the temperature moves from init to final.
    anneal_schedule : str or callable, default="exponential"
        Path of the temperature: ``"exponential"``, ``"constant"``, ``"linear"`` or
        ``"cosine"``, or a callable ``step -> temperature``.
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
        EM iterations of the best initialisation of :meth:`fit`, or online steps taken by
        :meth:`partial_fit`.
    lower_bound_ : float
        Mean log-likelihood of the rows at the last EM iteration of the best initialisation
        (:meth:`fit`, scikit-learn's), or of the last batch (:meth:`partial_fit`), scored
        before it updates the model.
    lower_bounds_ : list of float
        The lower bound at each EM iteration of the best initialisation of :meth:`fit`.
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

    Notes
    -----
    With ``reg_covar=0``, a covariance that is singular but not zero (rows on a line, a
    constant feature, with ``full`` or ``tied``) gets a relative floor, the float64 rounding
    error of its scatter matrix (``10 D eps trace`` on its diagonal): the model is fitted,
    where scikit-learn raises its "ill-defined empirical covariance" error. A component
    whose rows are all identical (zero covariance) still raises that error.

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

    _parameter_constraints: dict = constraints(MIXTURE_PARAMETERS)
    _validated_params, _identity_params = _VALIDATED_PARAMS, _IDENTITY_PARAMS  # (the cache key)

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
        warmup_size: int | str = "auto",
        warmup_restarts: int = 3,
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
        self.warmup_size = warmup_size
        self.warmup_restarts = warmup_restarts
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
        """Check every hyper-parameter against the table (scikit-learn's messages), unless
        their values are those last found valid (:func:`input.validate_hyperparameters`)."""
        validate_hyperparameters(self, self._check_hyperparameters)

    def _check_hyperparameters(self) -> None:
        validate(self.get_params(deep=False), type(self).__name__)

    def _validate_initial_parameters(self, n_features: int) -> None:
        check_initial_parameters(self.n_components, self.covariance_type, n_features,
                                 self.weights_init, self.means_init, self.precisions_init)

    def _check_X(self, X, reset: bool):
        if not reset and is_plain_valid_batch(X, self):
            return X
        xp = _array_api.input_namespace(X)
        return validate_data(
            self, X, reset=reset, dtype=[xp.float64, xp.float32], ensure_min_samples=1
        )

    def _check_sample_weight(self, sample_weight, X, xp):
        return check_sample_weight(sample_weight, X, xp)

    # ------------------------------------------------------------------ state plumbing
    def __getstate__(self):
        state = dict(super().__getstate__())  # a copy: object's is __dict__ itself
        state["_online_gmm_version"] = __version__
        return state

    def __setstate__(self, state):
        saved = state.pop("_online_gmm_version", "0.1.0")  # 0.1.0 files did not record it
        state.setdefault("init_size", None)  # parameters added after 0.1.0
        state.setdefault("warmup_size", 0)  # (a model saved before the warm-up had none)
        state.setdefault("warmup_restarts", 3)
        if "_state" in state:  # a fitted model of before the warm-up: none pending
            state.setdefault("_warmup", None)
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

    def _reset(self, X, xp, w=None) -> None:  # (w: the first batch's sample weights, if any)
        self._validate_initial_parameters(X.shape[1])  # (whichever are given)
        self._published_dtype = _array_api.float_name(X.dtype, xp)  # (the state is float64)
        self._state = empty_state(
            self.n_components, X.shape[1], self.covariance_type, xp, device(X)
        )
        self._user_init_pending = self.means_init is not None
        self._warmup = None if self._user_init_pending else _warmup.for_stream(
            self.warmup_size, self.warmup_restarts, self.n_components, X.shape[1],
            xp.finfo(X.dtype).bits // 8,
        )
        self._reset_bookkeeping()

    def _reset_bookkeeping(self) -> None:
        self._rng = check_random_state(self.random_state)
        self.n_steps_ = 0
        self.n_samples_seen_ = 0
        self.n_reseeded_ = 0
        self.n_iter_ = 0
        self.converged_ = False
        self.lower_bound_ = -np.inf
        self.temperature_ = self._schedules().temperature_at(0)
        self._publish()

    def _schedules(self) -> Schedules:
        return Schedules(
            anneal_schedule=self.anneal_schedule,
            temperature_init=self.temperature_init,
            temperature_final=self.temperature_final,
            anneal_steps=self.anneal_steps,
            forgetting_rate=self.forgetting_rate,
        )

    def _initial(self) -> InitialParameters | None:
        """The user's initial parameters while the first step has not applied them."""
        if not self._user_init_pending:
            return None
        return InitialParameters(self.means_init, self.weights_init, self.precisions_init)

    def _publish(self, precisions=None) -> None:
        """Expose the state as scikit-learn's fitted attributes (views, no copies)."""
        self.__dict__.update(self._published(self._state, precisions))

    def _published(self, s: MixtureState, precisions=None) -> dict:
        return _array_api.astype_all({  # in the data's dtype, as scikit-learn's
            "weights_": s.weights,
            "means_": s.means,
            "covariances_": s.covariances,
            "precisions_cholesky_": s.precisions_cholesky,
            "precisions_": self._precisions(s) if precisions is None else precisions,
        }, getattr(self, "_published_dtype", None))

    def _precisions(self, s: MixtureState):
        xp = array_api_compat.array_namespace(s.means)
        return covariance(self.covariance_type).precisions_from_cholesky(s.precisions_cholesky, xp)

    def _step(self, X, w, backend, hooks: Hooks = NO_HOOKS):
        """One online-EM step (a Dask batch's passes its hooks); the model is untouched if
        anything raises."""
        initial = self._initial()
        if initial is not None:
            self._validate_initial_parameters(X.shape[1])
        new, info = advance(
            self._state, X, w, config=self._config(), schedules=self._schedules(),
            step=self.n_steps_, rng=self._rng, backend=backend, hooks=hooks, initial=initial,
            warmup=self._warmup,
        )
        try:
            changes = self._step_changes(new, info, self._precisions(new))
        except BaseException:
            if info.rng_before is not None:
                self._rng.set_state(info.rng_before)
            raise
        self.__dict__.update(changes)  # the commit: whole or not at all
        return info

    def _step_changes(self, new_state: MixtureState, info, precisions) -> dict:
        """The attributes a finished step sets. They
        are gathered while the step can still be undone and land in one ``dict.update``: a
        step is committed whole or not at all, even if an exception (a signal) arrives."""
        return {
            "_state": new_state,
            "_user_init_pending": False,
            "_warmup": info.warmup,
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
            The updated estimator.

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn.datasets import make_blobs
        >>> from online_gmm import OnlineGaussianMixture
        >>> X, _ = make_blobs(n_samples=300, n_features=2, centers=3, random_state=0)
        >>> gmm = OnlineGaussianMixture(n_components=3, random_state=0)
        >>> for batch in np.array_split(X, 6):  # a stream of 6 batches of 50 rows
        ...     gmm = gmm.partial_fit(batch)
        >>> gmm.n_steps_, gmm.n_samples_seen_, gmm.means_.shape
        (6, 300, (3, 2))
        """
        with update_lock(self):  # concurrent updates of one model serialise
            return self._partial_fit(X, sample_weight)

    def _partial_fit(self, X, sample_weight):
        self._validate_hyperparameters()
        check_fitted_parameters(self)  # n_components, covariance_type as fitted
        first = not self.__sklearn_is_fitted__()
        dask = _dask.is_dask_array(X)
        before = dict(self.__dict__) if first or dask else None
        try:
            if dask:
                info = self._dask_steps(X, sample_weight, first)
            else:
                X = self._check_X(X, reset=first)
                backend = select_backend(X)
                w = self._check_sample_weight(sample_weight, X, backend.xp)
                self._start_call(X, backend.xp, first, w)
                info = self._step(X, w, backend)
        except BaseException:
            if before is not None:  # a failed first call leaves the model unfitted, as it
                self.__dict__.clear()  # was (and a Dask batch's steps are one call)
                self.__dict__.update(before)
            raise
        self.n_iter_ = self.n_steps_
        self.converged_ = False  # (fit's convergence, if any, is of another model now)
        if info.weight > 0:
            self.lower_bound_ = info.loglik / info.weight
        return self

    def _dask_steps(self, X, sample_weight, first: bool):
        """A Dask batch: one online step, its statistics computed on the workers. While the
        warm-up buffers rows, the rows it has room for are fetched and stepped on here
        first (the buffer holds every row stepped on, so each row counts once)."""
        batch = _dask.batch(X, sample_weight, self._check_sample_weight)
        meta = validate_data(self, batch.meta, reset=first, ensure_min_samples=0, dtype=None)
        backend = select_backend(meta)
        self._start_call(meta, backend.xp, first)
        info = None
        while self._warmup is not None and batch is not None:
            room = max(1, self._warmup.capacity - self._warmup.n_rows)
            X_head, w_head, batch = batch.split(room)
            info = self._step(X_head, w_head, backend)
        if batch is not None:
            info = self._step(batch.X, batch.w, backend, batch.hooks(backend))
        return info

    def _start_call(self, X_like, xp, first: bool, w=None) -> None:
        """A first ``partial_fit`` checks the user's initial parameters and resets the
        model; a later one checks that the data's namespace is the state's (shared with
        :mod:`online_gmm._em.dask`, whose ``X_like`` is an empty host array)."""
        if first:
            self._reset(X_like, xp, w)  # (it checks the initial parameters)
        else:
            self._check_namespace(xp)

    def _check_namespace(self, xp, method: str = "partial_fit") -> None:
        state_xp = array_api_compat.array_namespace(self._state.means)
        if state_xp is not xp:
            raise ValueError(
                f"Inputs passed to {type(self).__name__}.{method}() must use the same "
                f"namespace as the fitted model: its state lives in {state_xp.__name__!r}, "
                f"the data is a {xp.__name__!r} array."
            )

    # ------------------------------------------------------------------ interop
    def to_sklearn(self, *, _allow_unseeded: bool = False):
        """An equivalent fitted :class:`sklearn.mixture.GaussianMixture` (NumPy, float64).

        Returns
        -------
        gmm : sklearn.mixture.GaussianMixture
            Its weights, means and covariances are this model's: the same
            :meth:`predict_proba` and :meth:`score_samples`.

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn.datasets import make_blobs
        >>> from online_gmm import OnlineGaussianMixture
        >>> X, _ = make_blobs(n_samples=300, n_features=2, centers=3, random_state=0)
        >>> gmm = OnlineGaussianMixture(n_components=3, random_state=0).fit(X)
        >>> sk = gmm.to_sklearn()
        >>> type(sk).__name__, bool(np.allclose(sk.score_samples(X), gmm.score_samples(X)))
        ('GaussianMixture', True)
        """
        return _interop.to_sklearn(self, allow_unseeded=_allow_unseeded)

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

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn.mixture import GaussianMixture
        >>> from sklearn.datasets import make_blobs
        >>> from online_gmm import OnlineGaussianMixture
        >>> X, _ = make_blobs(n_samples=300, n_features=2, centers=3, random_state=0)
        >>> sk = GaussianMixture(3, covariance_type="diag", random_state=0).fit(X[:200])
        >>> gmm = OnlineGaussianMixture.from_sklearn(sk, n_samples_seen=200)
        >>> bool(np.allclose(gmm.means_, sk.means_))
        True
        >>> gmm = gmm.partial_fit(X[200:])  # the stream goes on from the batch fit
        >>> gmm.n_steps_, gmm.n_samples_seen_  # (the rows given to partial_fit)
        (1, 100)
        """
        return _interop.from_sklearn(cls, gmm, n_samples_seen=n_samples_seen, **params)
