"""The command line's files as a batch-EM source: ``online-gmm fit`` is the estimator's
``fit`` by passes over the files, out of core (at most one batch of rows in memory, plus the
initialisation's sample).

Each iteration reads every source once, in batches of ``batch_size`` rows
(:func:`online_gmm._io.readers.iter_batches`), and sums their statistics by the pairwise rule:
the same statistics as one array's, so the fit equals ``fit`` of the rows loaded into
memory (to rounding) whenever the initialisation draws the same rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .._em.batch import Rows, RowSource
from .._math.state import BatchStats, MixtureState, empty_stats, merge_stats
from .readers import iter_batches
from .sources import DataError, ReadOptions, Source, source_names


class FileRows(RowSource):
    """The rows of ``sources`` (regular files), read in batches of ``batch_size`` rows at
    every pass. Counting them and their width takes one pass here."""

    def __init__(self, sources: Sequence[Source], opts: ReadOptions, batch_size: int,
                 backend: Any = None) -> None:
        self.sources, self.opts, self.batch_size = list(sources), opts, int(batch_size)
        self.backend = backend
        n, width, dtype = 0, None, None
        for batch in self._batches():
            n += batch.shape[0]
            width, dtype = batch.shape[1], np.result_type(dtype or batch.dtype, batch.dtype)
        if n == 0:
            raise DataError(f"no data: {source_names(self.sources)} holds no row")
        self.n_samples, self.meta = n, np.empty((0, width), dtype=dtype)

    def _batches(self):
        return iter_batches(self.sources, self.batch_size, self.opts)

    def on(self, backend: Any) -> FileRows:
        rows = FileRows.__new__(FileRows)
        rows.__dict__.update(self.__dict__, backend=backend)
        return rows

    def _rows(self, batch: np.ndarray) -> Rows:
        X = np.ascontiguousarray(batch, dtype=self.meta.dtype)
        return Rows(X, np.ones(X.shape[0], dtype=X.dtype), self.backend)

    def statistics(self, state: MixtureState, config: Any, inv_temp: float) -> BatchStats:
        total = empty_stats(config.n_components, self.meta.shape[1], config.covariance_type,
                            np, "cpu")
        for batch in self._batches():
            part = self._rows(batch).statistics(state, config, inv_temp)
            total = merge_stats(total, part, config.covariance_type, np)
        return total

    def statistics_and_entropy(self, state: MixtureState, config: Any,
                               inv_temp: float) -> tuple:
        total = empty_stats(config.n_components, self.meta.shape[1], config.covariance_type,
                            np, "cpu")
        entropy = 0.0
        for batch in self._batches():
            part, h = self._rows(batch).statistics_and_entropy(state, config, inv_temp)
            total = merge_stats(total, part, config.covariance_type, np)
            entropy += h
        return total, entropy

    def sample(self, size: int, rng: np.random.RandomState) -> tuple[np.ndarray, np.ndarray]:
        """``size`` rows drawn at random (as :class:`online_gmm._em.batch.Rows` draws them:
        the same indices), in one pass."""
        n = self.n_samples
        keep = (np.arange(n) if size >= n
                else np.sort(rng.choice(n, size=size, replace=False)))
        parts, start = [], 0
        for batch in self._batches():
            stop = start + batch.shape[0]
            lo, hi = np.searchsorted(keep, [start, stop])
            if hi > lo:
                parts.append(np.asarray(batch[keep[lo:hi] - start], dtype=self.meta.dtype))
            start = stop
        X = np.ascontiguousarray(np.concatenate(parts))
        return X, np.ones(X.shape[0], dtype=X.dtype)
