"""Scale-out with Dask: one online-EM step over a ``dask.array``, its statistics computed
where the data lives.

The contract's batch statistics are sums, so a step over an array split into row-chunks is

1. *seed* (only when the step has components to seed or reseed): the seeding sample, by
   default the first row-chunk, is fetched to the client and seeded exactly as
   :func:`online_gmm._online_em.em_step` seeds a batch;
2. *E-step*: the parameters are laid out once (:func:`online_gmm._estep.prepare`, a few
   ``K x D`` arrays) and every worker computes the statistics of the chunks it holds
   (``backend.batch_statistics`` of the chunk's backend);
3. *reduce*: the per-chunk statistics are merged on the workers by the contract's pairwise
   rule (:func:`online_gmm._stats.merge_stats`) in a balanced tree in chunk order, so the
   result is deterministic; only one ``K``-component set of statistics reaches the client;
4. *M-step*: on the client, inside :func:`online_gmm._online_em.advance` (the step every
   caller takes: schedules, initial parameters, finiteness, RNG restore), with the
   estimator's bookkeeping (step counter, counters, commit-or-nothing).

Nothing here imports Dask until a Dask array arrives: Dask stays an optional extra
(``pip install "online-gmm[dask]"``). The estimator hands Dask input to :func:`partial_fit`
and :func:`fit`; both may also be called directly. See ``docs/dask.md``.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from sklearn.utils.validation import assert_all_finite

from ._backend import select_backend, use_backend
from ._epochs import fit_restarts, run_epochs
from ._estep import Prepared
from ._locks import update_lock
from ._online_em import Hooks, StepInfo
from ._stats import BatchStats, empty_stats, merge_stats

if TYPE_CHECKING:  # pragma: no cover
    from ._estimator import OnlineGaussianMixture

SeedFrom = Literal["first_chunk", "all"]
_SEED_FROM = ("first_chunk", "all")

__all__ = ["is_dask_array", "partial_fit", "fit"]


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
        K, D = prepared.mu_c.shape
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


def _check_features(model: OnlineGaussianMixture, X: Any, reset: bool) -> None:
    n_features = int(X.shape[1])
    if reset:
        model.n_features_in_ = n_features
        if hasattr(model, "feature_names_in_"):
            del model.feature_names_in_
    elif hasattr(model, "n_features_in_") and n_features != model.n_features_in_:
        raise ValueError(
            f"X has {n_features} features, but {type(model).__name__} is expecting "
            f"{model.n_features_in_} features as input."
        )


def _check_sample_weight(model: OnlineGaussianMixture, sample_weight: Any, X: Any) -> Any:
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
    w = model._check_sample_weight(sample_weight, np.empty((n, 0), dtype=X.dtype), np)
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
        The parameters, laid out by :func:`online_gmm._estep.prepare`.
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


def _step(model: OnlineGaussianMixture, X: Any, w: Any, seed_from: str, backend: Any) -> StepInfo:
    """One online-EM step over the Dask array ``X``: :func:`advance` with its seeding sample
    fetched to the client and its statistics computed on the workers. Commits to ``model``
    only when the new state is complete and finite."""
    sample: list = []

    def gather(_X: Any, _w: Any) -> tuple[np.ndarray, np.ndarray]:
        if not sample:  # fetched once per step, and only when something is seeded
            sample.append(_seeding_sample(X, w, seed_from))
        return sample[0]

    hooks = Hooks(gather=gather,
                  statistics=lambda p, inv_temp: statistics(X, w, p, inv_temp, backend.name))
    return model._step(X, w, backend, hooks)


def _rollback_on_error(model: OnlineGaussianMixture):
    """Context: on any exception restore the model's attributes (commit-or-nothing)."""
    from contextlib import contextmanager

    @contextmanager
    def guard():
        before = dict(model.__dict__)
        try:
            yield
        except BaseException:
            model.__dict__.clear()
            model.__dict__.update(before)
            raise

    return guard()


