"""Dask scale-out: a step over a ``dask.array`` on a real two-process ``LocalCluster`` equals
the single-process step on the same data (``online_gmm._em.dask``, ``docs/dask.md``)."""

from __future__ import annotations

import logging
import os
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from online_gmm import OnlineGaussianMixture
from online_gmm._em import dask as _dask

from .._data import assert_same_state, blobs, state_snapshot

da = pytest.importorskip("dask.array", reason="the dask extra is not installed")
distributed = pytest.importorskip("distributed", reason="the dask extra is not installed")

TYPES = ["full", "tied", "diag", "spherical"]
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ATTRS = ("weights_", "means_", "covariances_", "precisions_cholesky_")


@pytest.fixture(scope="module")
def client():
    """A real cluster: two worker processes, one thread each."""
    # worker processes import online_gmm from this checkout even when it is not installed
    path = os.environ.get("PYTHONPATH", "")
    os.environ["PYTHONPATH"] = ROOT + (os.pathsep + path if path else "")
    try:
        with distributed.LocalCluster(
            n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None,
            silence_logs=logging.ERROR,
        ) as cluster, distributed.Client(cluster) as c:
            c.run(_warm_up)  # import online_gmm and load its kernels on both workers at once
            yield c
    finally:
        if path:
            os.environ["PYTHONPATH"] = path
        else:
            del os.environ["PYTHONPATH"]


def _warm_up() -> None:
    X, _, _ = blobs(n=50, K=2, D=2)
    for ct in TYPES:
        OnlineGaussianMixture(2, covariance_type=ct).partial_fit(X)


def _assert_same_model(a, b, rtol=1e-10):
    for name in ATTRS:
        np.testing.assert_allclose(
            getattr(a, name), getattr(b, name), rtol=rtol, atol=1e-12, err_msg=name
        )
    for name in ("n_steps_", "n_samples_seen_", "n_reseeded_", "n_iter_", "n_features_in_"):
        assert getattr(a, name) == getattr(b, name), name
    assert a.temperature_ == b.temperature_
    assert a.lower_bound_ == pytest.approx(b.lower_bound_, rel=1e-12)
    assert a._rng.get_state()[1].tolist() == b._rng.get_state()[1].tolist()


def _workers_used(client, fn) -> set:
    with distributed.get_task_stream(client) as ts:
        fn()
    return {t["worker"] for t in ts.data if "_block_statistics" in str(t["key"])}


def _params(ct, **kw):
    # (no warm-up: under Dask its buffer takes each step's seeding sample, and the rows of
    # the completing step past it are not stepped on, so a Dask step equals a local one
    # without it; docs/algorithm.md, "Warm-up")
    base = dict(
        covariance_type=ct, forgetting_rate=0.02, temperature_init=2.0, anneal_steps=4,
        random_state=0, warmup_size=0,
    )
    base.update(kw)
    return base


def test_is_dask_array():
    assert _dask.is_dask_array(da.zeros((3, 2)))
    assert not _dask.is_dask_array(np.zeros((3, 2)))
    assert not _dask.is_dask_array([[1.0]])


@pytest.mark.parametrize("covariance_type", TYPES)
def test_partial_fit_on_the_cluster_equals_single_process(client, covariance_type):
    X, _, _ = blobs(n=2600, K=4, D=5, seed=3)
    a = OnlineGaussianMixture(4, **_params(covariance_type))
    b = OnlineGaussianMixture(4, **_params(covariance_type))
    a.partial_fit(X[:600])  # seeded locally: the steps below seed nothing
    b.partial_fit(X[:600])
    for lo, hi in ((600, 1600), (1600, 2600)):
        Xd = da.from_array(X[lo:hi], chunks=(170, 5)).persist()  # 6 chunks over 2 workers
        used = _workers_used(client, lambda Xd=Xd: _dask.partial_fit(a, Xd))
        b.partial_fit(X[lo:hi])
        assert len(used) == 2, "the chunks' statistics should be computed on both workers"
        _assert_same_model(a, b)


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_first_step_seeded_from_the_whole_array_equals_single_process(client, covariance_type):
    X, _, _ = blobs(n=1500, K=4, D=3, seed=4)
    a = OnlineGaussianMixture(4, **_params(covariance_type))
    b = OnlineGaussianMixture(4, **_params(covariance_type))
    _dask.partial_fit(a, da.from_array(X, chunks=(400, 3)), seed_from="all")
    b.partial_fit(X)
    _assert_same_model(a, b)


def test_user_initialised_first_step_equals_one_batch_em_step(client):
    """means/weights/precisions given: the first step seeds from no sample at all."""
    X, _, means = blobs(n=1200, K=3, D=4, seed=5)
    init = dict(
        means_init=means + 0.3, weights_init=np.full(3, 1 / 3),
        precisions_init=np.ones((3, 4)), seed_mass=0.0, forgetting_rate=0.0,
    )
    a = OnlineGaussianMixture(3, **_params("diag", **init))
    b = OnlineGaussianMixture(3, **_params("diag", **init))
    _dask.partial_fit(a, da.from_array(X, chunks=(250, 4)))
    b.partial_fit(X)
    _assert_same_model(a, b)


