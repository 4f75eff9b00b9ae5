"""The contract's exactness invariants: one step equals batch EM; statistics merge; resume."""

import io
import pickle

import joblib
import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture

from online_gmm import OnlineGaussianMixture
from online_gmm.core import merge_stats, select_backend, state_prepared

from .._data import assert_same_state, blobs, state_snapshot

TYPES = ["full", "tied", "diag", "spherical"]


def _init_params(covariance_type, means, D, rng):
    K = len(means)
    if covariance_type == "full":
        A = rng.normal(size=(K, D, D)) * 0.2
        return np.stack([np.eye(D) * 0.8 + a @ a.T for a in A])
    if covariance_type == "tied":
        A = rng.normal(size=(D, D)) * 0.2
        return np.eye(D) * 0.8 + A @ A.T
    if covariance_type == "diag":
        return rng.uniform(0.5, 1.5, (K, D))
    return rng.uniform(0.5, 1.5, K)


@pytest.mark.parametrize("covariance_type", TYPES)
@pytest.mark.parametrize("dtype", [np.float64])
def test_one_partial_fit_equals_one_step_of_batch_em(covariance_type, dtype):
    X, _, means = blobs(n=800, K=3, D=4, seed=1, dtype=dtype)
    rng = np.random.default_rng(5)
    means_init = means + rng.normal(0, 0.5, means.shape)
    weights_init = np.array([0.2, 0.3, 0.5])
    precisions_init = _init_params(covariance_type, means, 4, rng)
    common = dict(
        covariance_type=covariance_type,
        means_init=means_init,
        weights_init=weights_init,
        precisions_init=precisions_init,
        reg_covar=1e-6,
    )
    ours = OnlineGaussianMixture(3, seed_mass=0.0, forgetting_rate=0.0, **common)
    ours.partial_fit(X)
    with pytest.warns(ConvergenceWarning):
        ref = GaussianMixture(3, max_iter=1, random_state=0, **common).fit(X)
    for attr in ("weights_", "means_", "covariances_", "precisions_cholesky_", "precisions_"):
        np.testing.assert_allclose(getattr(ours, attr), getattr(ref, attr), rtol=1e-10,
                                   atol=1e-13, err_msg=attr)


@pytest.mark.parametrize("covariance_type", TYPES)
def test_split_batch_statistics_merge_to_the_whole(covariance_type):
    X, _, _ = blobs(n=500, K=3, D=4, seed=2)
    model = OnlineGaussianMixture(3, covariance_type=covariance_type, random_state=0)
    model.partial_fit(X[:200])
    backend = select_backend(X)
    xp = backend.xp
    p = state_prepared(model._state, covariance_type, X.dtype, xp)
    w = np.random.default_rng(0).uniform(0, 2, len(X))
    whole = backend.batch_statistics(X, w, p, 0.5)
    cuts = [0, 37, 38, 260, 500]
    parts = [
        backend.batch_statistics(X[a:b], w[a:b], p, 0.5)
        for a, b in zip(cuts[:-1], cuts[1:], strict=True)
    ]
    merged = parts[0]
    for part in parts[1:]:
        merged = merge_stats(merged, part, covariance_type, xp)
    np.testing.assert_allclose(merged.mass, whole.mass, rtol=1e-12)
    np.testing.assert_allclose(merged.mean, whole.mean, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(merged.moment, whole.moment, rtol=1e-9, atol=1e-9)
    assert merged.loglik == pytest.approx(whole.loglik, rel=1e-12)
    assert merged.weight == pytest.approx(whole.weight, rel=1e-12)


def _stream(n_batches=12, seed=0):
    X, _, _ = blobs(n=150 * n_batches, K=4, D=3, seed=seed)
    return np.array_split(X, n_batches)


@pytest.mark.parametrize("covariance_type", TYPES)
@pytest.mark.parametrize("how", ["pickle", "joblib"])
def test_resume_mid_stream_is_bit_identical(covariance_type, how):
    batches = _stream()
    params = dict(
        covariance_type=covariance_type, forgetting_rate=0.05, temperature_init=3.0,
        anneal_steps=6, dead_threshold=0.5, random_state=7,
    )
    straight = OnlineGaussianMixture(4, **params)
    for b in batches:
        straight.partial_fit(b)
    resumed = OnlineGaussianMixture(4, **params)
    for b in batches[:5]:
        resumed.partial_fit(b)
    if how == "pickle":
        resumed = pickle.loads(pickle.dumps(resumed))
    else:
        buf = io.BytesIO()
        joblib.dump(resumed, buf)
        buf.seek(0)
        resumed = joblib.load(buf)
    for b in batches[5:]:
        resumed.partial_fit(b)
    assert_same_state(state_snapshot(straight), state_snapshot(resumed))


def test_same_seed_same_stream_same_model():
    batches = _stream(seed=3)
    models = [OnlineGaussianMixture(5, covariance_type="full", random_state=11) for _ in "ab"]
    for m in models:
        for b in batches:
            m.partial_fit(b)
    assert_same_state(state_snapshot(models[0]), state_snapshot(models[1]))
    other = OnlineGaussianMixture(5, covariance_type="full", random_state=12)
    for b in batches:
        other.partial_fit(b)
    assert not np.array_equal(other.means_, models[0].means_)
