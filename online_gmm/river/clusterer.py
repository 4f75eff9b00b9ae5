"""``GaussianMixture``: an online Gaussian mixture as a river clusterer."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
from river import base

from ._stream import MixtureStream

if TYPE_CHECKING:
    import pandas as pd


class GaussianMixture(MixtureStream, base.Clusterer):
    """Online Gaussian mixture clustering, one dict at a time (a river clusterer).

    ``learn_one`` gathers rows; every ``batch_size`` rows, one online-EM step
    (:meth:`online_gmm.OnlineGaussianMixture.partial_fit`) folds them into the mixture.
    ``predict_one`` returns the most probable component
    (:meth:`online_gmm.OnlineGaussianMixture.predict`). The mixture itself is the
    :attr:`mixture` attribute, an :class:`~online_gmm.OnlineGaussianMixture`.

    The first row's keys fix the features (kept sorted: the order of a dict's keys never
    matters, as river's checks require); a later row that misses one or brings a new one
    raises a ``ValueError`` naming them (a mixture is a density over one fixed vector:
    river's own wrapper of scikit-learn estimators, ``river.compat``, does the same).
    Until the first step, ``predict_one`` returns 0 (one cluster); rows still
    gathered (fewer than ``batch_size``, :attr:`n_pending`) do not yet change predictions.

    Parameters
    ----------
    n_components : int, default=1
        Number of mixture components (clusters).
    covariance_type : {"diag", "full", "tied", "spherical"}, default="diag"
        Covariance parametrisation, as in scikit-learn.
    batch_size : int, default=256
        Rows gathered before one online-EM step (``partial_fit``). A step has a fixed cost
        (a few hundred microseconds), so larger batches learn faster per row; but a row
        reaches the model only when its batch is full: results lag by up to
        ``batch_size - 1`` rows, and the first ``batch_size - 1`` rows are all predicted 0.
        The model after a stationary stream does not depend on it. 256 is about river's
        ``HalfSpaceTrees`` window (250); ``docs/river.md`` has the trade-off, measured.
    reg_covar : float, default=1e-6
        Added to the diagonal of every covariance.
    init_params : {"k-means++", "kmeans", "random", "random_from_data"}, default="k-means++"
        How components are seeded (see :class:`~online_gmm.OnlineGaussianMixture`).
    warmup_size : int or "auto", default="auto"
        The first rows are buffered and fitted by restarts (k-means++, Lloyd, batch EM);
        "auto": 64 rows per component, refitted each time the rows held double, up to
        32,768 rows (while ``forgetting_rate`` is 0), so memory grows to
        ``32768 x n_features`` floats. 0: no warm-up.
    warmup_restarts : int, default=3
        Restarts of the warm-up.
    forgetting : {"responsibility", "uniform"}, default="responsibility"
        How old evidence is forgotten (see :class:`~online_gmm.OnlineGaussianMixture`).
    forgetting_rate : float or callable, default=0.0
        eta in [0, 1), or ``step -> eta``; 0 keeps every row's evidence (a stationary
        stream); about ``1 / rows to remember`` for a drifting one.
    temperature_init : float, default=1.0
        E-step temperature at the first step.
    temperature_final : float, default=1.0
        E-step temperature after ``anneal_steps`` steps.
    anneal_steps : int, default=0
        Steps over which the temperature moves from init to final.
    anneal_schedule : str or callable, default="exponential"
        ``"exponential"``, ``"constant"``, ``"linear"``, ``"cosine"`` or ``step -> T``.
    seed_mass : float, default=1.0
        Evidence a freshly seeded component starts with.
    dead_threshold : float, default=1e-3
        A component whose weight falls below ``dead_threshold / n_components`` is reseeded.
    max_reseed : int or None, default=None
        At most this many dead components reseeded per step (None: no limit).
    random_state : int, RandomState instance or None, default=None
        Seeds the seeding. None: a generator seeded from the operating system when the
        object is made, so a copy of a fresh object draws the same numbers (river's
        convention for ``seed=None``).

    Attributes
    ----------
    mixture : OnlineGaussianMixture or None
        The mixture fitted so far (``means_``, ``covariances_``, ``weights_`` ...), None
        before the first step.
    features : tuple or None
        The feature names, in the model's order.
    centers : dict
        ``{component: {feature: mean}}``, as river's ``cluster.KMeans.centers`` (empty before
        the first step).
    n_pending : int
        Rows learned and not yet folded into the mixture.

    Notes
    -----
    The parameters are :class:`~online_gmm.OnlineGaussianMixture`'s with its defaults, but
    for ``batch_size`` (256 here, 1024 there: rows per step in both). Not here: ``fit``'s own
    (``tol``, ``max_iter``, ``n_init``, ``init_size``, ``warm_start``, ``verbose``,
    ``verbose_interval``) and the initial arrays (``weights_init``, ``means_init``,
    ``precisions_init``), whose columns would have to follow the sorted feature names.

    Examples
    --------
    >>> import numpy as np
    >>> from online_gmm.river import GaussianMixture
    >>> rng = np.random.default_rng(0)
    >>> centres = np.array([[-5.0, 0.0], [5.0, 0.0], [0.0, 8.0]])
    >>> model = GaussianMixture(n_components=3, random_state=0)
    >>> for k in rng.integers(0, 3, 1000):
    ...     x, y = centres[k] + rng.standard_normal(2)
    ...     model.learn_one({"x": x, "y": y})
    >>> model.mixture.n_samples_seen_, model.n_pending
    (768, 232)
    >>> labels = [model.predict_one({"x": x, "y": y}) for x, y in centres]
    >>> sorted(labels)
    [0, 1, 2]
    >>> model.predict_one({"x": -5.2, "y": 0.3}) == labels[0]
    True
    >>> model.predict_one({"x": 1.0})
    Traceback (most recent call last):
        ...
    ValueError: GaussianMixture models the features ['x', 'y'] ... misses the features ['y']. ...
    """

    def predict_one(self, x: Mapping[Hashable, Any]) -> int:
        """The most probable component of ``x`` (0 before the first step).

        Parameters
        ----------
        x : dict
            A row with the model's features.

        Returns
        -------
        int
        """
        X = self._inference_row(x)
        if X is None:
            return 0
        return int(self.mixture.predict(X)[0])

    def learn_predict_one(self, x: Mapping[Hashable, Any]) -> int:
        """``learn_one(x)``, then ``predict_one(x)`` (river's ``cluster.KMeans`` has it)."""
        self.learn_one(x)
        return self.predict_one(x)

    def predict_many(self, X: pd.DataFrame) -> pd.Series:
        """``predict_one`` of each row of a data frame, at once.

        Parameters
        ----------
        X : pandas.DataFrame
            One column per feature.

        Returns
        -------
        pandas.Series
            int64 labels, indexed as ``X``.
        """
        import pandas as pd

        A = self._inference_frame(X)
        labels = (np.zeros(len(X), dtype=np.int64) if A is None or len(A) == 0
                  else np.asarray(self.mixture.predict(A), dtype=np.int64))
        return pd.Series(labels, index=X.index, dtype=np.int64)

    @property
    def centers(self) -> dict[int, dict[Hashable, float]]:
        """``{component: {feature: mean}}`` (empty before the first step)."""
        if self.mixture is None:
            return {}
        return {k: dict(zip(self._features, map(float, mean), strict=True))
                for k, mean in enumerate(self.mixture.means_)}
