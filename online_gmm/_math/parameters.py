"""The parameter table: every hyper-parameter of the mixture, defined once.

Each entry holds the parameter's constraints (a small spec, turned into scikit-learn's
``_parameter_constraints`` vocabulary by :func:`constraints`), its default, a one-line help
and, for the command line, its flags. The estimator's ``_parameter_constraints``, the
bridge's checks and the CLI's estimator options are all built from :data:`PARAMETERS`;
:func:`validate` checks values against it with scikit-learn's own validator (and its
messages: "The 'n_components' parameter of OnlineGaussianMixture must be an int in the
range [1, inf). Got 0 instead.").

The table itself is plain data: importing this module imports neither scikit-learn nor
numpy (``online-gmm --help`` builds its estimator options from it in milliseconds); the
scikit-learn constraint objects are built on the first call of :func:`constraints` or
:func:`validate`.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

from .schedules import ANNEAL_SCHEDULES

FORGETTING = ("responsibility", "uniform")
#: The covariance types and seedings, as :data:`online_gmm._math.covariance.COVARIANCE_TYPES` and
#: :data:`online_gmm._em.seeding.INIT_PARAMS` (kept here so that the table imports without
#: numpy; ``tests/math/test_parameters.py`` checks they are the same).
COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
INIT_PARAMS = ("k-means++", "kmeans", "random", "random_from_data")
#: As :data:`online_gmm._math.variational.WEIGHT_CONCENTRATION_PRIOR_TYPES`.
WEIGHT_CONCENTRATION_PRIOR_TYPES = ("dirichlet_process", "dirichlet_distribution")
_INF = float("inf")


@dataclass(frozen=True)
class IntervalSpec:
    """The spec of a scikit-learn ``Interval`` (built by :meth:`build`)."""

    type: type
    left: float | None
    right: float | None
    closed: str

    def build(self) -> Any:
        from sklearn.utils._param_validation import Interval

        return Interval(self.type, self.left, self.right, closed=self.closed)


@dataclass(frozen=True)
class OptionsSpec:
    """The spec of a scikit-learn ``StrOptions`` (built by :meth:`build`)."""

    options: tuple[str, ...]

    def build(self) -> Any:
        return _choices_type()(self.options)


@functools.cache
def _choices_type() -> type:
    """``StrOptions`` whose messages list the options in their documented order (a set's
    order changes with ``PYTHONHASHSEED``); made on first use (it imports scikit-learn)."""
    from sklearn.utils import _param_validation

    class StrOptions(_param_validation.StrOptions):
        def __init__(self, options: tuple[str, ...]) -> None:
            super().__init__(set(options))
            self.ordered = tuple(options)

        def __str__(self) -> str:
            return f"a str among {{{', '.join(repr(o) for o in self.ordered)}}}"

    return StrOptions


@dataclass(frozen=True)
class Parameter:
    """One hyper-parameter: constraints, default, help, command-line flags.

    ``spec`` holds the constraints as plain data: :class:`IntervalSpec` and :class:`OptionsSpec`
    specs, and scikit-learn's own string constraints (``"boolean"``, ``"array-like"``, ...),
    ``None`` and ``callable`` as they are; :meth:`constraints` builds scikit-learn's list.
    """

    spec: tuple
    default: Any
    help: str
    flags: tuple[str, ...] = ()  # () for no command-line option
    choices: tuple[str, ...] | None = None  # the string options, in their documented order
    #: the command line's parser (int, float, :func:`count_or_auto`) where not choices
    cli_type: Any = None
    #: whose parameter: "mixture" (both estimators), "initial" (the user's initial
    #: parameters: the plain mixture's only, as scikit-learn's), "prior" (the variational
    #: mixture's only)
    group: str = "mixture"
    bridge: bool = False  # the bridge (``GMMPrototypes``) takes it too
    #: an estimator's cache of valid values keys it by type and identity (an array is not
    #: hashed; the steps never read these in place)
    by_identity: bool = False

    def constraints(self) -> list:
        """The constraints in scikit-learn's vocabulary (``Interval``, ``StrOptions``, ...)."""
        return [c.build() if isinstance(c, IntervalSpec | OptionsSpec) else c for c in self.spec]


