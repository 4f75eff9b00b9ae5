"""The mixture's state and a batch's sufficient statistics, and their pairwise merge.

:class:`MixtureState` is everything the online EM carries from batch to batch;
:class:`BatchStats` the weighted sums of the contract's "Batch statistics" for one batch.
Moment layouts are the covariance type's (:mod:`online_gmm._math.covariance`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from .covariance import covariance


@dataclass(frozen=True)
class BatchStats:
    """Weighted statistics of one batch: the sums of the contract's "Batch statistics"."""

    mass: Any  # (K,) m_k = sum_n w_n r_nk
    mean: Any  # (K, D) xb_k
    moment: Any  # Mb_k, in the covariance type's moment layout
    weight: float  # sum_n w_n
    loglik: float  # sum_n w_n log p(x_n) at T = 1
    n_samples: int


@dataclass(frozen=True)
class MixtureState:
    """Everything the online EM carries from batch to batch (float64, on the data's device).

    ``weights``, ``means``, ``covariances`` and ``precisions_cholesky`` are the model's
    parameters (what the E-step uses); ``mass`` (n_k), ``nu`` (time-forgotten mass for the
    weights), ``moment`` (M_k) and ``tied_mass`` are the evidence behind them.
    """

    weights: Any
    means: Any
    covariances: Any
    precisions_cholesky: Any
    mass: Any
    nu: Any
    moment: Any
    tied_mass: Any  # (1,): the mass behind the tied moment (unused by other types)
    seeded: Any  # (K,) bool

    def replace(self, **changes) -> MixtureState:
        return replace(self, **changes)


#: The state's fields, in order (buffers of the bridge, checks of a new state).
STATE_FIELDS = (
    "weights", "means", "covariances", "precisions_cholesky", "mass", "nu", "moment",
    "tied_mass", "seeded",
)


def empty_stats(n_components: int, n_features: int, covariance_type: str, xp: Any,
                dev: Any) -> BatchStats:
    """The statistics of no data (the neutral element of :func:`merge_stats`)."""
    f64 = xp.float64
    return BatchStats(
        mass=xp.zeros(n_components, dtype=f64, device=dev),
        mean=xp.zeros((n_components, n_features), dtype=f64, device=dev),
        moment=xp.zeros(covariance(covariance_type).shape(n_components, n_features),
                        dtype=f64, device=dev),
        weight=0.0,
        loglik=0.0,
        n_samples=0,
    )


def merge_stats(a: BatchStats, b: BatchStats, covariance_type: str, xp: Any) -> BatchStats:
    """Pairwise (Chan et al.) merge: the statistics of the union of two batches."""
    m = a.mass + b.mass
    safe = xp.where(m > 0, m, xp.ones_like(m))
    d = b.mean - a.mean
    mean = a.mean + d * (b.mass / safe)[:, None]
    coef = a.mass * (b.mass / safe)  # (b.mass / safe <= 1: no overflow)
    moment = a.moment + b.moment + covariance(covariance_type).outer_term(d, coef, xp)
    return BatchStats(
        mass=m,
        mean=mean,
        moment=moment,
        weight=a.weight + b.weight,
        loglik=a.loglik + b.loglik,
        n_samples=a.n_samples + b.n_samples,
    )


def empty_state(n_components: int, n_features: int, covariance_type: str, xp: Any,
                dev: Any) -> MixtureState:
    """All components unseeded: zero weight and mass, unit covariances."""
    f64 = xp.float64
    K, D = n_components, n_features
    cov_type = covariance(covariance_type)
    cov = cov_type.identity(K, D, xp, dev)
    return MixtureState(
        weights=xp.zeros(K, dtype=f64, device=dev),
        means=xp.zeros((K, D), dtype=f64, device=dev),
        covariances=cov,
        precisions_cholesky=xp.asarray(cov, copy=True),
        mass=xp.zeros(K, dtype=f64, device=dev),
        nu=xp.zeros(K, dtype=f64, device=dev),
        moment=xp.zeros(cov_type.shape(K, D), dtype=f64, device=dev),
        tied_mass=xp.zeros(1, dtype=f64, device=dev),
        seeded=xp.zeros(K, dtype=xp.bool, device=dev),
    )
