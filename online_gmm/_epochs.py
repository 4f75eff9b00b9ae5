"""The epochs of ``fit``: restarts that keep the best lower bound, and epochs of online-EM
steps until the mean log-likelihood settles. Shared by the estimator and its Dask path,
whose epochs visit groups of row-chunks instead of shuffled mini-batches."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.utils import check_random_state


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
            model._check_namespace(xp, "fit")
        if model.verbose:
            print(f"Initialization {init}")
        epochs()
        if best is None or model.lower_bound_ > best[0]:
            best = (model.lower_bound_, model._snapshot())
    model._restore(best[1])


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
