"""The fitted mixture's inference methods, shared by both estimators: ``score_samples``,
``score``, ``predict_proba``, ``transform``, ``predict``, ``sample``, ``bic``, ``aic``
(scikit-learn's, on the state's E-step layout)."""

from __future__ import annotations

import numpy as np
from sklearn.utils.validation import check_is_fitted

from .._backends import select_backend
from .._em.expectation import step_prepared
from .._math import array_api as _array_api
from .._math.array_api import to_numpy
from .._math.covariance import covariance
from .._math.estep import posterior, weighted_log_density
from . import interop as _interop


class MixtureInference:
    """Mixin: what a fitted :class:`~online_gmm.OnlineGaussianMixture` (or its variational
    subclass) computes from its state. Relies on the estimator's ``_state``,
    ``_config()``, ``_check_X``, ``_check_namespace`` and fitted attributes."""

    def _prepared(self, X, method: str):
        check_is_fitted(self)
        self._require_seeded()
        X = self._check_X(X, reset=False)
        backend = select_backend(X)
        self._check_namespace(backend.xp, method)
        X = self._scoring_input(X, backend.xp, method)
        return X, step_prepared(self._state, self._config(), X.dtype, backend), backend

    def _scoring_input(self, X, xp, method: str):
        """The data an inference method computes on (scored in its own dtype here)."""
        return X

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
            The samples (float32 input gives float32 output).

        Returns
        -------
        log_prob : array of shape (n_samples,)
            ``log p(x)`` of each sample under the mixture.

        Examples
        --------
        >>> from sklearn.datasets import make_blobs
        >>> from online_gmm import OnlineGaussianMixture
        >>> X, _ = make_blobs(n_samples=300, n_features=2, centers=3, random_state=0)
        >>> gmm = OnlineGaussianMixture(n_components=3, random_state=0).fit(X)
        >>> gmm.score_samples(X[:4]).shape, gmm.score_samples(X.astype("float32")).dtype
        ((4,), dtype('float32'))
        """
        X, p, backend = self._prepared(X, "score_samples")
        return posterior(X, p, backend)[1]

    def score(self, X, y=None) -> float:
        """Mean per-sample log-likelihood of ``X`` (the mean of :meth:`score_samples`).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The samples.
        y : Ignored
            Not used, present for API consistency.

        Returns
        -------
        log_likelihood : float
            Higher is better; compare models on held-out data.

        Examples
        --------
        >>> from sklearn.datasets import make_blobs
        >>> from online_gmm import OnlineGaussianMixture
        >>> X, _ = make_blobs(n_samples=300, n_features=2, centers=3, random_state=0)
        >>> gmm = OnlineGaussianMixture(n_components=3, random_state=0).fit(X[:200])
        >>> bool(gmm.score(X[200:]) > OnlineGaussianMixture(1).fit(X[:200]).score(X[200:]))
        True
        """
        return float(to_numpy(self.score_samples(X)).astype(np.float64).mean())

    def predict_proba(self, X):
        """Posterior probability of each component for each sample (T = 1).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The samples.

        Returns
        -------
        resp : array of shape (n_samples, n_components)
            Each row sums to 1.

        Examples
        --------
        >>> from sklearn.datasets import make_blobs
        >>> from online_gmm import OnlineGaussianMixture
        >>> X, _ = make_blobs(n_samples=300, n_features=2, centers=3, random_state=0)
        >>> gmm = OnlineGaussianMixture(n_components=3, random_state=0).fit(X)
        >>> resp = gmm.predict_proba(X[:5])
        >>> resp.shape, bool(abs(resp.sum(axis=1) - 1).max() < 1e-12)
        ((5, 3), True)
        """
        X, p, backend = self._prepared(X, "predict_proba")
        return posterior(X, p, backend)[0]

    def transform(self, X):
        """The posterior (:meth:`predict_proba`), so the mixture can feed a pipeline step.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The samples.

        Returns
        -------
        resp : array of shape (n_samples, n_components)
            The posterior probability of each component, as :meth:`predict_proba`.

        Examples
        --------
        >>> from sklearn.linear_model import LogisticRegression
        >>> from sklearn.pipeline import make_pipeline
        >>> from sklearn.datasets import make_blobs
        >>> from online_gmm import OnlineGaussianMixture
        >>> X, y = make_blobs(n_samples=300, n_features=2, centers=3, random_state=0)
        >>> pipe = make_pipeline(OnlineGaussianMixture(3, random_state=0), LogisticRegression())
        >>> bool(pipe.fit(X, y).score(X, y) > 0.9)
        True
        """
        X, p, backend = self._prepared(X, "transform")
        return posterior(X, p, backend)[0]

    def predict(self, X):
        """Most probable component of each sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The samples.

        Returns
        -------
        labels : array of shape (n_samples,)
            The component index (0 to ``n_components - 1``) of highest posterior.

        Examples
        --------
        >>> from sklearn.datasets import make_blobs
        >>> from online_gmm import OnlineGaussianMixture
        >>> X, _ = make_blobs(n_samples=300, n_features=2, centers=3, random_state=0)
        >>> gmm = OnlineGaussianMixture(n_components=3, random_state=0).fit(X)
        >>> labels = gmm.predict(X)
        >>> labels.shape, sorted(set(labels.tolist()))
        ((300,), [0, 1, 2])
        """
        X, p, backend = self._prepared(X, "predict")
        return backend.xp.argmax(weighted_log_density(X, p, backend), axis=1)

    def sample(self, n_samples: int = 1):
        """Draw samples from the fitted mixture (as scikit-learn's ``GaussianMixture``).

        Parameters
        ----------
        n_samples : int, default=1
            Rows to draw; seeded by ``random_state``.

        Returns
        -------
        X : array of shape (n_samples, n_features)
            float64, in the model's namespace and on its device.
        y : array of shape (n_samples,)
            int64 component labels, likewise.

        Examples
        --------
        >>> from sklearn.datasets import make_blobs
        >>> from online_gmm import OnlineGaussianMixture
        >>> X, _ = make_blobs(n_samples=300, n_features=2, centers=3, random_state=0)
        >>> gmm = OnlineGaussianMixture(n_components=3, random_state=0).fit(X)
        >>> X_new, y_new = gmm.sample(10)
        >>> X_new.shape, y_new.shape
        ((10, 2), (10,))
        """
        return _interop.sample(self, n_samples)

    def _n_parameters(self) -> int:
        K, D = self.n_components, self.means_.shape[1]
        return int(covariance(self.covariance_type).n_parameters(K, D) + D * K + K - 1)

    def bic(self, X) -> float:
        """Bayesian information criterion on ``X`` (lower is better).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The samples.

        Returns
        -------
        bic : float
            ``-2 log L + p log n``, for ``p`` free parameters and ``n`` samples.

        Examples
        --------
        >>> from sklearn.datasets import make_blobs
        >>> from online_gmm import OnlineGaussianMixture
        >>> X, _ = make_blobs(n_samples=300, n_features=2, centers=3, random_state=0)
        >>> bics = {k: OnlineGaussianMixture(k, random_state=0).fit(X).bic(X) for k in (1, 3, 6)}
        >>> min(bics, key=bics.get)  # three clusters there
        3
        """
        n = X.shape[0]
        return -2 * self.score(X) * n + self._n_parameters() * np.log(n)

    def aic(self, X) -> float:
        """Akaike information criterion on ``X`` (lower is better).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The samples.

        Returns
        -------
        aic : float
            ``-2 log L + 2 p``, for ``p`` free parameters.

        Examples
        --------
        >>> from sklearn.datasets import make_blobs
        >>> from online_gmm import OnlineGaussianMixture
        >>> X, _ = make_blobs(n_samples=300, n_features=2, centers=3, random_state=0)
        >>> gmm = OnlineGaussianMixture(n_components=3, random_state=0).fit(X)
        >>> bool(gmm.aic(X) < OnlineGaussianMixture(1).fit(X).aic(X))
        True
        """
        return -2 * self.score(X) * X.shape[0] + 2 * self._n_parameters()