def _choice(options: tuple[str, ...], *more: Any) -> tuple:
    return (OptionsSpec(options), *more)


def count_or_auto(text: str) -> int | str:
    """The command line's parser of ``--warmup-size``: ``"auto"`` or an integer."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        return int(text)
    except ValueError:
        import argparse

        raise argparse.ArgumentTypeError(
            f"expected an integer >= 0 or 'auto', got {text!r}") from None


count_or_auto.metavar = "N|auto"  # type: ignore[attr-defined]


def _count(low: int) -> tuple:
    return (IntervalSpec(Integral, low, None, closed="left"),)


def _nonnegative_finite() -> tuple:
    return (IntervalSpec(Real, 0, _INF, closed="left"),)


def _positive_finite() -> tuple:
    return (IntervalSpec(Real, 0, _INF, closed="neither"),)


#: The table, in the command line's order (then the parameters it has no option for).
PARAMETERS: dict[str, Parameter] = {
    "n_components": Parameter(_count(1), 1, "number of mixture components",
                              ("-k", "--n-components"), cli_type=int),
    "covariance_type": Parameter(_choice(COVARIANCE_TYPES), "diag", "covariance shape",
                                 ("--covariance-type",), COVARIANCE_TYPES, bridge=True),
    "batch_size": Parameter(_count(1), 1024, "rows per online-EM step (mini-batch)",
                            ("--batch-size",), cli_type=int),
    "forgetting": Parameter(_choice(FORGETTING), "responsibility",
                            "how old evidence is discounted", ("--forgetting",), FORGETTING,
                            bridge=True),
    "forgetting_rate": Parameter((IntervalSpec(Real, 0, 1, closed="left"), callable), 0.0,
                                 "eta in [0, 1); 0 never forgets", ("--forgetting-rate",),
                                 cli_type=float, bridge=True),
    "temperature_init": Parameter(_positive_finite(), 1.0, "E-step temperature at step 0",
                                  ("--temperature-init",), cli_type=float, bridge=True),
    "temperature_final": Parameter(_positive_finite(), 1.0, "temperature after annealing",
                                   ("--temperature-final",), cli_type=float, bridge=True),
    "anneal_steps": Parameter(_count(0), 0, "steps from initial to final temperature",
                              ("--anneal-steps",), cli_type=int, bridge=True),
    "anneal_schedule": Parameter(_choice(ANNEAL_SCHEDULES, callable), "exponential",
                                 "temperature path", ("--anneal-schedule",), ANNEAL_SCHEDULES,
                                 bridge=True),
    "init_params": Parameter(_choice(INIT_PARAMS), "k-means++",
                             "how the first batch seeds components", ("--init-params",),
                             INIT_PARAMS, bridge=True),
    "warmup_size": Parameter((*_count(0), OptionsSpec(("auto",))), "auto",
                             "rows buffered for the warm-up restarts (0: none; auto: 64 "
                             "per component, then refined at each doubling to 32768 "
                             "until a refinement gains less than its tolerance)",
                             ("--warmup-size",), cli_type=count_or_auto, bridge=True),
    "warmup_restarts": Parameter(_count(1), 3, "restarts of the warm-up, the best is kept",
                                 ("--warmup-restarts",), cli_type=int, bridge=True),
    "reg_covar": Parameter(_nonnegative_finite(), 1e-6, "added to every covariance's diagonal",
                           ("--reg-covar",), cli_type=float, bridge=True),
    "seed_mass": Parameter(_nonnegative_finite(), 1.0,
                           "evidence a freshly seeded component starts with", ("--seed-mass",),
                           cli_type=float, bridge=True),
    "dead_threshold": Parameter((IntervalSpec(Real, 0, 1, closed="both"),), 1e-3,
                                "reseed below this weight * K", ("--dead-threshold",),
                                cli_type=float, bridge=True),
    "max_reseed": Parameter((*_count(0), None), None,
                            "dead components reseeded per step at most", ("--max-reseed",),
                            cli_type=int, bridge=True),
    "random_state": Parameter(("random_state",), None, "seed, for reproducible runs",
                              ("--random-state",), cli_type=int, by_identity=True),
    "tol": Parameter(_nonnegative_finite(), 1e-3,
                     "EM: stop when the lower bound changes less", ("--tol",),
                     cli_type=float),
    "max_iter": Parameter(_count(0), 100, "EM: most EM iterations", ("--max-iter",),
                          cli_type=int),
    "n_init": Parameter(_count(1), 1, "EM: initialisations, the best is kept",
                        ("--n-init",), cli_type=int),
    "init_size": Parameter((*_count(1), None), None, "EM: rows drawn to initialise from",
                           ("--init-size",), cli_type=int),
    "weights_init": Parameter(("array-like", None), None, "initial weights",
                              group="initial", by_identity=True),
    "means_init": Parameter(("array-like", None), None, "initial means",
                            group="initial", by_identity=True),
    "precisions_init": Parameter(("array-like", None), None, "initial precisions",
                                 group="initial", by_identity=True),
    "warm_start": Parameter(("boolean",), False, "fit continues from the current model",
                            by_identity=True),
    "verbose": Parameter(("verbose",), 0, "progress output of fit"),
    "verbose_interval": Parameter(_count(1), 10, "iterations between progress lines"),
    # the variational mixture's prior (OnlineBayesianGaussianMixture, as scikit-learn's
    # BayesianGaussianMixture); None: the default scikit-learn takes from the data
    "weight_concentration_prior_type": Parameter(
        _choice(WEIGHT_CONCENTRATION_PRIOR_TYPES), "dirichlet_process",
        "prior of the weights: stick-breaking (Dirichlet process) or Dirichlet",
        choices=WEIGHT_CONCENTRATION_PRIOR_TYPES, group="prior"),
    "weight_concentration_prior": Parameter((*_positive_finite(), None), None,
                                            "the weights' concentration (None: 1 / K)",
                                            group="prior"),
    "mean_precision_prior": Parameter((*_positive_finite(), None), None,
                                      "beta_0, the means' prior precision (None: 1)",
                                      group="prior"),
    "mean_prior": Parameter((None, "array-like"), None, "m_0 (None: the data's mean)",
                            group="prior", by_identity=True),
    "degrees_of_freedom_prior": Parameter((*_positive_finite(), None), None,
                                          "nu_0 of the Wishart prior (None: n_features)",
                                          group="prior"),
    "covariance_prior": Parameter((None, "array-like", *_positive_finite()), None,
                                  "the Wishart prior's covariance (None: the data's)",
                                  group="prior", by_identity=True),
}

#: The variational mixture's own parameters (its prior).
VARIATIONAL_PARAMETERS = tuple(n for n, p in PARAMETERS.items() if p.group == "prior")
#: The user's initial parameters, which the variational mixture has not (as scikit-learn's).
INITIAL_PARAMETERS = tuple(n for n, p in PARAMETERS.items() if p.group == "initial")
#: :class:`~online_gmm.OnlineGaussianMixture`'s parameters.
MIXTURE_PARAMETERS = tuple(n for n, p in PARAMETERS.items() if p.group != "prior")
#: :class:`~online_gmm.OnlineBayesianGaussianMixture`'s parameters.
VARIATIONAL_MIXTURE_PARAMETERS = tuple(n for n, p in PARAMETERS.items()
                                       if p.group != "initial")
#: The parameters the bridge shares with the estimator.
SHARED_WITH_BRIDGE = tuple(n for n, p in PARAMETERS.items() if p.bridge)


def cache_keys(names: Iterable[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(by value, by identity)``: how an estimator with parameters ``names`` keys its
    cache of the values last found valid (:attr:`Parameter.by_identity`)."""
    return (tuple(n for n in names if not PARAMETERS[n].by_identity),
            tuple(n for n in names if PARAMETERS[n].by_identity))


