"""The E-step a step runs: the plain mixture's (the state's parameters) or the variational
mixture's (its posterior's expected log-weights and Wishart terms), chosen by the step's
``EMConfig.prior``; the statistics by the backend's own kernels."""

from __future__ import annotations

from typing import Any

from .._math.estep import Prepared, prepare, state_prepared
from .._math.state import BatchStats, MixtureState
from .._math.variational import posterior


def step_prepared(state: MixtureState, config: Any, dtype: Any, backend: Any) -> Prepared:
    """The E-step's layout of ``state`` under ``config`` (an
    :class:`~online_gmm._em.online.EMConfig`): the plain mixture's parameters, or, with a
    ``config.prior``, the variational posterior's."""
    if config.prior is None:
        return state_prepared(state, config.covariance_type, dtype, backend.xp)
    post = posterior(state, config.prior, covariance_type=config.covariance_type,
                     reg_covar=config.reg_covar, backend=backend)
    return prepare(post.weights, post.means, post.precisions_cholesky, config.covariance_type,
                   dtype, backend.xp, log_weights=post.log_weights)


def statistics(state: MixtureState, config: Any, X: Any, w: Any, inv_temp: float,
               backend: Any, plan: Any = None, on_log_density: Any = None) -> BatchStats:
    """A batch's statistics under ``config``'s E-step (plain, or variational with a
    ``config.prior``), by the backend's own statistics (``plan``: its block plan;
    ``on_log_density(rows, logp)``: handed the E-step's weighted log-densities)."""
    if config.prior is None:
        return backend.state_statistics(state, config.covariance_type, X, w, inv_temp, plan,
                                        on_log_density)
    p = step_prepared(state, config, X.dtype, backend)
    return backend.batch_statistics(X, w, p, inv_temp, plan, on_log_density)
