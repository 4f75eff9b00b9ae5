"""``BaseOnlineMixture``: the one ``fit`` loop of both estimators, as scikit-learn's
``BaseMixture`` holds its: initialisations (``n_init``, best kept), batch-EM iterations to
``tol`` or ``max_iter``, ``warm_start``, ``verbose``, the convergence warning and the update
lock. What an iteration computes is :func:`online_gmm._em.batch.iteration` (the plain
mixture's EM or the variational mixture's, by the step's ``EMConfig``); where the rows come
from is a source (in memory here, a Dask array through :mod:`online_gmm._em.dask`)."""

from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.validation import validate_data

from .._backends import select_backend
from .._em import dask as _dask
from .._em.batch import Rows, RowSource, Source, iteration
from .._em.consistency import check_fitted_parameters
from .._em.fit_init import FitInit, initial_state
from .._em.online import check_finite_state
from .._math import array_api as _array_api
from .._math.array_api import device
from .locks import update_lock


class BaseOnlineMixture:
    """``fit`` by batch EM, for an online mixture estimator (see
    :class:`~online_gmm.OnlineGaussianMixture`). The estimator provides ``_config``,
    ``_schedules``, ``_reset``, ``_publish`` and the parameter checks."""

    def fit(self, X: Any, y: Any = None) -> BaseOnlineMixture:
        """Estimate the parameters by batch EM, as scikit-learn's ``fit``.

        ``n_init`` initialisations (one when continuing a fitted model with
        ``warm_start``), each followed by EM iterations, each one exact pass over every row
        of ``X``, until the change of the lower bound is below ``tol`` or ``max_iter``
        iterations have run (then a ``ConvergenceWarning``); the initialisation of
        highest lower bound is kept. With an annealing schedule the E-step's temperature
        follows it over the iterations (deterministic annealing; convergence is checked
        once the temperature stops changing). Forgetting does not apply to ``fit``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            NumPy, any array-API array, or a ``dask.array.Array`` (distributed EM: one
            reduction of the statistics per iteration).
        y : Ignored
            Not used, present for API consistency.

        Returns
        -------
        self : object
            The fitted estimator; :meth:`partial_fit` continues from it.

        Examples
        --------
        >>> from sklearn.datasets import make_blobs
        >>> from online_gmm import OnlineGaussianMixture
        >>> X, _ = make_blobs(n_samples=300, n_features=2, centers=3, random_state=0)
        >>> gmm = OnlineGaussianMixture(n_components=3, random_state=0).fit(X)
        >>> gmm.converged_, gmm.means_.shape
        (True, (3, 2))
        """
        with update_lock(self):
            before = dict(self.__dict__)
            try:
                self._fit(X)
            except BaseException:  # nothing changed: the model is as it was
                self.__dict__.clear()
                self.__dict__.update(before)
                raise
        self._warn_if_not_converged()
        return self

    def fit_predict(self, X: Any, y: Any = None) -> Any:
        """Fit, then return the component of each sample (as scikit-learn's).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The samples.
        y : Ignored
            Not used, present for API consistency.

        Returns
        -------
        labels : array of shape (n_samples,)
            The component of each sample, as :meth:`predict` after :meth:`fit`.

        Examples
        --------
        >>> from sklearn.datasets import make_blobs
        >>> from online_gmm import OnlineGaussianMixture
        >>> X, _ = make_blobs(n_samples=300, n_features=2, centers=3, random_state=0)
        >>> labels = OnlineGaussianMixture(n_components=3, random_state=0).fit_predict(X)
        >>> labels.shape
        (300,)
        """
        return self.fit(X).predict(X)

    # ------------------------------------------------------------------ the loop
    def _fit(self, X: Any) -> None:
        self._validate_hyperparameters()
        # (warm start needs a model with every component seeded: batch EM seeds none)
        do_init = not (self.warm_start and self.__sklearn_is_fitted__()
                       and bool(_array_api.to_numpy(self._state.seeded).all()))
        source, X_like, backend = self._fit_source(X, reset=do_init)
        xp = backend.xp
        if source.n_samples < self.n_components:
            raise ValueError(
                "Expected n_samples >= n_components "
                f"but got n_components = {self.n_components}, "
                f"n_samples = {source.n_samples}"
            )
        init = self._fit_init()
        if init.init_size is not None and min(init.init_size, source.n_samples) < self.n_components:
            raise ValueError(
                f"init_size={init.init_size} is smaller than n_components="
                f"{self.n_components}: fit's start needs at least one row per component."
            )
        if init.user_given:
            self._validate_initial_parameters(X_like.shape[1])
        if do_init:
            self._reset(X_like, xp)
        else:
            check_fitted_parameters(self, "fit (warm_start=True)")
            self._check_namespace(xp, "fit")
        rng = check_random_state(self.random_state)
        config, schedules = self._config(), self._schedules()
        first_step = 0 if do_init else self.n_steps_  # (warm_start: the schedule goes on)
        best, clock = None, _Clock()
        for i in range(self.n_init if do_init else 1):
            self._verbose_init_start(i, clock)
            state = (initial_state(source, X_like.shape[1], init=init, config=config, rng=rng,
                                   backend=backend)
                     if do_init else self._state)
            lower_bound = -np.inf if do_init else self.lower_bound_
            bounds: list[float] = []
            converged, n_iter = False, 0
            for n_iter in range(1, self.max_iter + 1):
                previous = lower_bound
                temperature = schedules.temperature_at(first_step + n_iter - 1)
                state, lower_bound = iteration(state, source, config, backend, temperature)
                check_finite_state(state, backend)
                bounds.append(lower_bound)
                change = lower_bound - previous
                self._verbose_iteration(n_iter, change, clock)
                annealing = schedules.temperature_at(first_step + n_iter) != temperature
                if abs(change) < self.tol and not annealing:
                    converged = True
                    break
            self._verbose_init_end(lower_bound, converged, clock)
            if best is None or lower_bound > best[0] or best[0] == -np.inf:
                best = (lower_bound, state, n_iter, bounds, converged)
        lower_bound, state, n_iter, bounds, converged = best
        self.__dict__.update({
            "_state": state, "_rng": rng, "_warmup": None, "_user_init_pending": False,
            "n_iter_": n_iter, "n_steps_": first_step + n_iter, "converged_": converged,
            "lower_bound_": lower_bound, "lower_bounds_": bounds,
            # (the rows behind the state: all of them after an iteration, the start's
            # evidence with max_iter=0)
            "n_samples_seen_": (source.n_samples if n_iter else
                                int(round(float(_array_api.to_numpy(state.mass).sum())))),
            "n_reseeded_": 0,
            "temperature_": schedules.temperature_at(max(first_step + n_iter - 1, 0)),
        })
        self._publish()

    def _fit_source(self, X: Any, reset: bool) -> tuple[Source, Any, Any]:
        """``(source, X_like, backend)``: the rows of ``X`` checked (the features
        recorded when ``reset``), an array standing for them (``X`` itself in memory, an
        empty host array of their dtype for a Dask array) and the backend."""
        if _dask.is_dask_array(X):
            X = _dask.source(X)
        if isinstance(X, RowSource):  # (the command line's files, a Dask array)
            meta = validate_data(self, X.meta, reset=reset, ensure_min_samples=0, dtype=None)
            backend = select_backend(meta)
            return X.on(backend), meta, backend
        xp = _array_api.input_namespace(X)
        X = validate_data(self, X, reset=reset, dtype=[xp.float64, xp.float32],
                          ensure_min_samples=2)
        backend = select_backend(X)
        w = backend.xp.ones(X.shape[0], dtype=X.dtype, device=device(X))
        return Rows(X, w, backend), X, backend

    def _fit_init(self) -> FitInit:
        return FitInit(
            init_params=self.init_params, init_size=self.init_size,
            warmup_size=self.warmup_size, warmup_restarts=int(self.warmup_restarts),
            max_iter=int(self.max_iter), tol=float(self.tol),
            weights_init=self.weights_init, means_init=self.means_init,
            precisions_init=self.precisions_init,
        )

    def _warn_if_not_converged(self) -> None:
        if not self.converged_ and self.max_iter > 0:
            warnings.warn(
                "Best performing initialization did not converge. Try different init "
                "parameters, or increase max_iter, tol, or check for degenerate data.",
                ConvergenceWarning, stacklevel=3,
            )

    # ------------------------------------------------------------------ verbose (sklearn's)
    def _verbose_init_start(self, n_init: int, clock: _Clock) -> None:
        if self.verbose:
            print(f"Initialization {n_init}")
            clock.init = clock.iteration = time.time()

    def _verbose_iteration(self, n_iter: int, change: float, clock: _Clock) -> None:
        if self.verbose and n_iter % self.verbose_interval == 0:
            if self.verbose == 1:
                print(f"  Iteration {n_iter}")
            else:
                now = time.time()
                print(f"  Iteration {n_iter}\t time lapse {now - clock.iteration:.5f}s\t "
                      f"ll change {change:.5f}")
                clock.iteration = now

    def _verbose_init_end(self, lower_bound: float, converged: bool, clock: _Clock) -> None:
        message = "converged" if converged else "did not converge"
        if self.verbose == 1:
            print(f"Initialization {message}.")
        elif self.verbose >= 2:
            print(f"Initialization {message}. time lapse {time.time() - clock.init:.5f}s\t "
                  f"lower bound {lower_bound:.5f}.")


class _Clock:
    """The times ``verbose`` reports (kept out of the estimator's attributes)."""

    init = iteration = 0.0