@functools.cache
def _built(name: str) -> tuple:
    return tuple(PARAMETERS[name].constraints())


def constraints(names: Iterable[str] | None = None) -> dict[str, list]:
    """``{name: [constraint, ...]}`` in scikit-learn's vocabulary, for ``names`` (all).

    Built on the first call (this imports scikit-learn), then reused.
    """
    names = PARAMETERS if names is None else names
    return {name: list(_built(name)) for name in names}


def defaults(names: Iterable[str] | None = None) -> dict[str, Any]:
    names = PARAMETERS if names is None else names
    return {name: PARAMETERS[name].default for name in names}


def validate(values: Mapping[str, Any], caller: str,
             extra: Mapping[str, list] | None = None) -> None:
    """Check ``values`` against the table (and ``extra`` constraints for names the table
    has not); raises scikit-learn's ``InvalidParameterError`` (a ``ValueError`` and a
    ``TypeError``) naming the parameter and ``caller``.

    Examples
    --------
    >>> from online_gmm._math.parameters import validate
    >>> validate({"n_components": 0}, "Model")
    Traceback (most recent call last):
    ...
    sklearn.utils._param_validation.InvalidParameterError: The 'n_components' parameter of \
Model must be an int in the range [1, inf). Got 0 instead.
    """
    from sklearn.utils._param_validation import validate_parameter_constraints

    table = {}
    for name in values:  # names neither has (a subclass's own parameters) are not checked
        if extra and name in extra:
            table[name] = extra[name]
        elif name in PARAMETERS:
            table[name] = list(_built(name))
    validate_parameter_constraints(table, dict(values), caller_name=caller)


