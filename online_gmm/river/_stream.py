"""The part both river estimators share: the parameters, the feature order, the rows gathered
into batches, and the :class:`~online_gmm.OnlineGaussianMixture` they are folded into.

Nothing of the mixture's math is here: a full batch goes to the estimator's ``partial_fit``,
inference to its ``predict`` / ``score_samples``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

    from .._estimators.gaussian import OnlineGaussianMixture

#: The checks of ``river.checks`` that feed rows with features missing or added: a mixture
#: is a density over one fixed vector of features, so such a row is an error here (as for
#: river's own wrapper of scikit-learn estimators, ``river.compat``, which skips the same).
FEATURE_SET_CHECKS = frozenset({
    "check_emerging_features",
    "check_disappearing_features",
    "check_radically_disappearing_features",
})

#: The parameters passed on to ``OnlineGaussianMixture`` unchanged (``random_state`` goes as
#: the generator made from it).
ESTIMATOR_PARAMS = (
    "n_components", "covariance_type", "reg_covar", "batch_size", "init_params",
    "warmup_size", "warmup_restarts", "forgetting", "forgetting_rate", "temperature_init",
    "temperature_final", "anneal_steps", "anneal_schedule", "seed_mass", "dead_threshold",
    "max_reseed",
)


class MixtureStream:
    """Rows of dicts gathered into batches for an ``OnlineGaussianMixture``.

    A mixin for river estimators (it defines ``__init__``, whose signature river reads for
    ``clone`` and ``repr``); the parameters are documented on the public classes.
    """

    def __init__(
        self,
        n_components: int = 1,
        *,
        covariance_type: str = "diag",
        batch_size: int = 256,
        reg_covar: float = 1e-6,
        init_params: str = "k-means++",
        warmup_size: int | str = "auto",
        warmup_restarts: int = 3,
        forgetting: str = "responsibility",
        forgetting_rate: float | Callable[[int], float] = 0.0,
        temperature_init: float = 1.0,
        temperature_final: float = 1.0,
        anneal_steps: int = 0,
        anneal_schedule: str | Callable[[int], float] = "exponential",
        seed_mass: float = 1.0,
        dead_threshold: float = 1e-3,
        max_reseed: int | None = None,
        random_state: int | np.random.RandomState | None = None,
    ) -> None:
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.batch_size = batch_size
        self.reg_covar = reg_covar
        self.init_params = init_params
        self.warmup_size = warmup_size
        self.warmup_restarts = warmup_restarts
        self.forgetting = forgetting
        self.forgetting_rate = forgetting_rate
        self.temperature_init = temperature_init
        self.temperature_final = temperature_final
        self.anneal_steps = anneal_steps
        self.anneal_schedule = anneal_schedule
        self.seed_mass = seed_mass
        self.dead_threshold = dead_threshold
        self.max_reseed = max_reseed
        self.random_state = random_state
        # made now, so that a copy of a fresh model draws the same numbers as the model
        # (river's convention for ``seed=None``); an int seeds it, an instance is used as is
        self._rng = (random_state if isinstance(random_state, np.random.RandomState)
                     else np.random.RandomState(random_state))
        #: The mixture fitted so far (None until the first step).
        self.mixture: OnlineGaussianMixture | None = None
        self._features: tuple[Hashable, ...] | None = None
        self._feature_set: frozenset = frozenset()
        self._rows: list[list[Any]] = []  # the batch being gathered

    # ------------------------------------------------------------------ public state
    @property
    def features(self) -> tuple[Hashable, ...] | None:
        """The feature names (the first row's keys, sorted): the columns of the mixture's
        arrays, in order; None before the first row."""
        return self._features

    @property
    def n_pending(self) -> int:
        """Rows learned but not yet folded into :attr:`mixture` (fewer than ``batch_size``)."""
        return len(self._rows)

    @property
    def n_samples_seen(self) -> int:
        """Rows learned so far, pending ones included."""
        done = 0 if self.mixture is None else int(self.mixture.n_samples_seen_)
        return done + len(self._rows)

    # ------------------------------------------------------------------ learning
    def learn_one(self, x: Mapping[Hashable, Any]) -> None:
        """Learn one row: it joins the batch being gathered, and the batch is folded into the
        mixture by one online-EM step once it holds ``batch_size`` rows.

        Parameters
        ----------
        x : dict
            The row: a number for each feature, keys in any order (the first row fixes
            the features).

        Raises
        ------
        ValueError
            If ``x`` misses a feature or has a new one (the error names them), or a value is
            not a finite number.
        """
        features = self._features
        if features is None:
            features = self._start(list(x))
        row = self._row(x, features)  # (the hot path: a few hundred nanoseconds a row)
        rows = self._rows
        rows.append(row)
        if len(rows) >= self.batch_size:
            self._step()

    def learn_many(self, X: pd.DataFrame) -> None:
        """Learn the rows of a data frame, in order: the same steps as ``learn_one`` on each
        row (the same batches, the same model), without a Python loop over the rows.

        Parameters
        ----------
        X : pandas.DataFrame
            One column per feature, in any order (the first call fixes the features,
            unless rows were learned before).
        """
        if self._features is None:
            self._start(list(X.columns))
        A = self._frame(X, copy=True)
        i, n, size = 0, A.shape[0], int(self.batch_size)
        while i < n:
            if self._rows:  # complete the batch being gathered first
                take = min(size - len(self._rows), n - i)
                self._rows.extend(A[i : i + take].tolist())
                i += take
                if len(self._rows) >= size:
                    self._step()
            elif n - i >= size:  # whole batches straight from the frame
                self._fit(A[i : i + size])
                i += size
            else:
                self._rows.extend(A[i:].tolist())
                i = n

    def _start(self, keys: list[Hashable]) -> tuple[Hashable, ...]:
        """Fix the features: ``keys``, sorted (so that the order of a dict's keys never
        matters, not even the first row's: river's ``check_shuffle_features_no_impact``),
        or in their order if they do not sort (names of mixed types). The parameters are
        checked now rather than at the first step."""
        if not keys:
            raise ValueError(f"{type(self).__name__} needs at least one feature: got none.")
        if len(set(keys)) != len(keys):
            raise ValueError(f"{type(self).__name__} got duplicate feature names: {keys!r}.")
        self._new_mixture()._validate_params()  # (a fresh, unfitted model: nothing kept)
        try:
            ordered = sorted(keys)
        except TypeError:
            ordered = list(keys)
        self._features = tuple(ordered)
        self._feature_set = frozenset(ordered)
        return self._features

    def _new_mixture(self) -> OnlineGaussianMixture:
        from .._estimators.gaussian import OnlineGaussianMixture

        params = {name: getattr(self, name) for name in ESTIMATOR_PARAMS}
        return OnlineGaussianMixture(**params, random_state=self._rng)

    def _step(self) -> None:
        """Fold the gathered rows into the mixture (one ``partial_fit`` step)."""
        rows, self._rows = self._rows, []  # (dropped if the step raises: it left the model
        self._fit(np.array(rows, dtype=np.float64))  # as it was, and the caller sees why)

    def _fit(self, X: np.ndarray) -> None:
        model = self.mixture
        if model is None:
            model = self._new_mixture()
            model.partial_fit(X)
            self.mixture = model  # (only once fitted: a failed first step leaves None)
        else:
            model.partial_fit(X)

    # ------------------------------------------------------------------ rows
    def _row(self, x: Mapping[Hashable, Any], features: tuple[Hashable, ...]) -> list[Any]:
        """The values of ``x`` in the model's feature order, checked."""
        try:
            row = [x[k] for k in features]
        except KeyError:
            raise self._feature_error(list(x)) from None
        if len(x) != len(row):
            raise self._feature_error(list(x))
        try:
            total = sum(row)  # one pass: a NaN or an infinity makes the sum non-finite
            suspect = bool(total - total != 0)  # (NaN, or inf - inf)
        except (TypeError, ValueError):  # (a string, None, an array)
            suspect = True
        if suspect:
            self._check_values(row, features)
        return row

    def _check_values(self, row: list[Any], features: tuple[Hashable, ...]) -> None:
        bad = []
        for name, value in zip(features, row, strict=True):
            try:
                if not math.isfinite(float(value)) or isinstance(value, str):
                    bad.append(name)
            except (TypeError, ValueError):
                bad.append(name)
        if bad:
            raise ValueError(
                f"{type(self).__name__} takes finite numbers: the values of {bad!r} are not "
                f"({', '.join(repr(row[features.index(b)]) for b in bad)})."
            )

    def _feature_error(self, keys: list[Hashable]) -> ValueError:
        features = self._features or ()
        given = set(keys)
        missing = [k for k in features if k not in given]
        new = [k for k in keys if k not in self._feature_set]
        parts = []
        if missing:
            parts.append(f"misses the features {missing!r}")
        if new:
            parts.append(f"has the new features {new!r}")
        return ValueError(
            f"{type(self).__name__} models the features {list(features)!r} (the first "
            f"row's, fixed): this row {' and '.join(parts)}. A Gaussian mixture is a density over "
            "one fixed set of features; select them upstream (river.compose.Select) and fill "
            "unknown values (None, then river.preprocessing.StatImputer)."
        )

    def _frame(self, X: pd.DataFrame, copy: bool = False) -> np.ndarray:
        """The frame's values as a float64 array in the model's feature order, checked."""
        features = self._features or ()
        columns = list(X.columns)
        if len(columns) != len(features) or set(columns) != self._feature_set:
            raise self._feature_error(columns)
        try:
            A = X[list(features)].to_numpy(dtype=np.float64, copy=copy)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{type(self).__name__} takes finite numbers: {exc}") from None
        if not np.isfinite(A).all():
            bad = [f for f, ok in zip(features, np.isfinite(A).all(axis=0), strict=True)
                   if not ok]
            raise ValueError(
                f"{type(self).__name__} takes finite numbers: the columns {bad!r} hold NaN "
                "or infinite values."
            )
        return A

    # ------------------------------------------------------------------ inference
    def _inference_row(self, x: Mapping[Hashable, Any]) -> np.ndarray | None:
        """``x`` as a (1, n_features) array for the mixture, or None while there is no
        mixture yet (a row with other features than the model's is an error once the first
        row has fixed them)."""
        features = self._features
        if features is None:
            return None
        row = self._row(x, features)
        if self.mixture is None:
            return None
        return np.array([row], dtype=np.float64)

    def _inference_frame(self, X: pd.DataFrame) -> np.ndarray | None:
        if self._features is None:
            return None
        A = self._frame(X)
        return None if self.mixture is None else A

    # ------------------------------------------------------------------ river's checks
    @classmethod
    def _unit_test_params(cls):
        yield {"n_components": 3, "batch_size": 32, "random_state": 0}
        yield {"n_components": 2, "covariance_type": "full", "batch_size": 8,
               "forgetting_rate": 0.01, "random_state": 1}

    def _unit_test_skips(self) -> set[str]:
        return set(FEATURE_SET_CHECKS)