# ---------------------------------------------------------------------- public entry points
def partial_fit(
    model: OnlineGaussianMixture,
    X: Any,
    sample_weight: Any = None,
    *,
    seed_from: SeedFrom = "first_chunk",
) -> OnlineGaussianMixture:
    """One online-EM step of ``model`` over the whole Dask array ``X``.

    The statistics of every row-chunk are computed on the workers (the active Dask scheduler:
    a ``distributed.Client`` if one exists), merged by the pairwise rule, and folded in by one
    M-step, with exactly the bookkeeping of :meth:`OnlineGaussianMixture.partial_fit`.

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
        (fetched only on such a step). With ``"all"`` every step equals
        ``model.partial_fit(X.compute())``; with ``"first_chunk"`` a step that seeds nothing
        does, and a seeding step differs only in the candidates its seeds are drawn from.

    Returns
    -------
    model : OnlineGaussianMixture
    """
    _check_seed_from(seed_from)
    model._validate_hyperparameters()
    X = _check_X(X)
    first = not model.__sklearn_is_fitted__()
    with update_lock(model), _rollback_on_error(model):
        _check_features(model, X, reset=first)
        w = _check_sample_weight(model, sample_weight, X)
        meta = np.empty((0, X.shape[1]), dtype=X.dtype)
        backend = select_backend(meta)
        model._start_call(meta, backend.xp, first)
        info = _step(model, X, w, seed_from, backend)
        model.n_iter_ = model.n_steps_
        if info.weight > 0:
            model.lower_bound_ = info.loglik / info.weight
    return model


def step_bounds(X: Any, batch_size: int) -> list[tuple[int, int]]:
    """Row ranges of :func:`fit`'s steps: consecutive whole row-chunks, grouped until a
    group holds at least ``batch_size`` rows (a larger chunk is one step by itself).

    Parameters
    ----------
    X : dask.array.Array
        The data.
    batch_size : int
        The least number of rows a step covers (the last group may hold fewer).

    Returns
    -------
    list of (start, stop)
    """
    bounds: list[tuple[int, int]] = []
    start = stop = 0
    for size in X.chunks[0]:
        stop += int(size)
        if stop - start >= batch_size:
            bounds.append((start, stop))
            start = stop
    if stop > start:
        bounds.append((start, stop))
    return bounds


def fit(
    model: OnlineGaussianMixture, X: Any, *, seed_from: SeedFrom = "first_chunk"
) -> OnlineGaussianMixture:
    """:meth:`OnlineGaussianMixture.fit` on a Dask array: epochs of distributed steps.

    Reset (unless ``warm_start``), then epochs until the per-epoch change of the mean
    log-likelihood is below ``tol`` or ``max_iter`` epochs have run, best of ``n_init``
    restarts, as the estimator's ``fit``. What differs is the mini-batch: rows are not
    shuffled one by one (that would move every sample across the cluster each epoch);
    instead a step covers whole row-chunks (:func:`step_bounds`: consecutive chunks grouped
    to at least ``batch_size`` rows), and each epoch visits the steps in an order drawn from
    the model's ``random_state``. Every step is one :func:`partial_fit`-step, its chunks'
    statistics computed in parallel where they live.

    So the result equals, to rounding, the single-process loop that feeds the same row
    groups to ``partial_fit`` in the same order (``tests/test_dask.py`` checks it); it does
    not equal ``model.fit(X.compute())``, whose row shuffle it deliberately avoids. Rechunk
    the rows (``X.rechunk({0: rows})``) to choose the step size; shuffle the rows once
    beforehand (``X[np.random.permutation(n)]``) if the array is sorted.

    Parameters
    ----------
    model : OnlineGaussianMixture
        Fitted in place.
    X : dask.array.Array of shape (n_samples, n_features)
        The data.
    seed_from : {"first_chunk", "all"}, default="first_chunk"
        See :func:`partial_fit`.

    Returns
    -------
    model : OnlineGaussianMixture
    """
    _check_seed_from(seed_from)
    model._validate_hyperparameters()
    X = _check_X(X)
    continuing = model.warm_start and model.__sklearn_is_fitted__()
    with update_lock(model), _rollback_on_error(model):
        _check_features(model, X, reset=not continuing)
        if model.means_init is not None or model.weights_init is not None:
            model._validate_initial_parameters(X.shape[1])
        meta = np.empty((0, X.shape[1]), dtype=X.dtype)
        backend = select_backend(meta)
        bounds = step_bounds(X, int(model.batch_size))
        fit_restarts(model,
            meta, backend.xp, continuing,
            lambda: _fit_epochs(model, X, bounds, seed_from, backend),
        )
    model._warn_if_not_converged()
    return model


def _fit_epochs(
    model: OnlineGaussianMixture,
    X: Any,
    bounds: list[tuple[int, int]],
    seed_from: str,
    backend: Any,
) -> None:
    """The estimator's epoch loop over groups of whole row-chunks, in a random order."""

    def epoch_steps():
        for g in model._rng.permutation(len(bounds)):
            start, stop = bounds[int(g)]
            yield _step(model, X[start:stop], None, seed_from, backend)

    run_epochs(model, epoch_steps)