def check_initial_parameters(n_components: int, covariance_type: str, n_features: int,
                             weights_init: Any, means_init: Any, precisions_init: Any) -> None:
    """Check the user's initial parameters as scikit-learn's ``GaussianMixture`` checks them
    (``_check_weights``, ``_check_means``, ``_check_precisions``: the same messages), each
    one that is given, on a host copy (an array of any namespace, on any device).

    The one place these checks live: call it whenever a model is (re)initialised, whatever
    is given (it checks nothing for the parameters that are None).

    Examples
    --------
    >>> from online_gmm._math.parameters import check_initial_parameters
    >>> check_initial_parameters(2, "diag", 2, None, None, [[1.0, 1.0], [1.0, -1.0]])
    Traceback (most recent call last):
    ...
    ValueError: 'diag precision' should be positive
    """
    if weights_init is None and means_init is None and precisions_init is None:
        return
    import numpy as np

    from .covariance import covariance

    K, ct = n_components, covariance_type
    if weights_init is not None:
        w = _host_checked(weights_init)
        _check_shape(w, (K,), "weights")
        if np.any(w < 0.0) or np.any(w > 1.0):
            raise ValueError(  # (sic: scikit-learn's message names the min "max value")
                "The parameter 'weights' should be in the range [0, 1], but got max value "
                f"{np.min(w):.5f}, min value {np.max(w):.5f}"
            )
        atol = 1e-6 if w.dtype == np.float32 else 1e-8
        if not np.allclose(float(np.abs(1.0 - np.sum(w))), 0.0, atol=atol):
            raise ValueError(
                "The parameter 'weights' should be normalized, but got sum(weights) = "
                f"{np.sum(w):.5f}"
            )
    if means_init is not None:
        _check_shape(_host_checked(means_init), (K, n_features), "means")
    if precisions_init is not None:
        p = _host_checked(precisions_init, allow_nd=len(covariance(ct).shape(1, 1)) > 2)
        _check_shape(p, covariance(ct).shape(K, n_features), f"{ct} precision")
        covariance(ct).check_precisions(p)


def _host_checked(a: Any, allow_nd: bool = False) -> Any:
    """A host NumPy copy of ``a`` through scikit-learn's ``check_array`` (float64 or
    float32, finite: its messages)."""
    import numpy as np
    from sklearn.utils import check_array

    from .array_api import to_numpy

    return check_array(to_numpy(a), dtype=[np.float64, np.float32], ensure_2d=False,
                       allow_nd=allow_nd)


def _check_shape(param: Any, shape: tuple, name: str) -> None:
    """scikit-learn's ``mixture._base._check_shape``."""
    if param.shape != shape:
        raise ValueError(
            f"The parameter '{name}' should have the shape of {shape}, but got {param.shape}"
        )
