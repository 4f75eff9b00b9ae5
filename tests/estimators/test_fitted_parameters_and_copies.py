"""Regressions of issue 28 (reliability, third round) in the estimators: parameters changed
on a fitted model (5, 6), copies mid-warm-up (7), numerics at extreme scales and weights
(13, 14) and non-finite priors (15)."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest

from online_gmm import OnlineBayesianGaussianMixture, OnlineGaussianMixture, load, save

TYPES = ["full", "tied", "diag", "spherical"]


def _blobs(n=300, d=3, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 6, (3, d))
    return centres[rng.integers(0, 3, n)] + rng.normal(size=(n, d))


# ---------------------------------------------------------------------- (5) K and the type
@pytest.mark.parametrize("covariance_type", TYPES)
def test_partial_fit_refuses_a_changed_n_components_and_save_writes_nothing(
        tmp_path, covariance_type):
    X = _blobs()
    model = OnlineGaussianMixture(3, covariance_type=covariance_type, random_state=0)
    model.partial_fit(X)
    before = model.means_.copy()
    model.set_params(n_components=5)
    with pytest.raises(ValueError, match=r"n_components=5, but .* fitted with 3 components"):
        model.partial_fit(X)
    np.testing.assert_array_equal(model.means_, before)  # nothing changed
    with pytest.raises(ValueError, match="n_components=5"):
        save(model, tmp_path / "m.npz")
    with pytest.raises(ValueError, match="n_components=5"):
        save(model, tmp_path / "m.joblib", format="pickle")
    assert not list(tmp_path.iterdir())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match="n_components=5"):
            model.set_params(warm_start=True).fit(X)
        model.set_params(warm_start=False, max_iter=2).fit(X)  # a new model: K may change
    assert model.means_.shape == (5, 3)
    model.partial_fit(X)
    assert load(save(model, tmp_path / "m.npz")).means_.shape == (5, 3)


@pytest.mark.parametrize("fitted,other", [(a, b) for a in TYPES for b in TYPES if a != b])
def test_partial_fit_refuses_a_changed_covariance_type(fitted, other):
    # K == D: the diag and tied layouts have the same shape, told apart by the factor
    X = _blobs(d=3)
    model = OnlineGaussianMixture(3, covariance_type=fitted, random_state=0).partial_fit(X)
    model.set_params(covariance_type=other)
    with pytest.raises(ValueError, match=rf"covariance_type='{other}', but .* "
                                         rf"covariance_type='{fitted}'"):
        model.partial_fit(X)


# ---------------------------------------------------------------------- (6) the prior
@pytest.mark.parametrize("name,value", [
    ("weight_concentration_prior", 100.0),
    ("weight_concentration_prior_type", "dirichlet_distribution"),
    ("mean_precision_prior", 5.0),
    ("mean_prior", [1.0, 2.0, 3.0]),
    ("degrees_of_freedom_prior", 9.0),
    ("covariance_prior", 2.0),
])
def test_a_prior_changed_mid_stream_is_refused_naming_it(name, value):
    X = _blobs()
    model = OnlineBayesianGaussianMixture(4, covariance_type="spherical", random_state=0)
    model.partial_fit(X)
    prior = (model.weight_concentration_prior_, model.mean_precision_prior_)
    model.set_params(**{name: value})
    with pytest.raises(ValueError, match=rf"{name}=.* cannot change the prior"):
        model.partial_fit(X)
    assert (model.weight_concentration_prior_, model.mean_precision_prior_) == prior
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match=name):
            model.set_params(warm_start=True).fit(X)
        model.set_params(warm_start=False, max_iter=2).fit(X)  # a new model, a new prior
    if name == "weight_concentration_prior":
        assert model.weight_concentration_prior_ == 100.0


def test_the_same_prior_given_explicitly_goes_on():
    X = _blobs()
    model = OnlineBayesianGaussianMixture(4, random_state=0, mean_prior=[0.0, 0.0, 0.0])
    model.partial_fit(X)
    model.set_params(weight_concentration_prior=0.25, mean_precision_prior=1.0,
                     degrees_of_freedom_prior=3.0, mean_prior=np.zeros(3))
    model.partial_fit(X)  # the values it was fitted with: nothing changed
    assert model.n_steps_ == 2


# ---------------------------------------------------------------------- (7) copies
def test_a_copy_mid_warm_up_does_not_share_the_buffer():
    rng = np.random.default_rng(0)
    A, B = rng.normal(-5, 1, (400, 2)), rng.normal(5, 1, (400, 2))
    start = rng.normal(size=(100, 2))
    original = OnlineGaussianMixture(4, random_state=0).partial_fit(start)
    assert original._warmup is not None and original._warmup.n_rows == 100
    twin = copy.copy(original)
    alone = copy.deepcopy(original)
    for batch in np.array_split(A, 4):
        original.partial_fit(batch)
        alone.partial_fit(batch)
        twin.partial_fit(B[: batch.shape[0]])  # writes its own rows, not the original's
    np.testing.assert_array_equal(original.means_, alone.means_)
    assert original._warmup == alone._warmup
    np.testing.assert_array_equal(original._warmup.X[100:500], A)
    np.testing.assert_array_equal(twin._warmup.X[100:200], B[:100])


# ---------------------------------------------------------------------- (15) priors
@pytest.mark.parametrize("name,value", [
    ("mean_prior", [np.nan, 0.0, 0.0]),
    ("mean_prior", [np.inf, 0.0, 0.0]),
    ("covariance_prior", np.nan),
    ("covariance_prior", np.inf),
])
@pytest.mark.parametrize("covariance_type", ["spherical", "diag", "full"])
def test_a_non_finite_prior_is_refused_naming_it(name, value, covariance_type):
    X = _blobs()
    if name == "covariance_prior" and covariance_type != "spherical":
        d = X.shape[1]
        value = (np.full(d, value) if covariance_type == "diag"
                 else np.where(np.eye(d) > 0, value, 0.0))
    model = OnlineBayesianGaussianMixture(3, covariance_type=covariance_type,
                                          random_state=0, **{name: value})
    with pytest.raises(ValueError, match=rf"'{name}' (must be finite|parameter of)"):
        model.partial_fit(X)
    assert not hasattr(model, "means_")


# ---------------------------------------------------------------------- (14) weights
@pytest.mark.parametrize("covariance_type", TYPES)
def test_float32_weights_summing_past_float32_are_refused_naming_sample_weight(
        covariance_type):
    X = np.random.default_rng(0).normal(size=(10000, 3)).astype(np.float32)
    model = OnlineGaussianMixture(2, covariance_type=covariance_type, random_state=0)
    model.partial_fit(X[:100])
    before = model.means_.copy()
    with pytest.raises(ValueError, match=r"sample_weight sums to 1e\+39, more than float32"):
        model.partial_fit(X, sample_weight=np.full(10000, 1e35, dtype=np.float32))
    np.testing.assert_array_equal(model.means_, before)
    # what float32 can sum still fits; float64 rows take far larger weights
    model.partial_fit(X[:1000], sample_weight=np.full(1000, 1e35, dtype=np.float32))
    OnlineGaussianMixture(2, covariance_type=covariance_type, random_state=0).partial_fit(
        X.astype(np.float64), sample_weight=np.full(10000, 1e300))
