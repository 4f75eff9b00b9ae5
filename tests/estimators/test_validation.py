"""Bad input gets a clear error naming the problem, and never changes a fitted model."""

import numpy as np
import pytest
import scipy.sparse as sp

from online_gmm import OnlineGaussianMixture

from .._data import assert_same_state, blobs, state_snapshot


@pytest.fixture
def fitted():
    X, _, _ = blobs(n=300, K=3, D=4)
    model = OnlineGaussianMixture(3, random_state=0, forgetting_rate=0.01)
    for batch in np.array_split(X, 3):
        model.partial_fit(batch)
    return model


def _nan():
    X = np.ones((10, 4))
    X[3, 2] = np.nan
    return X


def _inf():
    X = np.ones((10, 4))
    X[0, 0] = np.inf
    return X


BAD_BATCHES = [
    ("nan", _nan, ValueError, "NaN"),
    ("inf", _inf, ValueError, "infinity"),
    ("features", lambda: np.ones((10, 5)), ValueError, "5 features"),
    ("empty", lambda: np.ones((0, 4)), ValueError, "0 sample"),
    ("1d", lambda: np.ones(4), ValueError, "Expected 2D array"),
    ("3d", lambda: np.ones((2, 2, 4)), ValueError, "dim 3"),
    ("strings", lambda: np.array([["a"] * 4] * 3), ValueError, "convert|string"),
    ("complex", lambda: np.ones((3, 4)) + 1j, ValueError, "[Cc]omplex"),
    ("sparse", lambda: sp.csr_matrix(np.ones((3, 4))), TypeError, "[Ss]parse"),
]


@pytest.mark.parametrize("name,make,exc,match", BAD_BATCHES, ids=[b[0] for b in BAD_BATCHES])
@pytest.mark.parametrize("method", ["partial_fit", "predict", "score_samples", "predict_proba"])
def test_bad_batches_are_refused_and_leave_the_model_alone(fitted, name, make, exc, match, method):
    before = state_snapshot(fitted)
    with pytest.raises(exc, match=match):
        getattr(fitted, method)(make())
    assert_same_state(before, state_snapshot(fitted))


@pytest.mark.parametrize(
    "sample_weight,match",
    [
        (np.ones(5), r"shape \(100,\)"),
        (-np.ones(100), "non-negative"),
        (np.full(100, np.nan), "NaN"),
        (np.array(["a"] * 100), "real numbers"),
    ],
)
def test_bad_sample_weight_is_refused(fitted, sample_weight, match):
    X, _, _ = blobs(n=100, K=3, D=4, seed=5)
    before = state_snapshot(fitted)
    with pytest.raises(ValueError, match=match):
        fitted.partial_fit(X, sample_weight=sample_weight)
    assert_same_state(before, state_snapshot(fitted))


def test_a_bad_batch_mid_stream_does_not_stop_the_stream(fitted):
    X, _, _ = blobs(n=100, K=3, D=4, seed=6)
    steps = fitted.n_steps_
    with pytest.raises(ValueError):
        fitted.partial_fit(_nan())
    fitted.partial_fit(X)
    assert fitted.n_steps_ == steps + 1


BAD_PARAMS = [
        (dict(n_components=0), "n_components"),
        (dict(covariance_type="banana"), "covariance_type"),
        (dict(init_params="best"), "init_params"),
        (dict(forgetting="sometimes"), "forgetting"),
        (dict(forgetting_rate=1.0), "forgetting_rate"),
        (dict(forgetting_rate=-0.1), "forgetting_rate"),
        (dict(temperature_init=0.0), "temperature_init"),
        (dict(temperature_final=np.inf), "temperature_final"),
        (dict(anneal_schedule="sideways"), "anneal_schedule"),
        (dict(anneal_steps=-1), "anneal_steps"),
        (dict(reg_covar=-1.0), "reg_covar"),
        (dict(batch_size=0), "batch_size"),
        (dict(seed_mass=-1.0), "seed_mass"),
        (dict(dead_threshold=2.0), "dead_threshold"),
        (dict(max_reseed=-1), "max_reseed"),
        (dict(tol=-1.0), "tol"),
        (dict(max_iter=-1), "max_iter"),
        (dict(n_init=0), "n_init"),
        (dict(init_size=0), "init_size"),
        (dict(warmup_size=-1), "warmup_size"),
        (dict(warmup_restarts=0), "warmup_restarts"),
    (dict(verbose=-1), "verbose"),
    (dict(verbose_interval=0), "verbose_interval"),
    (dict(n_components=3.0), "n_components"),  # equal to 3, not an integer
    (dict(max_reseed=1.5), "max_reseed"),
]


@pytest.mark.parametrize("params,match", BAD_PARAMS)
def test_invalid_parameters_are_named(params, match):
    X = np.random.default_rng(0).normal(size=(20, 2))
    model = OnlineGaussianMixture(**params)
    for method in ("fit", "partial_fit"):
        with pytest.raises((ValueError, TypeError), match=match):
            getattr(model, method)(X)
    assert not hasattr(model, "means_")


