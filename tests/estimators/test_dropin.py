"""The drop-in contract (issue 25): scikit-learn 1.9's ``GaussianMixture`` and
``BayesianGaussianMixture`` behaviour, checked against scikit-learn itself: the same call
on scikit-learn's class gives the same error message, dtype or namespace."""

import re
import warnings

import numpy as np
import pytest
import sklearn
from sklearn.mixture import BayesianGaussianMixture, GaussianMixture

from online_gmm import OnlineBayesianGaussianMixture, OnlineGaussianMixture
from online_gmm._math.array_api import to_numpy

from .._data import blobs

TYPES = ["full", "tied", "diag", "spherical"]


def _sklearn_message(estimator, X):
    """The ``ValueError`` message scikit-learn's ``estimator.fit(X)`` raises."""
    with pytest.raises(ValueError) as info:
        estimator.fit(X)
    return str(info.value)


# ---------------------------------------------------------------------- initial parameters
X2 = np.random.default_rng(0).normal(size=(40, 2))

BAD_INITIAL_PARAMETERS = [
    pytest.param(dict(weights_init=[0.2, 0.3, 0.5]), id="weights-shape"),
    pytest.param(dict(weights_init=[1.5, -0.5]), id="weights-range"),
    pytest.param(dict(weights_init=[0.5, 0.6]), id="weights-sum"),
    pytest.param(dict(weights_init=[0.5, 0.5 + 1e-7]), id="weights-sum-float64-atol"),
    pytest.param(dict(weights_init=np.array([0.5, 0.5 + 1e-5], dtype=np.float32)),
                 id="weights-sum-float32"),
    pytest.param(dict(weights_init=[0.5, np.nan]), id="weights-nan"),
    pytest.param(dict(means_init=np.zeros((3, 2))), id="means-shape"),
    pytest.param(dict(means_init=[[0.0, np.inf], [1.0, 1.0]]), id="means-inf"),
    pytest.param(dict(precisions_init=np.ones((3, 2))), id="diag-precisions-shape"),
    pytest.param(dict(precisions_init=-np.ones((2, 2))), id="diag-precisions-negative"),
    pytest.param(dict(covariance_type="spherical", precisions_init=[1.0, 0.0]),
                 id="spherical-precisions-zero"),
    pytest.param(dict(covariance_type="spherical", precisions_init=np.ones((2, 2))),
                 id="spherical-precisions-shape"),
    pytest.param(dict(covariance_type="full", precisions_init=-np.stack([np.eye(2)] * 2)),
                 id="full-precisions-negative-definite"),
    pytest.param(dict(covariance_type="full", precisions_init=np.array(
        [np.eye(2), [[1.0, 0.5], [0.0, 1.0]]])), id="full-precisions-asymmetric"),
    pytest.param(dict(covariance_type="full", precisions_init=np.ones((2, 3, 3))),
                 id="full-precisions-shape"),
    pytest.param(dict(covariance_type="tied", precisions_init=-np.eye(2)),
                 id="tied-precisions-negative-definite"),
    pytest.param(dict(covariance_type="tied", precisions_init=np.eye(3)),
                 id="tied-precisions-shape"),
]


@pytest.mark.parametrize("params", BAD_INITIAL_PARAMETERS)
@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_initial_parameters_are_checked_alone_with_scikit_learns_messages(params, method):
    """Each initial parameter is checked on its own (without ``means_init``), in ``fit``
    and ``partial_fit``, with scikit-learn's message."""
    params = {"covariance_type": "diag", **params}
    message = _sklearn_message(GaussianMixture(n_components=2, **params), X2)
    model = OnlineGaussianMixture(n_components=2, random_state=0, **params)
    with pytest.raises(ValueError, match=re.escape(message)):
        getattr(model, method)(X2)
    assert not hasattr(model, "means_")  # a refused first call leaves the model unfitted


@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_valid_initial_parameters_alone_are_accepted(method):
    params = dict(weights_init=np.array([0.5, 0.5 + 1e-7], dtype=np.float32),  # atol 1e-6
                  precisions_init=np.ones((2, 2)))
    GaussianMixture(n_components=2, covariance_type="diag", **params).fit(X2)
    model = OnlineGaussianMixture(n_components=2, random_state=0, **params)
    getattr(model, method)(X2)
    assert model.means_.shape == (2, 2)


@pytest.mark.parametrize("n_samples", [0, -3])
def test_sample_refuses_fewer_than_one_sample_with_scikit_learns_message(n_samples):
    X, _, _ = blobs(n=300, K=3, D=2)
    sk = GaussianMixture(n_components=3, random_state=0).fit(X)
    with pytest.raises(ValueError) as info:
        sk.sample(n_samples)
    for model in (OnlineGaussianMixture(3, random_state=0).partial_fit(X),
                  OnlineBayesianGaussianMixture(n_components=3, random_state=0).partial_fit(X)):
        with pytest.raises(ValueError, match=re.escape(str(info.value))):
            model.sample(n_samples)


