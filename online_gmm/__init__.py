"""online-gmm: Gaussian mixtures fitted online to streams of embeddings.

The public API: :class:`OnlineGaussianMixture` (a scikit-learn estimator with
``partial_fit``), :class:`PowerDecay` (a decreasing forgetting-rate schedule),
:func:`save` / :func:`load` (versioned model files) and the :mod:`online_gmm.diagnostics`
module (prototype-collapse diagnostics).
"""

from . import diagnostics
from ._estimator import OnlineGaussianMixture
from ._persistence import load, save
from ._schedules import PowerDecay
from ._version import __version__

__all__ = ["OnlineGaussianMixture", "PowerDecay", "diagnostics", "load", "save", "__version__"]