def test_invalid_parameters_set_mid_stream_leave_the_model_alone(fitted):
    X, _, _ = blobs(n=100, K=3, D=4, seed=7)
    before = state_snapshot(fitted)
    fitted.set_params(forgetting_rate=2.0)
    with pytest.raises(ValueError, match="forgetting_rate"):
        fitted.partial_fit(X)
    fitted.set_params(forgetting_rate=0.01)
    assert_same_state(before, state_snapshot(fitted))


@pytest.mark.parametrize("params,match", BAD_PARAMS)
def test_every_parameter_is_checked_again_after_a_change(fitted, params, match):
    # partial_fit skips the checks while the parameters are those last found valid: any
    # change, even of type only (3 -> 3.0), or by plain attribute assignment, is checked
    X, _, _ = blobs(n=100, K=3, D=4, seed=7)
    fitted.partial_fit(X[:50])  # its parameters are now known valid
    before = state_snapshot(fitted)
    good = {name: getattr(fitted, name) for name in params}
    for name, value in params.items():
        setattr(fitted, name, value)
    with pytest.raises((ValueError, TypeError), match=match):
        fitted.partial_fit(X[50:])
    for name, value in good.items():
        setattr(fitted, name, value)
    assert_same_state(before, state_snapshot(fitted))
    fitted.partial_fit(X[50:])
    assert fitted.n_steps_ == before["n_steps_"] + 1


def test_an_unhashable_subclass_is_validated_every_time():
    class Unhashable(OnlineGaussianMixture):
        __hash__ = None  # e.g. a subclass that defines __eq__

    X, _, _ = blobs(n=100, K=3, D=4, seed=9)
    model = Unhashable(3, random_state=0).partial_fit(X[:50])
    model.n_components = 0
    with pytest.raises(ValueError, match="n_components"):
        model.partial_fit(X[50:])


def test_the_validation_cache_keys_on_every_checked_parameter():
    from online_gmm._estimators.gaussian import _VALIDATED_PARAMS

    unchecked = {"means_init", "weights_init", "precisions_init", "random_state", "warm_start"}
    params = set(OnlineGaussianMixture().get_params())
    assert set(_VALIDATED_PARAMS) == params - unchecked
    assert {name for p, _ in BAD_PARAMS for name in p} == params - unchecked


def test_callable_schedules_returning_nonsense_leave_the_model_alone(fitted):
    X, _, _ = blobs(n=100, K=3, D=4, seed=8)
    before = state_snapshot(fitted)
    fitted.set_params(anneal_schedule=lambda t: -1.0)
    with pytest.raises(ValueError, match="temperature"):
        fitted.partial_fit(X)
    fitted.set_params(anneal_schedule="exponential", forgetting_rate=lambda t: 1.5)
    with pytest.raises(ValueError, match="forgetting_rate"):
        fitted.partial_fit(X)
    fitted.set_params(forgetting_rate=0.01)
    assert_same_state(before, state_snapshot(fitted))


@pytest.mark.parametrize(
    "params,match",
    [
        # scikit-learn's messages (tests/estimators/test_dropin.py checks them against scikit-learn)
        (dict(means_init=np.zeros((2, 4))),
         r"The parameter 'means' should have the shape of \(3, 4\), but got \(2, 4\)"),
        (dict(weights_init=[0.5, 0.5, 0.5]), "should be normalized"),
        (dict(weights_init=[0.5, 0.5]), "The parameter 'weights' should have the shape"),
        (dict(means_init=np.zeros((3, 4)), precisions_init=-np.ones((3, 4))),
         "'diag precision' should be positive"),
        (
            dict(covariance_type="full", means_init=np.zeros((3, 4)),
                 precisions_init=-np.stack([np.eye(4)] * 3)),
            "'full precision' should be symmetric, positive-definite",
        ),
    ],
)
def test_invalid_initial_parameters(params, match):
    X = np.random.default_rng(0).normal(size=(20, 4))
    with pytest.raises(ValueError, match=match):
        OnlineGaussianMixture(3, **params).partial_fit(X)


def test_exception_inside_the_update_leaves_the_model_alone(fitted, monkeypatch):
    from online_gmm._backends import numba_backend as _numba_backend
    from online_gmm._backends import reference as _reference

    X, _, _ = blobs(n=100, K=3, D=4, seed=9)
    before = state_snapshot(fitted)

    def boom(*args, **kwargs):
        raise RuntimeError("simulated failure inside the M-step")

    monkeypatch.setattr(_reference.ReferenceBackend, "m_step", boom)
    monkeypatch.setattr(_numba_backend.NumbaBackend, "m_step", boom)
    with pytest.raises(RuntimeError, match="simulated"):
        fitted.partial_fit(X)
    assert_same_state(before, state_snapshot(fitted))


def test_unfitted_model_says_so():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        OnlineGaussianMixture().predict(np.ones((2, 2)))


def test_zero_weight_batch_changes_no_parameter(fitted):
    X, _, _ = blobs(n=50, K=3, D=4, seed=10)
    before = fitted.means_.copy(), fitted.covariances_.copy(), fitted.weights_.copy()
    fitted.partial_fit(X, sample_weight=np.zeros(50))
    np.testing.assert_array_equal(fitted.means_, before[0])
    np.testing.assert_array_equal(fitted.covariances_, before[1])
    np.testing.assert_array_equal(fitted.weights_, before[2])
