"""``OnlineBayesianGaussianMixture``: the variational mixture as a scikit-learn estimator.

Thin, as :class:`~online_gmm.OnlineGaussianMixture` whose step, seeding, warm-up, forgetting
and bookkeeping it shares: it adds the prior (:func:`online_gmm._math.variational.resolve_prior`,
resolved on the first call) to the step's :class:`~online_gmm._em.online.EMConfig`, and
publishes the variational posterior of the state (:func:`online_gmm._math.variational.posterior`)
as scikit-learn's ``BayesianGaussianMixture`` attributes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import array_api_compat

from .._backends import select_backend
from .._em import dask as _dask
from .._em.online import EMConfig
from .._math import array_api as _array_api
from .._math.covariance import covariance
from .._math.parameters import VARIATIONAL_MIXTURE_PARAMETERS, cache_keys, constraints
from .._math.state import MixtureState
from .._math.variational import Posterior, changed_prior, posterior, resolve_prior
from . import interop as _interop
from .gaussian import OnlineGaussianMixture


class OnlineBayesianGaussianMixture(OnlineGaussianMixture):
    """Variational Bayesian Gaussian mixture fitted online (streaming variational inference).

    The streaming counterpart of :class:`sklearn.mixture.BayesianGaussianMixture` (its
    parameters, fitted attributes and methods; the defaults of ``covariance_type`` and
    ``init_params`` are :class:`~online_gmm.OnlineGaussianMixture`'s) with the online
    parameters of :class:`~online_gmm.OnlineGaussianMixture`: :meth:`partial_fit` on
    mini-batches, ``sample_weight``, forgetting, the warm-up and the annealing schedules.
    With ``n_components`` an upper bound, the prior switches off the components the data do
    not need: their weights fall towards zero.

    Each step computes the batch's responsibilities under the variational posterior (the
    plain mixture's E-step, with the posterior's expected log-weights and Wishart terms),
    folds the batch's statistics into the state with the forgetting rule, and takes the
    posterior as the prior plus the state's statistics. With ``forgetting_rate=0`` the
    statistics are exact sums (streaming variational Bayes); with ``forgetting_rate > 0``
    each component's natural parameters move towards the batch's estimate by a step
    ``1 - (1 - eta) ** m_k`` (stochastic variational inference, the step set by the
    responsibility it absorbs). See ``docs/algorithm.md``, "Variational mixture".

    Parameters
    ----------
    n_components : int, default=1
        The most components the mixture may use.
    covariance_type : {"diag", "full", "tied", "spherical"}, default="diag"
        Covariance parametrisation, as in scikit-learn (``diag`` by default, as
        :class:`~online_gmm.OnlineGaussianMixture`).
    tol : float, default=1e-3
        :meth:`fit` (batch variational EM, as scikit-learn's) stops when the change of the
        evidence lower bound from one iteration to the next is below it.
    reg_covar : float, default=1e-6
        Added to the diagonal of every covariance (as scikit-learn's: ``n_k * reg_covar`` in
        the Wishart posterior's scale).
    max_iter : int, default=100
        Maximum number of variational iterations of :meth:`fit`, and of each
        warm-up restart (a batch fit of the buffer, as scikit-learn's ``max_iter``; pruning
        a start with many more components than clusters can take several hundred); a birth
        proposal runs at most five times as many, stopped by its lower bound.
    n_init : int, default=1
        Initialisations of :meth:`fit`; the one of highest lower bound is kept.
    batch_size : int, default=1024
        Rows per online step where the model splits a source into steps itself.
    init_params : {"k-means++", "kmeans", "random", "random_from_data"}, default="k-means++"
        How components are seeded (see :class:`~online_gmm.OnlineGaussianMixture`).
    init_size : int or None, default=None
        Rows of ``X`` :meth:`fit` initialises from (see
        :class:`~online_gmm.OnlineGaussianMixture`).
    warmup_size : int or "auto", default="auto"
        Rows buffered at the start of a stream for the warm-up's restarts, which run
        variational iterations here (see :class:`~online_gmm.OnlineGaussianMixture`;
        each restart runs them on the whole buffer, and the refinements run all theirs).
        With "auto", each doubling of the rows held (to 32,768) also makes merge and birth
        moves on them, each kept only if it raises the evidence lower bound (see Notes).
    warmup_restarts : int, default=3
        Restarts of the warm-up; the one of highest buffer score is kept.
    weight_concentration_prior_type : {"dirichlet_process", "dirichlet_distribution"}, \
default="dirichlet_process"
        The weights' prior: a stick-breaking (Dirichlet process) or a Dirichlet
        distribution.
    weight_concentration_prior : float or None, default=None
        The Dirichlet (process) concentration; None: ``1 / n_components``.
    mean_precision_prior : float or None, default=None
        ``beta_0``, the precision of the means' prior; None: 1.
    mean_prior : array-like of shape (n_features,), default=None
        ``m_0``; None: the mean of the first batch (:meth:`partial_fit`) or of ``X``
        (:meth:`fit`).
    degrees_of_freedom_prior : float or None, default=None
        ``nu_0`` of the Wishart prior, above ``n_features - 1``; None: ``n_features``.
    covariance_prior : float or array-like, default=None
        The Wishart prior's covariance ``W_0^-1``: (n_features, n_features) for ``full`` and
        ``tied``, (n_features,) for ``diag``, a float for ``spherical``. None: the
        covariance (``ddof=1``) of the first batch or of ``X``, in that layout.
    forgetting : {"responsibility", "uniform"}, default="responsibility"
        How old evidence is discounted (see :class:`~online_gmm.OnlineGaussianMixture`).
    forgetting_rate : float or callable, default=0.0
        eta in [0, 1), or ``step -> eta``. 0: the posterior of all the data seen.
    temperature_init : float, default=1.0
        E-step temperature at the first batch.
    temperature_final : float, default=1.0
        E-step temperature after ``anneal_steps`` batches.
    anneal_steps : int, default=0
        Batches over which the temperature moves from init to final.
    anneal_schedule : str or callable, default="exponential"
        Path of the temperature (see :class:`~online_gmm.OnlineGaussianMixture`).
    seed_mass : float, default=1.0
        Evidence (pseudo-count) a freshly seeded component starts with.
    dead_threshold : float, default=1e-3
        A component whose weight mass falls below ``dead_threshold / n_components`` of the
        total is reseeded at a row far from the live means (D^2 sampling), with
        ``seed_mass`` of weight mass (a birth between the warm-up's moves and after
        them: new clusters of a growing stream are found this way). 0: never (components
        the prior switches off stay off, as in scikit-learn; on a long stationary stream
        this saves the reseeding of switched-off components at every step).
    max_reseed : int or None, default=None
        At most this many dead components are reseeded per batch.
    random_state : int, RandomState instance or None, default=None
        Seeds the seeding, the shuffling of :meth:`fit` and :meth:`sample`.
    warm_start : bool, default=False
        If True, :meth:`fit` continues from the current model (and its prior).
    verbose : int, default=0
        Print progress of :meth:`fit`.
    verbose_interval : int, default=10
        Epochs between progress lines.

    Attributes
    ----------
    weights_ : ndarray of shape (n_components,)
        The weights' posterior means.
    means_ : ndarray of shape (n_components, n_features)
        The means' posterior means ``m_k``.
    covariances_ : ndarray
        ``W_k^-1 / nu_k``, in ``covariance_type``'s shape (as scikit-learn's).
    precisions_ : ndarray
    precisions_cholesky_ : ndarray
    weight_concentration_prior_ : float
    weight_concentration_ : ndarray of shape (n_components,) or tuple of two
        The Dirichlet parameters, or the stick-breaking Betas' ``(a, b)``.
    mean_precision_prior_ : float
    mean_precision_ : ndarray of shape (n_components,)
    mean_prior_ : ndarray of shape (n_features,)
    degrees_of_freedom_prior_ : float
    degrees_of_freedom_ : ndarray of shape (n_components,)
        (A 0-d array for ``tied``.)
    covariance_prior_ : float or ndarray
    converged_ : bool
    n_iter_ : int
    lower_bound_ : float
        After :meth:`fit`: scikit-learn's evidence lower bound (of all the rows) at the last
        iteration of the best initialisation. After :meth:`partial_fit`: the mean per-sample
        score (the log-sum-exp of the variational E-step, as :meth:`score_samples`) of the
        last batch, scored before it updates the model.
    lower_bounds_ : list of float
        The evidence lower bound at each iteration of the best initialisation of
        :meth:`fit`.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
    n_steps_ : int
    n_samples_seen_ : int
    temperature_ : float
    n_reseeded_ : int

    See Also
    --------
    sklearn.mixture.BayesianGaussianMixture : Batch variational inference.
    OnlineGaussianMixture : The maximum-likelihood mixture.

    Notes
    -----
    :meth:`score_samples` and :meth:`predict_proba` are scikit-learn's: the log-sum-exp and
    the softmax of the variational E-step's expected log-densities (with ``E[log pi_k]``),
    not a posterior-predictive density. The prior is resolved on the first
    :meth:`partial_fit` (or each :meth:`fit`) and kept for the stream. As scikit-learn's, the
    posterior's attributes, :meth:`score_samples` and :meth:`predict_proba` are float64
    whatever the data's dtype (:meth:`transform` keeps the data's dtype).

    With ``reg_covar=0``, a covariance that is singular but not zero (rows on a line, a
    constant feature, with ``full`` or ``tied``) gets a relative floor, the float64 rounding
    error of its scatter matrix (``10 D eps trace`` on its diagonal): the model is fitted,
    where scikit-learn raises its "ill-defined empirical covariance" error. A zero
    covariance (all rows identical) still raises an error.

    A one-pass stream with exact statistics cannot split a component that its first rows
    merged, nor merge two that a reseed split. So with ``warmup_size="auto"`` on a
    stationary stream (``forgetting_rate=0``), each time the warm-up's rows double the
    model is recomputed from them with memoized variational inference's moves (Hughes &
    Sudderth 2013): exact merges of overlapping pairs; under the Dirichlet process an exact
    reorder of the components by decreasing evidence (so labels may change at those marks);
    then a birth proposal (a restart from the live means and new seeds far from them, the
    live components in their own slots, iterated, then merged and reordered). Each is kept
    only if scikit-learn's evidence lower bound on those rows rises. :meth:`fit`'s default
    initialisation makes them on its warm-up sample (up to 32,768 rows), once per doubling
    a stream's buffer would make, then runs batch variational EM on every row.

    Examples
    --------
    >>> import numpy as np
    >>> from online_gmm import OnlineBayesianGaussianMixture
    >>> rng = np.random.default_rng(0)
    >>> X = np.concatenate([rng.normal(-5, 1, (500, 2)), rng.normal(5, 1, (500, 2))])
    >>> vgmm = OnlineBayesianGaussianMixture(n_components=6, random_state=0)
    >>> for batch in np.array_split(rng.permutation(X), 10):
    ...     vgmm = vgmm.partial_fit(batch)
    >>> int((vgmm.weights_ > 0.05).sum())
    2
    >>> vgmm.predict([[-5, -5], [5, 5]]).tolist() != [0, 0]
    True
    """

    _parameter_constraints: dict = constraints(VARIATIONAL_MIXTURE_PARAMETERS)
    _validated_params, _identity_params = cache_keys(VARIATIONAL_MIXTURE_PARAMETERS)
    # no initial parameters (as scikit-learn's BayesianGaussianMixture): the base reads them
    weights_init = means_init = precisions_init = None

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
        weight_concentration_prior_type: str = "dirichlet_process",
        weight_concentration_prior: float | None = None,
        mean_precision_prior: float | None = None,
        mean_prior: Any = None,
        degrees_of_freedom_prior: float | None = None,
        covariance_prior: Any = None,
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
        self.weight_concentration_prior_type = weight_concentration_prior_type
        self.weight_concentration_prior = weight_concentration_prior
        self.mean_precision_prior = mean_precision_prior
        self.mean_prior = mean_prior
        self.degrees_of_freedom_prior = degrees_of_freedom_prior
        self.covariance_prior = covariance_prior
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

    # ------------------------------------------------------------------ the step
    def _config(self) -> EMConfig:
        """The plain step's configuration with the prior; reseeds start from their own
        evidence; the warm-up's restarts run ``max_iter`` variational iterations (a batch
        fit of the buffer: pruning takes tens to hundreds of them)."""
        return dataclasses.replace(super()._config(), prior=self._prior, fair_share=False,
                                   warmup_iterations=int(self.max_iter))

    def _reset(self, X, xp, w=None) -> None:
        """The prior of the first data (the batch and its sample weights, or ``fit``'s
        ``X``), then a new stream."""
        self._prior = resolve_prior(
            X, w, covariance_type=self.covariance_type, n_components=self.n_components,
            reg_covar=float(self.reg_covar),
            weight_concentration_prior_type=self.weight_concentration_prior_type,
            weight_concentration_prior=self.weight_concentration_prior,
            mean_precision_prior=self.mean_precision_prior, mean_prior=self.mean_prior,
            degrees_of_freedom_prior=self.degrees_of_freedom_prior,
            covariance_prior=self.covariance_prior, xp=xp,
        )
        super()._reset(X, xp, w)

    def _partial_fit(self, X, sample_weight):
        _refuse_dask(X, "partial_fit")
        self._validate_hyperparameters()
        self._check_prior("partial_fit")
        return super()._partial_fit(X, sample_weight)

    def _fit(self, X):
        _refuse_dask(X, "fit")
        if self.warm_start:
            self._validate_hyperparameters()
            self._check_prior("fit")
        super()._fit(X)

    def _check_prior(self, method: str) -> None:
        """A fitted model's prior is the one of its first data: refuse a prior parameter
        changed since (``set_params``), which the model would silently ignore."""
        if not self.__sklearn_is_fitted__():
            return
        name = changed_prior(self._prior, int(self._state.weights.shape[0]),
                             int(self._state.means.shape[1]), self.get_params(deep=False))
        if name is not None:
            raise ValueError(
                f"{name}={getattr(self, name)!r:.80}, but this {type(self).__name__} was "
                f"fitted with another {name}: {method} cannot change the prior. Set {name} "
                "back, or call fit() (warm_start=False) to fit a new model."
            )

    # ------------------------------------------------------------------ the attributes
    def _posterior(self, s: MixtureState) -> Posterior:
        return posterior(s, self._prior, covariance_type=self.covariance_type,
                         reg_covar=float(self.reg_covar), backend=select_backend(s.means))

    def _precisions(self, s: MixtureState):
        xp = array_api_compat.array_namespace(s.means)
        return covariance(self.covariance_type).precisions_from_cholesky(
            self._posterior(s).precisions_cholesky, xp)

    def _published(self, s: MixtureState, precisions=None) -> dict:
        post, prior = self._posterior(s), self._prior
        return {
            "weights_": post.weights,
            "means_": post.means,
            "covariances_": post.covariances,
            "precisions_cholesky_": post.precisions_cholesky,
            "precisions_": self._precisions(s) if precisions is None else precisions,
            "weight_concentration_": post.weight_concentration,
            "mean_precision_": post.mean_precision,
            "degrees_of_freedom_": post.degrees_of_freedom,
            "weight_concentration_prior_": prior.weight_concentration,
            "mean_precision_prior_": prior.mean_precision,
            "degrees_of_freedom_prior_": prior.degrees_of_freedom,
            **self._data_priors(prior),
        }

    def _data_priors(self, prior) -> dict:
        """``mean_prior_`` and ``covariance_prior_`` in scikit-learn's dtypes: the posterior
        is float64 whatever the data (as scikit-learn's), but the priors it takes from the
        data keep the data's dtype (its ``X.mean`` and, for ``diag`` and ``spherical``,
        ``np.var``; ``full`` and ``tied`` take ``np.cov``, always float64)."""
        dtype = getattr(self, "_published_dtype", None)
        keep = {"mean_prior_": self.mean_prior is None,
                "covariance_prior_": self.covariance_prior is None
                and len(prior.covariance.shape) < 2}
        values = {"mean_prior_": prior.mean, "covariance_prior_": prior.covariance}
        return {k: _array_api.astype_all({k: v}, dtype if keep[k] else None)[k]
                for k, v in values.items()}

    def _scoring_input(self, X, xp, method: str):
        """scikit-learn's variational scores are float64 whatever the data (float64 terms
        of the posterior): the data in the state's dtype (``transform``, not a method of
        scikit-learn's, keeps the data's dtype, as a transformer)."""
        dtype = self._state.means.dtype
        return X if method == "transform" or X.dtype == dtype else xp.astype(X, dtype)

    # ------------------------------------------------------------------ interop
    def to_sklearn(self, *, _allow_unseeded: bool = False):
        """An equivalent fitted :class:`sklearn.mixture.BayesianGaussianMixture` (NumPy, float64).

        The same prior and posterior, so the same :meth:`predict_proba` and
        :meth:`score_samples`.

        Returns
        -------
        bgmm : sklearn.mixture.BayesianGaussianMixture
            Fitted.

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn.datasets import make_blobs
        >>> from online_gmm import OnlineBayesianGaussianMixture
        >>> X, _ = make_blobs(n_samples=300, n_features=2, centers=3, random_state=0)
        >>> vgmm = OnlineBayesianGaussianMixture(n_components=6, random_state=0).fit(X)
        >>> sk = vgmm.to_sklearn()
        >>> type(sk).__name__, bool(np.allclose(sk.predict_proba(X), vgmm.predict_proba(X)))
        ('BayesianGaussianMixture', True)
        """
        return _interop.to_sklearn_bayesian(self, allow_unseeded=_allow_unseeded)

    @classmethod
    def from_sklearn(cls, gmm, *, n_samples_seen: float | None = None, **params: Any):
        """Not available: a variational mixture starts from data.

        Parameters
        ----------
        gmm : sklearn.mixture.BayesianGaussianMixture
            Not used.
        n_samples_seen : float, default=None
            Not used.
        **params
            Not used.

        Raises
        ------
        NotImplementedError
            Always: fit the model with :meth:`fit` or :meth:`partial_fit` instead.

        Examples
        --------
        >>> from online_gmm import OnlineBayesianGaussianMixture
        >>> OnlineBayesianGaussianMixture.from_sklearn(None)
        Traceback (most recent call last):
        ...
        NotImplementedError: OnlineBayesianGaussianMixture.from_sklearn is not implemented: ...
        """
        raise NotImplementedError(
            f"{cls.__name__}.from_sklearn is not implemented: fit or partial_fit it on data."
        )


def _refuse_dask(X: Any, method: str) -> None:
    if _dask.is_dask_array(X):
        raise TypeError(
            f"OnlineBayesianGaussianMixture.{method} does not take Dask arrays (yet): "
            "pass NumPy arrays or any array-API array, or use OnlineGaussianMixture."
        )