def test_default_seeding_uses_only_the_first_chunk(client):
    """With seed_from="first_chunk" the step does not depend on how the rest is chunked."""
    X, _, _ = blobs(n=2000, K=4, D=3, seed=6)
    a = OnlineGaussianMixture(4, **_params("diag"))
    b = OnlineGaussianMixture(4, **_params("diag"))
    _dask.partial_fit(a, da.from_array(X, chunks=((400, 800, 800), (3,))))
    _dask.partial_fit(b, da.from_array(X, chunks=((400, 160, 1000, 440), (3,))))
    _assert_same_model(a, b)
    assert a.n_samples_seen_ == 2000
    np.testing.assert_allclose(a.weights_.sum(), 1.0)


@pytest.mark.parametrize("dask_weights", [False, True])
def test_sample_weight(client, dask_weights):
    X, _, _ = blobs(n=1800, K=3, D=4, seed=7)
    w = np.random.default_rng(0).uniform(0, 2, 1200)
    a = OnlineGaussianMixture(3, **_params("full")).partial_fit(X[:600])
    b = OnlineGaussianMixture(3, **_params("full")).partial_fit(X[:600])
    sw = da.from_array(w, chunks=500) if dask_weights else w  # rechunked to X's rows
    _dask.partial_fit(a, da.from_array(X[600:], chunks=(300, 4)), sample_weight=sw)
    b.partial_fit(X[600:], sample_weight=w)
    _assert_same_model(a, b)


def test_float32_stays_float32(client):
    X, _, _ = blobs(n=1000, K=3, D=4, seed=8, dtype=np.float32)
    a = OnlineGaussianMixture(3, random_state=0).partial_fit(X[:300])
    b = OnlineGaussianMixture(3, random_state=0).partial_fit(X[:300])
    _dask.partial_fit(a, da.from_array(X[300:], chunks=(200, 4)))
    b.partial_fit(X[300:])
    _assert_same_model(a, b, rtol=1e-3)  # float32 moments: rounding of the sums
    assert a.predict_proba(X[:5]).dtype == np.float32


@pytest.mark.parametrize("covariance_type", TYPES)
@pytest.mark.parametrize("init_params", ["k-means++", "kmeans"])
def test_fit_is_distributed_em_equal_to_the_in_memory_fit(client, covariance_type, init_params):
    X, _, _ = blobs(n=900, K=3, D=3, seed=9)
    X = X[np.random.default_rng(1).permutation(len(X))]
    params = dict(covariance_type=covariance_type, init_params=init_params, max_iter=30,
                  tol=1e-6, random_state=2)
    Xd = da.from_array(X, chunks=(200, 3)).persist()  # data lives on the workers
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        with distributed.get_task_stream(client) as ts:
            a = _dask.fit(OnlineGaussianMixture(3, **params), Xd)
        b = OnlineGaussianMixture(3, **params).fit(X)
    _assert_same_model(a, b, rtol=1e-8)
    assert a.lower_bounds_ == pytest.approx(b.lower_bounds_, rel=1e-10)
    # one reduction per iteration: each iteration's chunks, then the merges, on the workers
    blocks = [t for t in ts.data if "_block_statistics" in str(t["key"])]
    assert len(blocks) == a.n_iter_ * Xd.numblocks[0]


def test_fit_n_init_keeps_the_best(client):
    X, _, _ = blobs(n=900, K=3, D=2, seed=10)
    Xd = da.from_array(X, chunks=(300, 2)).persist()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        one = _dask.fit(OnlineGaussianMixture(3, max_iter=2, random_state=0), Xd)
        two = _dask.fit(OnlineGaussianMixture(3, max_iter=2, n_init=2, random_state=0), Xd)
    assert two.lower_bound_ >= one.lower_bound_


def test_bad_input_leaves_the_model_unchanged(client):
    X, _, _ = blobs(n=900, K=3, D=3, seed=11)
    model = OnlineGaussianMixture(3, random_state=0).partial_fit(X[:300])
    before = state_snapshot(model)
    bad = X[300:].copy()
    bad[500, 1] = np.nan  # in the last chunk: found on a worker
    with pytest.raises(ValueError, match="NaN"):
        _dask.partial_fit(model, da.from_array(bad, chunks=(200, 3)))
    with pytest.raises(ValueError, match="features"):
        _dask.partial_fit(model, da.from_array(X[:, :2], chunks=(200, 2)))
    with pytest.raises(ValueError, match="non-negative"):
        _dask.partial_fit(
            model, da.from_array(X[300:], chunks=(200, 3)),
            sample_weight=da.from_array(-np.ones(600), chunks=200),
        )
    assert_same_state(state_snapshot(model), before)

    fresh = OnlineGaussianMixture(3)
    with pytest.raises(ValueError, match="NaN"):
        _dask.partial_fit(fresh, da.from_array(bad, chunks=(200, 3)))
    assert not hasattr(fresh, "n_features_in_") and not hasattr(fresh, "_state")
    with pytest.raises(ValueError, match="seed_from"):
        _dask.partial_fit(fresh, da.from_array(X, chunks=(200, 3)), seed_from="middle")


