"""The core's internal API: the pieces of one online-EM step, for the PyTorch bridge, the
tests and extensions of the library (a distributed runner, a new estimator).

Everything here is documented and kept stable across minor versions; the ``_``-prefixed
modules behind it may change shape at any time. The path of one batch:

1. choose the backend for the data: :func:`select_backend` (numba for host NumPy, the
   array-API reference elsewhere; :func:`use_backend` overrides it, :func:`host_view`
   views a CPU tensor as NumPy when numba would run it);
2. take the step: :func:`advance` (schedules, initial parameters, :func:`em_step`, the
   finiteness check, the RNG restore on failure), with :class:`Hooks` as the extension
   point (``gather``, ``reduce``, ``statistics``, ``on_log_density``);
3. publish the returned :class:`MixtureState`.

The warm-up of a new stream (the contract's "Warm-up") is :func:`start_warmup`'s
:class:`Warmup`, passed to :func:`advance`, which returns its successor in ``info.warmup``.
Predictions use :func:`state_prepared` and :func:`posterior` / :func:`weighted_log_density`;
a covariance type's math is :func:`covariance` of its name; hyper-parameters are checked
against the one table, :data:`PARAMETERS`, by :func:`validate` (``Interval`` and
``StrOptions``, scikit-learn's constraint vocabulary, for parameters of one's own).

Examples
--------
>>> import numpy as np
>>> from online_gmm import core
>>> X = np.random.default_rng(0).normal(size=(64, 3))
>>> backend = core.select_backend(X)
>>> state = core.empty_state(4, 3, "diag", backend.xp, "cpu")
>>> new, info = core.advance(
...     state, X, np.ones(64), config=core.EMConfig(4), schedules=core.Schedules(),
...     step=0, rng=np.random.RandomState(0), backend=backend)
>>> info.n_seeded, bool(np.isclose(new.weights.sum(), 1.0))
(4, True)
"""

from sklearn.utils._param_validation import Interval, StrOptions

from ._backends import BACKENDS, host_view, select_backend, use_backend
from ._em.online import (
    NO_HOOKS,
    EMConfig,
    Hooks,
    InitialParameters,
    Schedules,
    StepInfo,
    advance,
    check_finite_state,
    em_step,
    is_numerical_failure,
    user_initialised_state,
)
from ._em.seeding import (
    INIT_PARAMS,
    needs_seeding,
    redundancy_due,
    seed_from_sample,
    seeding_flag,
)
from ._em.warmup import Warmup
from ._em.warmup import for_stream as start_warmup
from ._math.covariance import COVARIANCE_TYPES, covariance
from ._math.estep import (
    Prepared,
    chunked_statistics,
    posterior,
    prepare,
    state_prepared,
    weighted_log_density,
)
from ._math.mstep import forgetting_factors, m_step
from ._math.parameters import (
    FORGETTING,
    INITIAL_PARAMETERS,
    MIXTURE_PARAMETERS,
    PARAMETERS,
    SHARED_WITH_BRIDGE,
    VARIATIONAL_MIXTURE_PARAMETERS,
    VARIATIONAL_PARAMETERS,
    Parameter,
    constraints,
    defaults,
    validate,
)
from ._math.schedules import ANNEAL_SCHEDULES
from ._math.state import (
    STATE_FIELDS,
    BatchStats,
    MixtureState,
    empty_state,
    empty_stats,
    merge_stats,
)

__all__ = [
    "chunked_statistics",
    "redundancy_due",
    "seeding_flag",
    "ANNEAL_SCHEDULES", "BACKENDS", "COVARIANCE_TYPES", "FORGETTING", "INITIAL_PARAMETERS",
    "INIT_PARAMS", "MIXTURE_PARAMETERS", "NO_HOOKS", "PARAMETERS", "SHARED_WITH_BRIDGE",
    "STATE_FIELDS", "VARIATIONAL_MIXTURE_PARAMETERS", "VARIATIONAL_PARAMETERS", "BatchStats",
    "EMConfig", "Hooks", "InitialParameters", "Interval", "MixtureState", "Parameter", "Prepared",
    "Schedules", "StrOptions", "Warmup",
    "StepInfo", "advance", "check_finite_state", "constraints", "covariance", "defaults",
    "em_step", "empty_state", "empty_stats", "forgetting_factors", "host_view",
    "is_numerical_failure", "m_step",
    "merge_stats", "needs_seeding", "posterior", "prepare", "seed_from_sample",
    "select_backend", "start_warmup", "state_prepared", "use_backend",
    "user_initialised_state", "validate", "weighted_log_density",
]
