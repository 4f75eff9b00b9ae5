"""Dask arrays as an input adapter of the estimators: their rows' statistics computed
where the data lives, the estimator's own loop and step around them.

The contract's batch statistics are sums, so a pass over an array split into row-chunks is

1. *E-step*: the parameters are laid out once (:func:`online_gmm._math.estep.prepare`, a few
   ``K x D`` arrays) and every worker computes the statistics of the chunks it holds
   (``backend.batch_statistics`` of the chunk's backend);
2. *reduce*: the per-chunk statistics are merged on the workers by the contract's pairwise
   rule (:func:`online_gmm._math.state.merge_stats`) in a balanced tree in chunk order, so the
   result is deterministic; only one ``K``-component set of statistics reaches the client;
3. *M-step*: on the client, by the estimator.

``fit`` of a Dask array is batch EM over :class:`DaskRows` (one reduction per iteration;
the initialisation on rows fetched to the client); ``partial_fit`` of one is one online
step over a :class:`DaskBatch`, whose hooks compute its statistics on the workers and
fetch its seeding sample (by default the first row-chunk) only when a component is
seeded. This module reads and writes nothing of the estimator: the estimator asks it for
a source, a batch and their checks.

Nothing here imports Dask until a Dask array arrives: Dask stays an optional extra
(``pip install "online-gmm[dask]"``). See ``docs/dask.md``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from sklearn.utils.validation import assert_all_finite

from .._backends import select_backend, use_backend
from .._math.estep import Prepared
from .._math.state import BatchStats, empty_stats, merge_stats
from .batch import RowSource
from .expectation import step_prepared
from .online import Hooks

if TYPE_CHECKING:  # pragma: no cover
    from .._estimators.gaussian import OnlineGaussianMixture

SeedFrom = Literal["first_chunk", "all"]
_SEED_FROM = ("first_chunk", "all")

__all__ = ["is_dask_array", "partial_fit", "fit", "source", "batch", "seeding_from"]


def is_dask_array(X: Any) -> bool:
    """Whether ``X`` is a ``dask.array.Array`` (never imports Dask itself).

    Parameters
    ----------
    X : object
        Anything.

    Returns
    -------
    bool
        True for a Dask array; False for everything else, and whenever Dask has not been
        imported (then ``X`` cannot be one).
    """
    da = sys.modules.get("dask.array")
    array_type = getattr(da, "Array", None)
    return array_type is not None and isinstance(X, array_type)


# ---------------------------------------------------------------------- worker-side tasks
def _block_statistics(
    block: np.ndarray,
    weight: np.ndarray | None,
    prepared: Prepared,
    inv_temp: float,
    backend: str,
) -> BatchStats:
    """Statistics of one row-chunk (runs on a worker). Validates the chunk first."""
    block = np.asarray(block)
    assert_all_finite(block, input_name="X")
    if weight is None:
        weight = np.ones(block.shape[0], dtype=block.dtype)
    else:
        weight = np.asarray(weight, dtype=block.dtype)
        _check_weight_values(weight)
    if block.shape[0] == 0:
        K, D = prepared.n_components, prepared.shift.shape[0]
        return empty_stats(K, D, prepared.covariance_type, np, "cpu")
    with use_backend(backend):  # the client's choice, in the worker's process too
        return select_backend(block).batch_statistics(block, weight, prepared, inv_temp)


def _merge(a: BatchStats, b: BatchStats, covariance_type: str) -> BatchStats:
    """Pairwise merge of two chunks' statistics (runs on a worker)."""
    return merge_stats(a, b, covariance_type, np)


def _check_weight_values(w: np.ndarray) -> None:
    if not np.all(np.isfinite(w)):
        raise ValueError("sample_weight contains NaN or infinity.")
    if np.any(w < 0):
        raise ValueError("sample_weight must be non-negative.")


