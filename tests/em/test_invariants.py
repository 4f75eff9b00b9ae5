"""After every update: weights positive and summing to 1, covariances symmetric positive
definite, and nothing non-finite anywhere, for hard but finite inputs."""

import numpy as np
import pytest

from online_gmm import OnlineGaussianMixture

from .._data import blobs

TYPES = ["full", "tied", "diag", "spherical"]


def check_invariants(model):
    w = model.weights_
    assert np.all(np.isfinite(w)) and np.all(w > 0)
    # the state's weights sum to 1 to float64 rounding; the published ones (in the data's
    # dtype, as scikit-learn's) to that dtype's
    assert model._state.weights.sum() == pytest.approx(1.0, abs=1e-12)
    assert w.sum() == pytest.approx(1.0, abs=len(w) * np.finfo(w.dtype).eps)
    assert np.all(np.isfinite(model.means_))
    cov = model.covariances_
    assert np.all(np.isfinite(cov))
    if model.covariance_type in ("full", "tied"):
        mats = cov if cov.ndim == 3 else cov[None]
        np.testing.assert_allclose(mats, np.swapaxes(mats, 1, 2), rtol=1e-12, atol=0)
        assert np.all(np.linalg.eigvalsh(mats) > 0)
    else:
        assert np.all(cov > 0)
    assert np.all(np.isfinite(model.precisions_cholesky_))
    for name in ("mass", "nu", "moment"):
        assert np.all(np.isfinite(getattr(model._state, name))), name


def _scenario(name, rng, n, D):
    X = rng.standard_normal((n, D))
    if name == "offset_1e8":
        return X + 1e8
    if name == "scale_1e-8":
        return X * 1e-8
    if name == "scale_1e8":
        return X * 1e8
    if name == "constant_feature":
        X[:, 1] = 3.0
        return X
    if name == "duplicated_points":
        return np.repeat(X[: n // 10], 10, axis=0)
    if name == "all_identical":
        return np.ones((n, D)) * 2.5
    raise AssertionError(name)


SCENARIOS = [
    "offset_1e8", "scale_1e-8", "scale_1e8", "constant_feature", "duplicated_points",
    "all_identical",
]


@pytest.mark.parametrize("covariance_type", TYPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_invariants_hold_after_every_update(covariance_type, dtype, scenario):
    rng = np.random.default_rng(0)
    X = _scenario(scenario, rng, 400, 3).astype(dtype)
    model = OnlineGaussianMixture(
        3, covariance_type=covariance_type, forgetting_rate=0.01, random_state=0
    )
    for batch in np.array_split(X, 5):
        model.partial_fit(batch)
        check_invariants(model)
        assert np.all(np.isfinite(model.score_samples(batch)))
        proba = model.predict_proba(batch)
        assert np.all(np.isfinite(proba))
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("covariance_type", TYPES)
def test_far_offset_does_not_cancel(covariance_type):
    """Data 1e8 from the origin is modelled as well as the same data at the origin."""
    X, _, _ = blobs(n=1200, K=2, D=2, sep=8, seed=4)
    at_origin = OnlineGaussianMixture(2, covariance_type=covariance_type, random_state=0)
    far = OnlineGaussianMixture(2, covariance_type=covariance_type, random_state=0)
    for batch in np.array_split(X, 6):
        at_origin.partial_fit(batch)
        far.partial_fit(batch + 1e8)
    np.testing.assert_allclose(far.means_ - 1e8, at_origin.means_, atol=1e-6)
    np.testing.assert_allclose(far.covariances_, at_origin.covariances_, rtol=1e-6)
