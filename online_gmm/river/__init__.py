"""Online Gaussian mixtures with river's API (https://riverml.xyz): one dict at a time.

- :class:`GaussianMixture`: a river clusterer (``river.base.Clusterer``): ``learn_one``,
  ``predict_one`` (the most probable component), and ``learn_many`` / ``predict_many`` on a
  ``pandas.DataFrame``.
- :class:`GaussianMixtureDetector`: a river anomaly detector
  (``river.base.AnomalyDetector``): ``learn_one``, ``score_one`` (minus the
  log-density: higher is more anomalous) and ``score_many``.

Both gather ``batch_size`` rows and fold them into an
:class:`~online_gmm.OnlineGaussianMixture` by one :meth:`~online_gmm.OnlineGaussianMixture.
partial_fit` step (the mixture's math is the estimator's; nothing is computed here but the
bookkeeping of rows). Their parameters are the estimator's, same names and defaults; see
``docs/river.md`` for the batch size's trade-off, measured.

river is an optional dependency, the ``river`` extra (``pip install "online-gmm[river]"``):
``import online_gmm`` does not import it; ``import online_gmm.river`` does, and says how to
install it when it is missing.
"""

from __future__ import annotations

try:
    import river as _river  # noqa: F401  (the extra: checked here, used by the modules)
    from river import base as _river_base  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised with river hidden (tests/river)
    raise ImportError(
        "online_gmm.river needs river (https://riverml.xyz), an optional dependency: "
        'pip install "online-gmm[river]"'
    ) from exc

from .clusterer import GaussianMixture
from .detector import GaussianMixtureDetector

__all__ = ["GaussianMixture", "GaussianMixtureDetector"]