# ---------------------------------------------------------------------- input checks
def _check_X(X: Any) -> Any:
    """2-D, real, known row-chunk sizes, one column chunk; float32 kept, else float64."""
    if X.ndim != 2:
        raise ValueError(
            f"Expected a 2D dask array, got {X.ndim}D with shape {X.shape}. Reshape it to "
            "(n_samples, n_features)."
        )
    if any(np.isnan(c) for c in X.chunks[0]):
        raise ValueError(
            "The dask array has unknown chunk sizes; call X.compute_chunk_sizes() first."
        )
    if X.shape[0] < 1:
        raise ValueError(
            f"Found array with 0 sample(s) (shape={X.shape}) while a minimum of 1 is required."
        )
    kind = np.dtype(X.dtype).kind
    if kind not in "biuf":
        raise ValueError(f"X must hold real numbers, got dtype {X.dtype}.")
    if X.dtype not in (np.float32, np.float64):
        X = X.astype(np.float64)
    if X.numblocks[1] > 1:
        X = X.rechunk({1: -1})
    return X


def _check_sample_weight(check_host: Any, sample_weight: Any, X: Any) -> Any:
    """``None`` (ones, made on the workers) or a dask array chunked like X's rows."""
    import dask.array as da

    if sample_weight is None:
        return None
    n = int(X.shape[0])
    if is_dask_array(sample_weight):
        if sample_weight.ndim != 1 or sample_weight.shape[0] != n:
            raise ValueError(
                f"sample_weight must have shape ({n},), got {tuple(sample_weight.shape)}."
            )
        if np.dtype(sample_weight.dtype).kind not in "biuf":
            raise ValueError("sample_weight must be real numbers.")
        # values are checked on the workers, chunk by chunk
        return sample_weight.astype(X.dtype).rechunk((X.chunks[0],))
    # host weights: the estimator's own validation (shape, reals, finite, non-negative)
    w = check_host(sample_weight, np.empty((n, 0), dtype=X.dtype), np)
    return da.from_array(w, chunks=(X.chunks[0],))


def _check_seed_from(seed_from: str) -> None:
    if seed_from not in _SEED_FROM:
        raise ValueError(f"seed_from must be one of {list(_SEED_FROM)}, got {seed_from!r}.")


# ---------------------------------------------------------------------- one step
def _seeding_sample(X: Any, w: Any, seed_from: str) -> tuple[np.ndarray, np.ndarray]:
    """The rows (and weights) seeding draws from, fetched to the client."""
    import dask

    if seed_from == "first_chunk":
        sizes = X.chunks[0]
        i = next((j for j, size in enumerate(sizes) if size > 0), 0)
        start = int(sum(sizes[:i]))
        stop = start + int(sizes[i])
        X, w = X[start:stop], (None if w is None else w[start:stop])
    if w is None:
        (Xs,) = dask.compute(X)
        ws = np.ones(Xs.shape[0], dtype=Xs.dtype)
    else:
        Xs, ws = dask.compute(X, w)
    Xs = np.ascontiguousarray(Xs)
    assert_all_finite(Xs, input_name="X")
    ws = np.asarray(ws, dtype=Xs.dtype)
    _check_weight_values(ws)
    return Xs, ws


def _tree_reduce(parts: list, covariance_type: str) -> Any:
    """Balanced pairwise merge in chunk order: deterministic for a given chunking."""
    from dask import delayed

    merge = delayed(_merge, pure=True)
    while len(parts) > 1:
        merged = [
            merge(parts[i], parts[i + 1], covariance_type) for i in range(0, len(parts) - 1, 2)
        ]
        if len(parts) % 2:
            merged.append(parts[-1])
        parts = merged
    return parts[0]


def statistics(X: Any, w: Any, prepared: Prepared, inv_temp: float,
               backend: str = "numba") -> BatchStats:
    """The batch statistics of a whole Dask array, computed chunk by chunk on the workers.

    Parameters
    ----------
    X : dask.array.Array of shape (n_samples, n_features)
        One column chunk (see :func:`_check_X`), float32 or float64.
    w : dask.array.Array of shape (n_samples,) or None
        Sample weights chunked like the rows of ``X``; None for ones.
    prepared : Prepared
        The parameters, laid out by :func:`online_gmm._math.estep.prepare`.
    inv_temp : float
        ``1 / T`` of the E-step.
    backend : {"numba", "reference"}, default="numba"
        The backend the workers run (:func:`online_gmm.core.use_backend`).

    Returns
    -------
    BatchStats
        Equal to ``batch_statistics`` of the concatenated array up to rounding (the pairwise
        merge is exact in exact arithmetic).
    """
    import dask
    from dask import delayed

    blocks = list(X.to_delayed().ravel())
    weights = [None] * len(blocks) if w is None else list(w.to_delayed().ravel())
    p = delayed(prepared, pure=True)  # one key: shipped once per worker, not once per task
    task = delayed(_block_statistics, pure=True)
    parts = [task(b, wb, p, inv_temp, backend) for b, wb in zip(blocks, weights, strict=True)]
    (stats,) = dask.compute(_tree_reduce(parts, prepared.covariance_type))
    return stats


