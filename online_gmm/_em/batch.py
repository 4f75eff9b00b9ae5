"""Batch EM: what ``fit`` iterates (the contract's "What fit means").

One iteration is one exact pass over every row (the E-step at the current parameters,
chunk by chunk, on the same kernels as a ``partial_fit`` step), then the M-step of the
summed statistics from no evidence: the statistics *are* the new evidence, every row
counted once. The plain mixture's bound is the mean log-likelihood of the pass
(scikit-learn's ``GaussianMixture.lower_bound_``), the variational mixture's the evidence
lower bound of its posterior (``BayesianGaussianMixture.lower_bound_``).

The rows come from a *source*: :class:`Rows` (one array in memory, NumPy or any array-API
namespace) here, a Dask array in :mod:`online_gmm._em.dask`, files in the command line. A
source sums the statistics of its rows under a state; that is all an iteration needs.
Plain functions over the backend, as the online step.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np

from .._math.array_api import take_index
from .._math.estep import statistics_and_entropy
from .._math.state import BatchStats, MixtureState
from .._math.variational import lower_bound, posterior
from .expectation import statistics, step_prepared


class Source(Protocol):
    """The rows ``fit`` iterates over."""

    n_samples: int
    init_rows: int  # rows an initialisation draws when ``init_size`` is None

    def statistics(self, state: MixtureState, config: Any, inv_temp: float) -> BatchStats:
        """The statistics of every row under ``state`` (E-step at ``1 / inv_temp``)."""

    def statistics_and_entropy(self, state: MixtureState, config: Any,
                               inv_temp: float) -> tuple:
        """The same and the responsibilities' weighted entropy (the variational bound)."""

    def sample(self, size: int, rng: np.random.RandomState) -> tuple[Any, Any]:
        """``size`` rows drawn at random (all of them when ``size >= n_samples``), in
        memory, and their weights."""


#: The most rows an initialisation fetches by default from rows that are not in memory.
INIT_ROWS = 32768


class RowSource:
    """Rows that are not an array in memory (a Dask array's, files'): ``fit`` takes one
    in place of ``X``. A subclass gives ``meta`` (an empty host array of the rows' width
    and dtype, what the estimator checks), ``n_samples``, ``on(backend)`` (the source
    computing with ``backend``) and the :class:`Source` methods."""

    meta: np.ndarray
    n_samples: int

    @property
    def init_rows(self) -> int:
        """Rows an initialisation draws when ``init_size`` is None (at most
        :data:`INIT_ROWS`: they are fetched into memory)."""
        return min(self.n_samples, INIT_ROWS)

    def on(self, backend: Any) -> RowSource:
        raise NotImplementedError


@dataclass(frozen=True)
class Rows:
    """A source of rows in memory: ``X`` (n, D) with weights ``w`` (n,), on ``backend``."""

    X: Any
    w: Any
    backend: Any

    @property
    def n_samples(self) -> int:
        return int(self.X.shape[0])

    @property
    def init_rows(self) -> int:
        """Rows an initialisation draws when ``init_size`` is None: all (scikit-learn's)."""
        return self.n_samples

    def statistics(self, state: MixtureState, config: Any, inv_temp: float) -> BatchStats:
        context, plan = self.backend.step_plan(self.X, config.n_components,
                                               config.covariance_type)
        with context:
            return statistics(state, config, self.X, self.w, inv_temp, self.backend, plan)

    def statistics_and_entropy(self, state: MixtureState, config: Any,
                               inv_temp: float) -> tuple:
        p = step_prepared(state, config, self.X.dtype, self.backend)
        return statistics_and_entropy(self.X, self.w, p, self.backend, inv_temp)

    def sample(self, size: int, rng: np.random.RandomState) -> tuple[Any, Any]:
        n = self.n_samples
        if size >= n:
            return self.X, self.w
        xp = self.backend.xp
        idx = take_index(np.sort(rng.choice(n, size=size, replace=False)), self.X, xp)
        return xp.take(self.X, idx, axis=0), xp.take(self.w, idx, axis=0)


def no_evidence(state: MixtureState, xp: Any) -> MixtureState:
    """The same parameters with no evidence behind them: an M-step from here is the batch
    M-step of the statistics alone."""
    return state.replace(mass=xp.zeros_like(state.mass), nu=xp.zeros_like(state.nu),
                         moment=xp.zeros_like(state.moment),
                         tied_mass=xp.zeros_like(state.tied_mass))


def m_step(state: MixtureState, stats: BatchStats, config: Any, backend: Any) -> MixtureState:
    """The batch M-step: the parameters of ``stats`` alone (no forgetting, no prior
    evidence); a component without mass keeps its parameters."""
    return backend.m_step(no_evidence(state, backend.xp), stats, eta=0.0,
                          forgetting=config.forgetting, covariance_type=config.covariance_type,
                          reg_covar=config.reg_covar)