def test_fitted_model_maps_over_blocks(client):
    """Inference needs no special support: the fitted model is a small picklable object."""
    X, _, _ = blobs(n=800, K=3, D=3, seed=12)
    model = OnlineGaussianMixture(3, random_state=0).partial_fit(X)
    Xd = da.from_array(X, chunks=(200, 3))
    labels = Xd.map_blocks(model.predict, drop_axis=1, dtype=np.int64).compute()
    np.testing.assert_array_equal(labels, model.predict(X))
    dens = Xd.map_blocks(model.score_samples, drop_axis=1, dtype=X.dtype).compute()
    np.testing.assert_allclose(dens, model.score_samples(X))


def test_grid_search_through_joblibs_dask_backend(client):
    """Independent fits (a grid over forgetting_rate, 2 folds) run on the cluster's workers
    through joblib's Dask backend, with the same scores as in one process."""
    import joblib
    from sklearn.model_selection import GridSearchCV

    X, _, _ = blobs(n=900, K=3, D=3, seed=13)
    grid = {"forgetting_rate": [0.0, 0.05]}
    est = OnlineGaussianMixture(3, batch_size=150, max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        local = GridSearchCV(est, grid, cv=2, n_jobs=1).fit(X)
        with _task_names(client) as names, joblib.parallel_backend("dask"):
            remote = GridSearchCV(est, grid, cv=2, n_jobs=-1).fit(X)
    assert names, "the fits should have run as tasks on the cluster"
    np.testing.assert_allclose(
        remote.cv_results_["mean_test_score"], local.cv_results_["mean_test_score"],
        rtol=1e-12,
    )
    assert remote.best_params_ == local.best_params_


class _task_names:
    """Collect the workers that ran any task while the block is active."""

    def __init__(self, client):
        self._ts = distributed.get_task_stream(client)
        self.names: set = set()

    def __enter__(self):
        self._ts.__enter__()
        return self.names

    def __exit__(self, *exc):
        self._ts.__exit__(*exc)
        self.names.update(t["worker"] for t in self._ts.data)
        return False


# ---------------------------------------------------------------------- the estimator hook
def _spy(monkeypatch, name):
    calls = []
    real = getattr(_dask, name)

    def spy(*args, **kwargs):
        calls.append(name)
        return real(*args, **kwargs)

    monkeypatch.setattr(_dask, name, spy)
    return calls


def test_estimator_takes_dask_arrays_through_the_adapter(client, monkeypatch):
    X, _, _ = blobs(n=1200, K=3, D=3, seed=14)
    pf, ft = _spy(monkeypatch, "batch"), _spy(monkeypatch, "source")
    a = OnlineGaussianMixture(3, random_state=0).partial_fit(X[:400])
    b = OnlineGaussianMixture(3, random_state=0).partial_fit(X[:400])
    a.partial_fit(da.from_array(X[400:], chunks=(200, 3)))
    b.partial_fit(X[400:])
    _assert_same_model(a, b)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        OnlineGaussianMixture(3, max_iter=2, random_state=0).fit(
            da.from_array(X, chunks=(300, 3))
        )
    assert pf == ["batch"] and ft == ["source"]


def test_the_adapter_touches_no_private_member_of_the_estimator():
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(_dask))
    private = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)
               and node.attr.startswith("_") and not node.attr.startswith("__")
               and isinstance(node.value, ast.Name) and node.value.id == "model"}
    assert private == set()


@pytest.mark.parametrize("warmup_size, n_batch", [("auto", 1000), (300, 1000)])
def test_the_warm_up_counts_every_row_of_a_dask_stream_once(client, warmup_size, n_batch):
    # (issue 28, item 8: the buffer took each step's first chunk and the rest of the step's
    # rows were lost at the mark)
    X, _, _ = blobs(n=8000, K=4, D=3, seed=21)
    params = dict(warmup_size=warmup_size, forgetting_rate=0.0, random_state=0)
    a = OnlineGaussianMixture(4, **params)
    b = OnlineGaussianMixture(4, **params)
    for start in range(0, len(X), n_batch):
        a.partial_fit(da.from_array(X[start : start + n_batch], chunks=(100, 3)))
        b.partial_fit(X[start : start + n_batch])
    assert a.n_samples_seen_ == len(X)
    np.testing.assert_allclose(a._state.mass.sum(), len(X), rtol=1e-12)
    np.testing.assert_allclose(a.means_, b.means_, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(a.covariances_, b.covariances_, rtol=1e-8, atol=1e-10)
