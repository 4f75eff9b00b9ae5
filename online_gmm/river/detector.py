"""``GaussianMixtureDetector``: an online Gaussian mixture as a river anomaly detector."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from ._stream import MixtureStream

try:
    from river.base import AnomalyDetector
except ImportError:  # pragma: no cover - river before 0.22 kept it in river.anomaly.base
    from river.anomaly.base import AnomalyDetector

if TYPE_CHECKING:
    import pandas as pd


class GaussianMixtureDetector(MixtureStream, AnomalyDetector):
    """Anomaly scores from an online Gaussian mixture, one dict at a time (a river anomaly
    detector).

    ``learn_one`` gathers rows; every ``batch_size`` rows, one online-EM step
    (:meth:`online_gmm.OnlineGaussianMixture.partial_fit`) folds them into the mixture.
    ``score_one`` is **minus the log-density** of the row under the mixture,
    ``-log p(x)`` (:meth:`online_gmm.OnlineGaussianMixture.score_samples`): higher is more
    anomalous. It is not calibrated: it is unbounded, in nats, and moves with the scale of
    the features (a density, not a probability); threshold it by a quantile of recent scores
    (``river.anomaly.QuantileFilter``) rather than by a fixed value. Before the first step
    (fewer than ``batch_size`` rows learned) every row scores 0.0, as river's
    ``HalfSpaceTrees`` scores 0 during its first window.

    The first row's keys fix the features (kept sorted: the order of a dict's keys never
    matters, as river's checks require); a later row that misses one or brings a new one
    raises a ``ValueError`` naming them (a mixture is a density over one fixed vector:
    river's own wrapper of scikit-learn estimators, ``river.compat``, does the same).
    Features need no scaling to [0, 1] (unlike ``HalfSpaceTrees``'s default
    limits): each component has its own covariance.

    Parameters
    ----------
    n_components : int, default=1
        Number of mixture components (1: a single Gaussian).
    covariance_type : {"diag", "full", "tied", "spherical"}, default="diag"
        Covariance parametrisation, as in scikit-learn.
    batch_size : int, default=256
        Rows gathered before one online-EM step (``partial_fit``). A step has a fixed cost
        (a few hundred microseconds), so larger batches learn faster per row; but a row
        reaches the model only when its batch is full: results lag by up to
        ``batch_size - 1`` rows, and the first ``batch_size - 1`` rows are all scored 0.0.
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
        The mixture fitted so far, None before the first step.
    features : tuple or None
        The feature names, in the model's order.
    n_pending : int
        Rows learned and not yet folded into the mixture.

    Notes
    -----
    The parameters are :class:`~online_gmm.OnlineGaussianMixture`'s with its defaults, but
    for ``batch_size`` (256 here, 1024 there: rows per step in both); see
    :class:`GaussianMixture`.

    Examples
    --------
    >>> import numpy as np
    >>> from online_gmm.river import GaussianMixtureDetector
    >>> rng = np.random.default_rng(0)
    >>> detector = GaussianMixtureDetector(n_components=2, random_state=0)
    >>> detector.score_one({"a": 0.0, "b": 0.0})  # nothing learned yet
    0.0
    >>> for i in range(2000):
    ...     a, b = rng.normal(-3.0 if i % 2 else 3.0, 1.0, 2)
    ...     detector.learn_one({"a": a, "b": b})
    >>> inlier = detector.score_one({"a": 3.0, "b": 3.0})
    >>> outlier = detector.score_one({"a": 0.0, "b": 12.0})
    >>> round(inlier, 1), outlier > inlier + 20
    (2.5, True)
    """

    def score_one(self, x: Mapping[Hashable, Any]) -> float:
        """Minus the log-density of ``x`` under the mixture (higher: more anomalous); 0.0
        before the first step.

        Parameters
        ----------
        x : dict
            A row with the model's features.

        Returns
        -------
        float
        """
        X = self._inference_row(x)
        if X is None:
            return 0.0
        return -float(self.mixture.score_samples(X)[0])

    def score_many(self, X: pd.DataFrame) -> pd.Series:
        """``score_one`` of each row of a data frame, at once.

        Parameters
        ----------
        X : pandas.DataFrame
            One column per feature.

        Returns
        -------
        pandas.Series
            float64 scores, indexed as ``X``.
        """
        import pandas as pd

        A = self._inference_frame(X)
        scores = (np.zeros(len(X)) if A is None or len(A) == 0
                  else -np.asarray(self.mixture.score_samples(A), dtype=np.float64))
        return pd.Series(scores, index=X.index, dtype=np.float64)
