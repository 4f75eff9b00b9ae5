"""``fit``'s initialisations: where batch EM starts (one per ``n_init``).

Two ways, chosen by the parameters:

- **scikit-learn's** (``init_params`` other than ``"k-means++"``, no warm-up, or any user
  initial parameter): responsibilities of the rows as scikit-learn's
  ``BaseMixture._initialize_parameters`` makes them (``KMeans`` labels, random,
  random rows, k-means++ rows; drawn from the same ``RandomState`` in the same order, so
  the same ``random_state`` gives scikit-learn's start), the M-step of their statistics
  (:func:`online_gmm._em.batch.m_step`), then each of ``weights_init``, ``means_init``
  and ``precisions_init`` that is given replaces its part, as scikit-learn's
  ``_initialize`` does.
- **the warm-up's** (the default: ``init_params="k-means++"`` with a warm-up): the
  restarts of k-means++, Lloyd and EM on a random sample
  (:func:`online_gmm._em.warmup.warm_state`); a variational mixture then makes its merge,
  birth and reorder moves on a larger sample (:func:`online_gmm._em.warmup.fitted_state`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .._math.array_api import asarray_like, device, to_numpy
from .._math.covariance import covariance
from .._math.estep import responsibility_statistics
from .._math.state import MixtureState, empty_state
from . import warmup as _warmup
from .batch import Source, m_step
from .seeding import kmeans


@dataclass(frozen=True)
class FitInit:
    """What an initialisation needs of the estimator's parameters."""

    init_params: str
    init_size: int | None
    warmup_size: int | str
    warmup_restarts: int
    max_iter: int
    tol: float
    weights_init: Any = None
    means_init: Any = None
    precisions_init: Any = None

    @property
    def user_given(self) -> bool:
        return any(v is not None for v in (self.weights_init, self.means_init,
                                            self.precisions_init))

    @property
    def warm(self) -> bool:
        """Whether the warm-up's restarts start the fit (else scikit-learn's start)."""
        return (self.init_params == "k-means++" and self.warmup_size != 0
                and not self.user_given)


def initial_state(source: Source, n_features: int, *, init: FitInit, config: Any,
                  rng: np.random.RandomState, backend: Any) -> MixtureState:
    """The state batch EM starts from (every component seeded); draws from ``rng``."""
    if init.warm:
        state = _warm(source, init, config, rng, backend)
        if state is not None and bool(to_numpy(state.seeded).all()):
            return state  # (else scikit-learn's start: batch EM seeds no component)
    size = source.init_rows if init.init_size is None else int(init.init_size)
    X, w = source.sample(size, rng)
    R = responsibilities(X, config.n_components, init.init_params, rng)
    xp = backend.xp
    stats = responsibility_statistics(X, w, asarray_like(R, X, xp, dtype=X.dtype),
                                      config.covariance_type, xp)
    start = empty_state(config.n_components, n_features, config.covariance_type, xp,
                        device(X))
    start = start.replace(seeded=xp.ones_like(start.seeded))
    return with_user_parameters(m_step(start, stats, config, backend), init, config, backend)


def _warm(source: Source, init: FitInit, config: Any, rng: np.random.RandomState,
          backend: Any) -> MixtureState | None:
    """The warm-up's restarts on ``init_size`` random rows (default: the warm-up's first
    mark), then a variational mixture's moves on the warm-up's whole sample; None if every
    restart failed."""
    first = (_warmup.resolve_size(init.warmup_size, config.n_components)
             if init.init_size is None else int(init.init_size))
    Xf, wf = source.sample(first, rng)
    state = _warmup.warm_state(Xf, wf, config=config, restarts=init.warmup_restarts, rng=rng,
                               backend=backend)
    if state is None or config.prior is None:
        return state
    Xs, ws = source.sample(max(first, _warmup.sample_size(init.warmup_size)), rng)
    moved = _warmup.fitted_state(state, Xs, ws, config=config, backend=backend,
                                 first=min(first, Xs.shape[0]), n_iter=init.max_iter,
                                 tol=init.tol, rng=rng)
    return state if moved is None else moved


def responsibilities(X: Any, n_components: int, init_params: str,
                     rng: np.random.RandomState) -> np.ndarray:
    """(n, K) host responsibilities of an initialisation, as scikit-learn's
    ``BaseMixture._initialize_parameters`` draws them from ``rng``."""
    X_host = np.asarray(to_numpy(X))
    n, K = X_host.shape[0], n_components
    resp = np.zeros((n, K), dtype=X_host.dtype)
    if init_params == "kmeans":
        labels = kmeans(X_host, K, random_state=rng).labels_
        resp[np.arange(n), labels] = 1
    elif init_params == "random":
        resp = rng.uniform(size=(n, K)).astype(X_host.dtype)
        resp /= resp.sum(axis=1)[:, np.newaxis]
    elif init_params == "random_from_data":
        resp[rng.choice(n, size=K, replace=False), np.arange(K)] = 1
    else:  # "k-means++"
        from sklearn.cluster import kmeans_plusplus

        _, indices = kmeans_plusplus(X_host, K, random_state=rng)
        resp[indices, np.arange(K)] = 1
    return resp


def with_user_parameters(state: MixtureState, init: FitInit, config: Any,
                         backend: Any) -> MixtureState:
    """``state`` with each user initial parameter that is given in place of its part."""
    xp = backend.xp
    dev = device(state.means)
    f64 = xp.float64
    changes: dict = {}
    if init.weights_init is not None:
        weights = xp.asarray(np.asarray(to_numpy(init.weights_init), dtype=np.float64),
                             device=dev)
        changes.update(weights=weights, nu=weights * xp.sum(state.nu))
    if init.means_init is not None:
        changes["means"] = xp.asarray(np.asarray(to_numpy(init.means_init), dtype=np.float64),
                                      device=dev)
    if init.precisions_init is not None:
        cov = covariance(config.covariance_type)
        precisions = xp.asarray(np.asarray(to_numpy(init.precisions_init), dtype=np.float64),
                                device=dev)
        covariances = xp.astype(cov.covariances_from_precisions(precisions, xp), f64)
        changes.update(covariances=covariances, precisions_cholesky=backend.precision_cholesky(
            covariances, config.covariance_type))
    return state.replace(**changes) if changes else state
