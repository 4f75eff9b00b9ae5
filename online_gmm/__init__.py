"""online-gmm: Gaussian mixtures fitted online to streams of embeddings.

The public API: :class:`OnlineGaussianMixture` (a scikit-learn estimator with
``partial_fit``), :class:`OnlineBayesianGaussianMixture` (its variational Bayesian
counterpart, as scikit-learn's ``BayesianGaussianMixture``), :class:`PowerDecay` (a
decreasing forgetting-rate schedule), :func:`save` / :func:`load` / :func:`read_header`
(versioned model files) and their errors :class:`ModelFileError`,
:class:`UntrustedFileError` and :class:`NotStorableError`, :func:`partial_fit_pipeline` (a
stream through a fitted scikit-learn pipeline into ``partial_fit``),
:func:`dask_partial_fit` (a step over a Dask array, with the choice of seeding rows) and
the :mod:`online_gmm.diagnostics` module (prototype-collapse diagnostics).

The names are imported on first use (PEP 562), so that ``import online_gmm`` and
``online-gmm --help`` do not pay for scikit-learn, numba and numpy until they are needed.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:  # what the lazy names below are, for type checkers and the docs
    from . import diagnostics
    from ._em.dask import partial_fit as dask_partial_fit
    from ._estimators.bayesian import OnlineBayesianGaussianMixture
    from ._estimators.gaussian import OnlineGaussianMixture
    from ._io.model_file import ModelFileError, NotStorableError, UntrustedFileError
    from ._io.persistence import load, read_header, save
    from ._math.schedules import PowerDecay
    from .pipeline import partial_fit_pipeline

__all__ = [
    "ModelFileError",
    "NotStorableError",
    "OnlineBayesianGaussianMixture",
    "OnlineGaussianMixture",
    "PowerDecay",
    "UntrustedFileError",
    "dask_partial_fit",
    "diagnostics",
    "load",
    "partial_fit_pipeline",
    "read_header",
    "save",
    "__version__",
]

#: name -> (module, attribute; None for the module itself), imported on first access.
_LAZY: dict[str, tuple[str, str | None]] = {
    "OnlineGaussianMixture": ("._estimators.gaussian", "OnlineGaussianMixture"),
    "OnlineBayesianGaussianMixture": ("._estimators.bayesian", "OnlineBayesianGaussianMixture"),
    "PowerDecay": ("._math.schedules", "PowerDecay"),
    "save": ("._io.persistence", "save"),
    "load": ("._io.persistence", "load"),
    "read_header": ("._io.persistence", "read_header"),
    "ModelFileError": ("._io.model_file", "ModelFileError"),
    "NotStorableError": ("._io.model_file", "NotStorableError"),
    "UntrustedFileError": ("._io.model_file", "UntrustedFileError"),
    "dask_partial_fit": ("._em.dask", "partial_fit"),
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


#: Where the modules that earlier versions' pickles name live now (a model pickled by an
#: earlier version records its classes' module paths: they must keep importing).
_MOVED = {
    "online_gmm._estimator": "online_gmm._estimators.gaussian",
    "online_gmm._bayesian": "online_gmm._estimators.bayesian",
    "online_gmm._stats": "online_gmm._math.state",
    "online_gmm._warmup": "online_gmm._em.warmup",
    "online_gmm._schedules": "online_gmm._math.schedules",
    "online_gmm._variational": "online_gmm._math.variational",
}


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """``import online_gmm._stats`` (an old path) gives the module now at its new path."""

    def find_spec(self, fullname, path, target=None):
        if fullname in _MOVED:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        return None  # (a placeholder: exec_module puts the real module in its place)

    def exec_module(self, module):
        # the real module, untouched (its ``__spec__`` too), under the old name as well
        sys.modules[module.__name__] = importlib.import_module(_MOVED[module.__name__])


if not any(isinstance(f, _MovedModules) for f in sys.meta_path):
    sys.meta_path.insert(0, _MovedModules())