class DaskRows(RowSource):
    """The rows of a Dask array as a batch-EM source (:class:`online_gmm._em.batch.Source`):
    every iteration's statistics computed on the workers and tree-merged (one reduction per
    iteration); initialisation samples fetched to the client."""

    def __init__(self, X: Any, backend: Any = None) -> None:
        self.X = _check_X(X)
        self.backend = backend

    @property
    def meta(self) -> np.ndarray:
        """An empty host array of the rows' width and dtype (what the estimator checks)."""
        return np.empty((0, self.X.shape[1]), dtype=self.X.dtype)

    @property
    def n_samples(self) -> int:
        return int(self.X.shape[0])

    def on(self, backend: Any) -> DaskRows:
        """The same rows, their statistics computed by ``backend`` on the workers."""
        rows = DaskRows.__new__(DaskRows)
        rows.X, rows.backend = self.X, backend
        return rows

    def statistics(self, state: Any, config: Any, inv_temp: float) -> BatchStats:
        p = step_prepared(state, config, self.X.dtype, self.backend)
        return statistics(self.X, None, p, inv_temp, self.backend.name)

    def statistics_and_entropy(self, state: Any, config: Any, inv_temp: float) -> tuple:
        raise TypeError("The variational mixture does not take Dask arrays (yet).")

    def sample(self, size: int, rng: np.random.RandomState) -> tuple[np.ndarray, np.ndarray]:
        """``size`` rows drawn at random (all when ``size >= n_samples``), fetched."""
        import dask

        n = self.n_samples
        X = self.X if size >= n else self.X[np.sort(rng.choice(n, size=size, replace=False))]
        (Xs,) = dask.compute(X)
        Xs = np.ascontiguousarray(Xs)
        assert_all_finite(Xs, input_name="X")
        return Xs, np.ones(Xs.shape[0], dtype=Xs.dtype)


def source(X: Any) -> DaskRows:
    """``fit``'s source of the rows of the Dask array ``X`` (checked: 2-D, real, known
    row-chunk sizes; float32 kept, else float64; columns in one chunk)."""
    return DaskRows(X)


class DaskBatch:
    """One ``partial_fit`` batch given as a Dask array: what the estimator's online step
    needs of it. ``hooks(backend)`` gives the step's :class:`~online_gmm._em.online.Hooks`:
    its statistics computed on the workers, its seeding sample (the first row-chunk, or
    every row with ``seed_from="all"``, :func:`seeding_from`) fetched only when a
    component is seeded."""

    def __init__(self, X: Any, sample_weight: Any, check_host_weights: Any) -> None:
        self.X = _check_X(X)
        self.w = _check_sample_weight(check_host_weights, sample_weight, self.X)
        self.seed_from = _SEEDING_FROM.get()

    @property
    def meta(self) -> np.ndarray:
        return np.empty((0, self.X.shape[1]), dtype=self.X.dtype)

    def split(self, rows: int) -> tuple[np.ndarray, np.ndarray, DaskBatch | None]:
        """``(X_head, w_head, rest)``: the first ``rows`` rows and weights fetched to the
        client (checked), and the batch of the rows after them (None if there are none)."""
        n = int(self.X.shape[0])
        X_head, w_head = _seeding_sample(self.X[:rows], None if self.w is None
                                         else self.w[:rows], "all")
        if rows >= n:
            return X_head, w_head, None
        rest = DaskBatch.__new__(DaskBatch)
        rest.X, rest.w = self.X[rows:], None if self.w is None else self.w[rows:]
        rest.seed_from = self.seed_from
        return X_head, w_head, rest

    def hooks(self, backend: Any) -> Hooks:
        X, w, seed_from = self.X, self.w, self.seed_from
        sample: list = []

        def gather(_X: Any, _w: Any) -> tuple[np.ndarray, np.ndarray]:
            if not sample:  # fetched once per step, and only when something is seeded
                sample.append(_seeding_sample(X, w, seed_from))
            return sample[0]

        return Hooks(gather=gather,
                     statistics=lambda p, inv_temp: statistics(X, w, p, inv_temp, backend.name))


