"""online-gmm: Gaussian mixtures fitted online to streams of embeddings.

The public API: :class:`OnlineGaussianMixture` (a scikit-learn estimator with
``partial_fit``), :class:`OnlineBayesianGaussianMixture` (its variational Bayesian
counterpart, as scikit-learn's ``BayesianGaussianMixture``), :class:`PowerDecay` (a
decreasing forgetting-rate schedule),
:func:`save` / :func:`load` (versioned model files), :func:`partial_fit_pipeline` (a
stream through a fitted scikit-learn pipeline into ``partial_fit``) and the
:mod:`online_gmm.diagnostics` module (prototype-collapse diagnostics).

The names are imported on first use (PEP 562), so that ``import online_gmm`` and
``online-gmm --help`` do not pay for scikit-learn, numba and numpy until they are needed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:  # what the lazy names below are, for type checkers and the docs
    from . import diagnostics
    from ._bayesian import OnlineBayesianGaussianMixture
    from ._estimator import OnlineGaussianMixture
    from ._persistence import load, save
    from ._schedules import PowerDecay
    from .pipeline import partial_fit_pipeline

__all__ = [
    "OnlineBayesianGaussianMixture",
    "OnlineGaussianMixture",
    "PowerDecay",
    "diagnostics",
    "load",
    "partial_fit_pipeline",
    "save",
    "__version__",
]

#: name -> (module, attribute; None for the module itself), imported on first access.
_LAZY: dict[str, tuple[str, str | None]] = {
    "OnlineGaussianMixture": ("._estimator", "OnlineGaussianMixture"),
    "OnlineBayesianGaussianMixture": ("._bayesian", "OnlineBayesianGaussianMixture"),
    "PowerDecay": ("._schedules", "PowerDecay"),
    "save": ("._persistence", "save"),
    "load": ("._persistence", "load"),
    "partial_fit_pipeline": (".pipeline", "partial_fit_pipeline"),
    "diagnostics": (".diagnostics", None),
    "core": (".core", None),
}


def __getattr__(name: str) -> Any:
    try:
        module_name, attribute = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    module = importlib.import_module(module_name, __name__)
    value = module if attribute is None else getattr(module, attribute)
    globals()[name] = value  # later look-ups do not come here
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