def from_statistics(state: MixtureState, stats: BatchStats, entropy: float, config: Any,
                    backend: Any) -> tuple[MixtureState, float]:
    """A variational mixture's M-step of ``stats`` and the evidence lower bound of its
    posterior with the responsibilities' entropy ``entropy`` (scikit-learn's
    ``_compute_lower_bound``)."""
    new = m_step(state, stats, config, backend)
    post = posterior(new, config.prior, covariance_type=config.covariance_type,
                     reg_covar=config.reg_covar, backend=backend)
    return new, lower_bound(post, config.prior, entropy, covariance_type=config.covariance_type,
                            xp=backend.xp)


def iteration(state: MixtureState, source: Source, config: Any, backend: Any,
              temperature: float = 1.0) -> tuple[MixtureState, float]:
    """One batch-EM iteration over ``source``: ``(new state, bound)``.

    The plain mixture (``config.prior`` None): the E-step at ``temperature`` (deterministic
    annealing when it is not 1), the batch M-step, and the mean log-likelihood of the rows
    under ``state`` (at T = 1), as scikit-learn's ``GaussianMixture`` reports it. The
    variational mixture: the E-step under the posterior of ``state`` (at ``temperature``),
    the M-step and the evidence lower bound after it with those responsibilities'
    entropy, as ``BayesianGaussianMixture``'s."""
    if config.prior is None:
        stats = source.statistics(state, config, 1.0 / temperature)
        bound = stats.loglik / stats.weight if stats.weight > 0 else -np.inf
        return m_step(state, stats, config, backend), bound
    stats, entropy = source.statistics_and_entropy(state, config, 1.0 / temperature)
    return from_statistics(state, stats, entropy, config, backend)


# ---------------------------------------------------------------------- on a buffer
#: The parameters (the fields an E-step reads).
PARAMETER_FIELDS = ("weights", "means", "covariances", "precisions_cholesky")
#: EM iterations of each warm-up restart on its buffer (:func:`em_iterations`).
EM_ITERATIONS = 5


#: Restarts whose mean buffer log-likelihoods differ by less than this (relative) are tied,
#: or by less than TIE_EPS machine epsilons of the buffer's dtype, whichever is larger: a
#: float32 buffer's log-likelihood carries float32 rounding (sums of many terms), so two
#: backends could otherwise rank two equally good restarts differently (measured: 3e-7 apart
#: on bfloat16-valued rows, and the states diverged).
TIE_TOLERANCE = 1e-9


TIE_EPS = 100


def em_iterations(state, Xb, wb, config, backend, n_iter: int = EM_ITERATIONS,
                   tol: float | None = None, *,
                   from_seeds: bool = False) -> tuple[MixtureState, float]:
    """Up to ``n_iter`` batch-EM iterations on the buffer (T = 1, each M-step from no
    evidence; stopped once the mean log-likelihood changes by less than ``tol``); the mean
    buffer log-likelihood of the last E-step. ``from_seeds``: ``state`` holds a restart's
    seeds (a variational mixture's first E-step is then at their own parameters)."""
    loglik = -np.inf
    for i in range(max(1, n_iter)):
        # a variational mixture's first E-step is at the seeds' own parameters (it starts
        # from their responsibilities, as scikit-learn's from k-means's), then its posterior's
        step_config = replace(config, prior=None) if from_seeds and i == 0 else config
        stats = statistics(state, step_config, Xb, wb, 1.0, backend)
        previous, loglik = loglik, (stats.loglik / stats.weight if stats.weight > 0
                                    else -np.inf)
        state = m_step(state, stats, config, backend)
        if tol is not None and abs(loglik - previous) < tol:
            break
    return state, loglik


def beats(new: float, old: float, dtype: Any, xp: Any) -> bool:
    """Whether ``new`` is higher than ``old`` by more than rounding (:data:`TIE_TOLERANCE`
    relative, or :data:`TIE_EPS` units of ``dtype``'s precision): equal optima keep the
    incumbent, on any backend."""
    tie = max(TIE_TOLERANCE, TIE_EPS * float(xp.finfo(dtype).eps))
    return new > old + tie * (1.0 + abs(old))


def nonfinite_field(state: MixtureState, backend: Any,
                    fields: tuple = PARAMETER_FIELDS) -> str | None:
    """The first of ``fields`` of ``state`` holding NaN or inf, or None: the one finite check
    (of the parameters here; of every float field, :data:`STATE_FIELDS` but ``seeded``, for
    a new state in :func:`online_gmm._em.online.check_finite_state`)."""
    if backend.all_finite(*(getattr(state, name) for name in fields)):
        return None
    return next(name for name in fields if not backend.all_finite(getattr(state, name)))


def finite(state: MixtureState, backend: Any) -> bool:
    """Whether the parameters of ``state`` are finite."""
    return nonfinite_field(state, backend) is None