def batch(X: Any, sample_weight: Any, check_host_weights: Any) -> DaskBatch:
    """The Dask array ``X`` (and its weights) as one ``partial_fit`` batch (checked;
    ``check_host_weights(sample_weight, X_like, xp)`` validates weights given on the
    host, as the estimator's own)."""
    return DaskBatch(X, sample_weight, check_host_weights)


_SEEDING_FROM: ContextVar[str] = ContextVar("online_gmm_dask_seed_from", default="first_chunk")


@contextmanager
def seeding_from(seed_from: SeedFrom) -> Iterator[None]:
    """Within the block, a Dask batch's seeding steps draw from ``seed_from``
    (``"first_chunk"`` or ``"all"``, see :func:`partial_fit`)."""
    _check_seed_from(seed_from)
    token = _SEEDING_FROM.set(seed_from)
    try:
        yield
    finally:
        _SEEDING_FROM.reset(token)


# ---------------------------------------------------------------------- public entry points
def partial_fit(
    model: OnlineGaussianMixture,
    X: Any,
    sample_weight: Any = None,
    *,
    seed_from: SeedFrom = "first_chunk",
) -> OnlineGaussianMixture:
    """One online-EM step of ``model`` over the whole Dask array ``X``, choosing the seeding rows.

    ``online_gmm.dask_partial_fit(model, X)`` is ``model.partial_fit(X, sample_weight)``;
    ``seed_from`` says where a step that seeds components draws its seeds. The statistics of
    every row-chunk are computed on the workers (the active Dask scheduler: a
    ``distributed.Client`` if one exists), merged by the pairwise rule, and folded in by one
    M-step, with exactly the bookkeeping of :meth:`OnlineGaussianMixture.partial_fit`. See
    docs/dask.md.

    Parameters
    ----------
    model : OnlineGaussianMixture
        Updated in place.
    X : dask.array.Array of shape (n_samples, n_features)
        The batch. Row-chunks are the unit of work; column chunks are joined first.
    sample_weight : array-like or dask.array.Array of shape (n_samples,), default=None
        Non-negative weights of the samples.
    seed_from : {"first_chunk", "all"}, default="first_chunk"
        Where a step that seeds components (the first step, late components, dead ones)
        draws its seeds: the first row-chunk, fetched to the client, or the whole array
        (fetched only on such a step). With ``"all"``, a step taken while no warm-up is
        buffering rows (``warmup_size=0``, or once the warm-up is over) equals
        ``model.partial_fit(X.compute())``; with ``"first_chunk"`` a step that seeds
        nothing does, and a seeding step differs only in the candidates its seeds are
        drawn from. A batch that completes a warm-up is taken as two steps (the rows the
        buffer has room for, on the client, then the rest on the workers).

    Returns
    -------
    model : OnlineGaussianMixture
        ``model`` itself.

    Examples
    --------
    >>> import dask.array as da
    >>> import numpy as np
    >>> from sklearn.datasets import make_blobs
    >>> from online_gmm import OnlineGaussianMixture, dask_partial_fit
    >>> X, _ = make_blobs(n_samples=2000, n_features=4, centers=3, random_state=0)
    >>> on_dask = OnlineGaussianMixture(3, warmup_size=0, random_state=0)
    >>> _ = dask_partial_fit(on_dask, da.from_array(X, chunks=500), seed_from="all")
    >>> in_memory = OnlineGaussianMixture(3, warmup_size=0, random_state=0).partial_fit(X)
    >>> bool(np.allclose(on_dask.means_, in_memory.means_))
    True
    """
    with seeding_from(seed_from):
        return model.partial_fit(X, sample_weight=sample_weight)


def fit(model: OnlineGaussianMixture, X: Any) -> OnlineGaussianMixture:
    """``model.fit(X)`` on a Dask array: batch EM, each iteration's statistics computed
    where the rows live and reduced once (:class:`DaskRows`); the initialisation runs on
    rows fetched to the client (``init_size`` of them, or the warm-up's sample).

    Parameters
    ----------
    model : OnlineGaussianMixture
        Fitted in place.
    X : dask.array.Array of shape (n_samples, n_features)
        The data.

    Returns
    -------
    model : OnlineGaussianMixture
    """
    return model.fit(X)
