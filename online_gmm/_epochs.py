"""The epochs of ``fit``: restarts that keep the best lower bound, and epochs of online-EM
steps until the mean log-likelihood settles. Shared by the estimator and its Dask path,
whose epochs visit groups of row-chunks instead of shuffled mini-batches."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.utils import check_random_state

from . import _warmup
from ._array_api import take_index
from ._consistency import check_fitted_parameters
from ._seeding import seed_from_sample


def fit_restarts(model: Any, X_like: Any, xp: Any, continuing: bool,
                 epochs: Callable[[], None]) -> None:
    """``n_init`` restarts of ``epochs`` (one unless continuing), keeping the best
    lower bound ."""
    n_init = 1 if continuing else model.n_init
    best = None
    for init in range(n_init):
        if not continuing:
            rng = model._rng if init > 0 else check_random_state(model.random_state)
            model._reset(X_like, xp)
            model._rng = rng
        elif init == 0:
            check_fitted_parameters(model, "fit (warm_start=True)")
            model._check_namespace(xp, "fit")
        if model.verbose:
            print(f"Initialization {init}")
        epochs()
        if best is None or model.lower_bound_ > best[0]:
            best = (model.lower_bound_, snapshot(model))
    restore(model, best[1])


def run_epochs(model: Any, epoch_steps: Callable[[], Any]) -> None:
    """Epochs until the change of the mean log-likelihood is below ``tol``.

    ``epoch_steps()`` runs one epoch's online-EM steps and yields their ``StepInfo``
    (shared with :mod:`online_gmm._dask`, whose epochs visit row-chunks instead)."""
    model.converged_ = False
    prev = -np.inf
    t0 = time.perf_counter()
    for epoch in range(1, model.max_iter + 1):
        ll = weight = 0.0
        for info in epoch_steps():
            ll += info.loglik
            weight += info.weight
        model.lower_bound_ = ll / weight if weight > 0 else -np.inf
        model.n_iter_ = epoch
        if model.verbose and epoch % model.verbose_interval == 0:
            print(
                f"  Iteration {epoch}\t time lapse {time.perf_counter() - t0:.5f}s\t "
                f"ll change {model.lower_bound_ - prev:.5f}"
            )
        if abs(model.lower_bound_ - prev) < model.tol:
            model.converged_ = True
            break
        prev = model.lower_bound_
    if model.verbose:
        print(f"Initialization converged: {model.converged_}")


def fit_epochs(model: Any, X: Any, w: Any, backend: Any) -> None:
    """The estimator's epochs: seeding (:func:`seed_for_fit`) unless seeded or user-given,
    then shuffled mini-batches through the model's step until ``tol``."""
    n = X.shape[0]
    xp = backend.xp
    if not model._user_init_pending and not bool(xp.any(model._state.seeded)):
        seed_for_fit(model, X, w, backend)

    def epoch_steps():
        order = model._rng.permutation(n)
        for start in range(0, n, model.batch_size):
            idx = take_index(order[start : start + model.batch_size], X, xp)
            yield model._step(xp.take(X, idx, axis=0), xp.take(w, idx, axis=0), backend)

    run_epochs(model, epoch_steps)


def seed_for_fit(model: Any, X: Any, w: Any, backend: Any) -> None:
    """Seed every component from ``init_size`` random rows of ``X`` (the sample). With a
    warm-up, the stream's warm-up on the sample: the restarts on its first mark's worth of
    random rows (:func:`online_gmm._warmup.resolve_size`), then batch EM on the whole
    sample from the best restart, until ``tol``, and a variational mixture's merge and
    birth moves on it (its statistics are the evidence the epochs start from). Without one,
    the first step's seeding alone (no statistics added)."""
    size = model.init_size
    warm = model._warmup is not None
    if size is None:
        size = (_warmup.sample_size(model.warmup_size) if warm
                else max(3 * model.batch_size, 3 * model.n_components))
    X, w = _rows(model, X, w, size, backend)
    warm_state = None
    if warm:
        config = model._config()
        first = _warmup.resolve_size(model.warmup_size, model.n_components)
        X_first, w_first = _rows(model, X, w, first, backend)
        warm_state = _warmup.warm_state(X_first, w_first, config=config,
                                        restarts=model._warmup.restarts, rng=model._rng,
                                        backend=backend)
        model._warmup = None
        if warm_state is not None:
            # on to the sample's optimum: the epochs then start there, not five EM
            # iterations' way to it (a variational mixture's with the moves)
            converged = _warmup.fitted_state(warm_state, X, w, config=config,
                                             backend=backend, first=first,
                                             n_iter=model.max_iter, tol=model.tol,
                                             rng=model._rng)
            warm_state = warm_state if converged is None else converged
    if warm_state is not None:
        model._state = warm_state
    else:
        model._state = seed_from_sample(model._state, X, w, config=model._config(),
                                        rng=model._rng, backend=backend)
    model._publish()


def _rows(model: Any, X: Any, w: Any, size: int, backend: Any) -> tuple[Any, Any]:
    """``size`` random rows of ``X`` and ``w`` (in their order), or all if fewer."""
    n = X.shape[0]
    if size >= n:
        return X, w
    xp = backend.xp
    idx = take_index(np.sort(model._rng.choice(n, size=size, replace=False)), X, xp)
    return xp.take(X, idx, axis=0), xp.take(w, idx, axis=0)


#: What ``fit``'s restarts keep of the best one.
SNAPSHOT = (
    "_state", "_rng", "_user_init_pending", "_warmup", "n_steps_", "n_samples_seen_",
    "n_reseeded_", "n_iter_", "converged_", "lower_bound_", "temperature_",
)


def snapshot(model: Any) -> dict:
    snap = {k: getattr(model, k) for k in SNAPSHOT}
    snap["_rng"] = copy.deepcopy(model._rng)
    return snap


def restore(model: Any, snap: dict) -> None:
    for k, v in snap.items():
        setattr(model, k, v)
    model._publish()