# ---------------------------------------------------------------------- float32
PUBLISHED = ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_")


@pytest.mark.parametrize("covariance_type", TYPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fitted_attributes_keep_the_datas_dtype_as_scikit_learns(covariance_type, dtype):
    X, _, _ = blobs(n=400, K=2, D=3, dtype=dtype)
    sk = GaussianMixture(n_components=2, covariance_type=covariance_type,
                         random_state=0).fit(X)
    model = OnlineGaussianMixture(2, covariance_type=covariance_type, random_state=0)
    model.partial_fit(X[:200])
    for name in PUBLISHED:
        assert getattr(model, name).dtype == getattr(sk, name).dtype == dtype, name
    model.partial_fit(X[200:])  # every step publishes in the data's dtype
    for name in PUBLISHED:
        assert getattr(model, name).dtype == dtype, name
    assert model.score_samples(X).dtype == sk.score_samples(X).dtype
    assert model.predict_proba(X).dtype == sk.predict_proba(X).dtype


def test_float32_attributes_are_the_float64_states_rounded():
    """The state stays float64: the attributes are its rounding, and the model scores with
    the state (as a float64 fit of the same data would), not with the rounded copies."""
    X, _, _ = blobs(n=400, K=2, D=3)
    m64 = OnlineGaussianMixture(2, covariance_type="full", random_state=0).partial_fit(X)
    m32 = OnlineGaussianMixture(2, covariance_type="full", random_state=0).partial_fit(
        X.astype(np.float32))
    assert m32._state.means.dtype == np.float64
    np.testing.assert_array_equal(m32.means_, m32._state.means.astype(np.float32))
    np.testing.assert_allclose(m32.precisions_, m64.precisions_, rtol=1e-5)
    np.testing.assert_array_equal(m32.to_sklearn().means_, m32._state.means)


@pytest.mark.parametrize("covariance_type", TYPES)
def test_variational_dtypes_on_float32_are_scikit_learns(covariance_type):
    """scikit-learn's ``BayesianGaussianMixture`` on float32 data: a float64 posterior, float64
    ``score_samples`` and ``predict_proba``, and the default priors of the data in their own
    dtype."""
    X, _, _ = blobs(n=400, K=2, D=3, dtype=np.float32)
    sk = BayesianGaussianMixture(n_components=2, covariance_type=covariance_type,
                                 random_state=0).fit(X)
    model = OnlineBayesianGaussianMixture(n_components=2, covariance_type=covariance_type,
                                          random_state=0).partial_fit(X)
    for name in (*PUBLISHED, "mean_precision_", "degrees_of_freedom_", "mean_prior_",
                 "covariance_prior_"):
        assert np.asarray(getattr(model, name)).dtype == np.asarray(getattr(sk, name)).dtype, name
    for a, b in zip(model.weight_concentration_, sk.weight_concentration_, strict=True):
        assert a.dtype == b.dtype
    for method in ("score_samples", "predict_proba"):
        assert getattr(model, method)(X).dtype == getattr(sk, method)(X).dtype == np.float64
    np.testing.assert_allclose(model.score_samples(X),
                               model.score_samples(X.astype(np.float64)), rtol=1e-12)


def test_a_float32_model_saves_and_loads_in_float32(tmp_path):
    import online_gmm

    X, _, _ = blobs(n=400, K=2, D=3, dtype=np.float32)
    model = OnlineGaussianMixture(2, random_state=0).partial_fit(X)
    online_gmm.save(model, tmp_path / "m.npz")
    loaded = online_gmm.load(tmp_path / "m.npz")
    for name in PUBLISHED:
        assert getattr(loaded, name).dtype == np.float32, name
        np.testing.assert_array_equal(getattr(loaded, name), getattr(model, name))


# ---------------------------------------------------------------------- array API
def _torch():
    return pytest.importorskip("torch", reason="torch is the optional 'torch' extra")


def _strict():
    return pytest.importorskip("array_api_strict", reason="array-api-strict is a test extra")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_torch_attributes_keep_the_datas_dtype(dtype):
    torch = _torch()
    X, _, _ = blobs(n=400, K=2, D=3)
    Xt = torch.asarray(X, dtype=getattr(torch, dtype))
    with sklearn.config_context(array_api_dispatch=True):
        model = OnlineGaussianMixture(2, covariance_type="full", random_state=0).partial_fit(Xt)
    for name in PUBLISHED:
        value = getattr(model, name)
        assert isinstance(value, torch.Tensor) and value.dtype == getattr(torch, dtype), name
    assert model._state.means.dtype == torch.float64


@pytest.mark.parametrize("library", ["torch", "array_api_strict"])
@pytest.mark.parametrize("cls", [OnlineGaussianMixture, OnlineBayesianGaussianMixture])
def test_sample_returns_the_models_namespace(library, cls):
    """scikit-learn's ``sample`` under array-API dispatch: the model's namespace and device,
    ``X`` in the highest float precision, ``y`` int64."""
    xp = _torch() if library == "torch" else _strict()
    X, _, _ = blobs(n=400, K=2, D=3)
    sk = GaussianMixture(n_components=2, covariance_type="diag", init_params="random",
                         random_state=0)
    with sklearn.config_context(array_api_dispatch=True):
        Xa = xp.asarray(X)
        sk.fit(Xa)
        S_sk, y_sk = sk.sample(50)
        model = cls(n_components=2, random_state=0).partial_fit(Xa)
        S, y = model.sample(50)
    for ours, theirs in ((S, S_sk), (y, y_sk)):
        assert type(ours) is type(theirs)
        assert ours.dtype == theirs.dtype
        assert ours.device == theirs.device
    assert S.shape == (50, 3) and y.shape == (50,)
    # the same draws as the model's NumPy equivalent (scikit-learn's sampler, random_state)
    S_np, y_np = cls(n_components=2, random_state=0).partial_fit(X).sample(50)
    np.testing.assert_allclose(to_numpy(S), S_np, rtol=1e-10)
    np.testing.assert_array_equal(to_numpy(y), y_np)


def test_sample_stays_numpy_for_numpy():
    X, _, _ = blobs(n=400, K=2, D=3, dtype=np.float32)
    S, y = OnlineGaussianMixture(2, random_state=0).partial_fit(X).sample(5)
    S_sk, y_sk = GaussianMixture(n_components=2, random_state=0).fit(X).sample(5)
    assert type(S) is type(S_sk) is np.ndarray and S.dtype == S_sk.dtype == np.float64
    assert y.dtype == y_sk.dtype


@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_initial_parameters_on_another_device(method):
    """array-api-strict's second device stands for a GPU: the initial parameters are checked
    on host copies, then used on the data's device."""
    xps = _strict()
    dev = xps.Device("device1")
    X, _, _ = blobs(n=300, K=2, D=2)
    means = np.array([[-5.0, 0.0], [5.0, 0.0]])
    with sklearn.config_context(array_api_dispatch=True):
        model = OnlineGaussianMixture(
            2, init_params="random", random_state=0,
            weights_init=xps.asarray([0.4, 0.6], device=dev),
            means_init=xps.asarray(means, device=dev),
            precisions_init=xps.asarray(np.ones((2, 2)), device=dev),
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # (fit's ConvergenceWarning is not the point)
            getattr(model, method)(xps.asarray(X, device=dev))
        assert model.means_.device == dev
        bad = OnlineGaussianMixture(2, precisions_init=xps.asarray(-np.ones((2, 2)), device=dev))
        with pytest.raises(ValueError, match=re.escape("'diag precision' should be positive")):
            getattr(bad, method)(xps.asarray(X, device=dev))


# ---------------------------------------------------------------------- reg_covar=0
@pytest.mark.parametrize("cls,sk_cls", [(OnlineGaussianMixture, GaussianMixture),
                                        (OnlineBayesianGaussianMixture,
                                         BayesianGaussianMixture)])
@pytest.mark.parametrize("covariance_type", ["full", "tied"])
@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_reg_covar_zero_on_rank_deficient_data_fits(cls, sk_cls, covariance_type, method):
    """A documented difference (README, the estimators' Notes): on rows that span a line in
    2-D, scikit-learn raises its "ill-defined empirical covariance" error with
    ``reg_covar=0``; the relative rounding floor gives a positive-definite model."""
    t = np.random.default_rng(0).normal(size=(200, 1))
    X = np.c_[t, 2.0 * t + 1.0]
    params = dict(n_components=2, covariance_type=covariance_type, reg_covar=0.0,
                  random_state=0)
    assert "ill-defined empirical covariance" in _sklearn_message(sk_cls(**params), X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (a ConvergenceWarning is not the point)
        model = getattr(cls(**params), method)(X)
    cov = np.asarray(model.covariances_)
    cov = cov[None] if covariance_type == "tied" else cov
    assert np.all(np.isfinite(cov))
    assert np.all(np.linalg.eigvalsh(cov) > 0)
    assert np.all(np.isfinite(model.score_samples(X)))


def test_reg_covar_zero_on_identical_rows_raises_scikit_learns_error():
    """Rows all equal have no scale for the relative floor: scikit-learn's error, as theirs."""
    X = np.tile([[1.0, 2.0]], (50, 1))
    params = dict(n_components=2, covariance_type="full", reg_covar=0.0, random_state=0)
    message = _sklearn_message(GaussianMixture(**params), X)
    with pytest.raises(ValueError, match=re.escape(message)):
        OnlineGaussianMixture(**params).partial_fit(X)
