"""The variational mixture, ``OnlineBayesianGaussianMixture``: one step with step size 1
equals one iteration of scikit-learn's batch variational update, for every covariance type
and both weight priors; it is a scikit-learn estimator; a pickled stream resumes
bit-identically; ``to_sklearn`` gives the same model; the numerics hold in float32 and
float64; the prior prunes the components the data do not need."""

from __future__ import annotations

import dataclasses
import inspect
import pickle

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import BayesianGaussianMixture
from sklearn.mixture._gaussian_mixture import _estimate_gaussian_parameters
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.estimator_checks import parametrize_with_checks

from online_gmm import OnlineBayesianGaussianMixture, core
from online_gmm._math.variational import posterior, resolve_prior

from .._data import blobs

TYPES = ["full", "tied", "diag", "spherical"]
PRIORS = ["dirichlet_process", "dirichlet_distribution"]
#: scikit-learn's fitted attributes of a BayesianGaussianMixture, and our posterior's names
POSTERIOR_ATTRIBUTES = {
    "weights_": "weights", "means_": "means", "covariances_": "covariances",
    "precisions_cholesky_": "precisions_cholesky", "mean_precision_": "mean_precision",
    "degrees_of_freedom_": "degrees_of_freedom",
}


def _relative_error(a, b) -> float:
    """The largest relative error, entries below 1e-6 of the largest taken relative to
    1e-6 of it (a structural zero of a triangular factor against rounding of 1e-17)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape
    scale = np.maximum(np.abs(b), np.max(np.abs(b)) * 1e-6)
    return float(np.max(np.abs(a - b) / scale))


def _concentrations(wc):
    return list(wc) if isinstance(wc, tuple) else [wc]


# ---------------------------------------------------------------------- one step = sklearn's
def _statistics_state(X, resp, covariance_type, reg_covar):
    """The state whose statistics are those of the responsibilities ``resp`` (scikit-learn's
    ``_estimate_gaussian_parameters``): its posterior is scikit-learn's ``_initialize``."""
    nk, xk, sk = _estimate_gaussian_parameters(X, resp, reg_covar, covariance_type)
    cov = core.covariance(covariance_type)
    backend = core.select_backend(X)
    return core.MixtureState(
        weights=nk / nk.sum(), means=xk, covariances=sk,
        precisions_cholesky=backend.precision_cholesky(sk, covariance_type), mass=nk,
        nu=nk.copy(), moment=cov.moment_from_covariances(sk, nk, reg_covar),
        tied_mass=np.array([nk.sum()]), seeded=np.ones(len(nk), dtype=bool),
    )


def one_sklearn_iteration(covariance_type, prior_type, empty=None):
    """``(X, resp, ref, log_prob_norm, log_resp)``: scikit-learn's ``_initialize`` from
    random responsibilities ``resp`` on rows far from the origin (K = 4, the priors given:
    0.3, 0.7, D + 0.5), then one ``_e_step`` and ``_m_step``. ``empty``: a column of
    ``resp`` that is zero (a component with no evidence: its posterior is the prior's)."""
    X, _, _ = blobs(n=700, K=4, D=3, seed=4)
    X = X + 50.0
    resp = np.random.default_rng(3).dirichlet(np.ones(4), X.shape[0])
    if empty is not None:
        resp[:, empty] = 0.0
        resp /= resp.sum(axis=1, keepdims=True)
    ref = BayesianGaussianMixture(
        n_components=4, covariance_type=covariance_type, reg_covar=1e-6,
        weight_concentration_prior_type=prior_type, weight_concentration_prior=0.3,
        mean_precision_prior=0.7, degrees_of_freedom_prior=X.shape[1] + 0.5)
    ref._check_parameters(X)
    ref._initialize(X, resp)
    log_prob_norm, log_resp = ref._e_step(X)
    ref._m_step(X, log_resp)
    return X, resp, ref, log_prob_norm, log_resp


@pytest.mark.parametrize("backend", ["numba", "reference"])
@pytest.mark.parametrize("prior_type", PRIORS)
@pytest.mark.parametrize("covariance_type", TYPES)
def test_one_step_of_size_one_equals_one_batch_variational_iteration(covariance_type,
                                                                      prior_type, backend):
    """From given variational parameters (the posterior of random responsibilities, as
    scikit-learn's ``_initialize``), one step whose forgetting replaces the statistics by the
    batch's (``forgetting_rate=1``: step size 1) equals scikit-learn's ``_e_step`` then
    ``_m_step``, every fitted attribute to 1e-8 relative; the data sit far from the origin."""
    X, resp, ref, _, log_resp = one_sklearn_iteration(covariance_type, prior_type)
    K, reg = 4, 1e-6
    ref._set_parameters(ref._get_parameters())  # weights_ and precisions_

    with core.use_backend(backend):
        b = core.select_backend(X)
        prior = resolve_prior(X, covariance_type=covariance_type, n_components=K,
                              reg_covar=reg, weight_concentration_prior_type=prior_type,
                              weight_concentration_prior=0.3, mean_precision_prior=0.7,
                              degrees_of_freedom_prior=X.shape[1] + 0.5, xp=b.xp)
        state = _statistics_state(X, resp, covariance_type, reg)
        config = core.EMConfig(K, covariance_type, reg, max_reseed=0, prior=prior)
        new, _ = core.em_step(state, X, np.ones(X.shape[0]), config=config, temperature=1.0,
                              forgetting_rate=1.0, rng=np.random.RandomState(0), backend=b,
                              seeding=False)
        post = posterior(new, prior, covariance_type=covariance_type, reg_covar=reg,
                         backend=b)
    for ours, theirs in POSTERIOR_ATTRIBUTES.items():
        assert _relative_error(getattr(post, theirs), getattr(ref, ours)) < 1e-8, ours
    for a, r in zip(_concentrations(post.weight_concentration),
                    _concentrations(ref.weight_concentration_), strict=True):
        assert _relative_error(a, r) < 1e-8, "weight_concentration_"


@pytest.mark.parametrize("covariance_type", TYPES)
def test_the_default_prior_is_scikit_learns(covariance_type):
    X, _, _ = blobs(n=300, K=3, D=4, seed=2)
    ref = BayesianGaussianMixture(n_components=5, covariance_type=covariance_type)
    ref._check_parameters(X)
    model = OnlineBayesianGaussianMixture(5, covariance_type=covariance_type, random_state=0)
    with pytest.warns(ConvergenceWarning):
        model.set_params(max_iter=1).fit(X)
    for name in ("weight_concentration_prior_", "mean_precision_prior_", "mean_prior_",
                 "degrees_of_freedom_prior_", "covariance_prior_"):
        np.testing.assert_allclose(getattr(model, name), getattr(ref, name), rtol=1e-12,
                                   err_msg=name)


def test_the_default_prior_weighs_the_first_batch_by_sample_weight():
    X, _, _ = blobs(n=200, K=3, D=3, seed=6)
    w = np.r_[np.ones(150), np.zeros(50)]
    weighted = OnlineBayesianGaussianMixture(3, random_state=0).partial_fit(X, sample_weight=w)
    kept = OnlineBayesianGaussianMixture(3, random_state=0).partial_fit(X[:150])
    np.testing.assert_allclose(weighted.mean_prior_, kept.mean_prior_, rtol=1e-12)
    np.testing.assert_allclose(weighted.covariance_prior_, kept.covariance_prior_, rtol=1e-12)


# ---------------------------------------------------------------------- scikit-learn's API
@parametrize_with_checks(
    [
        OnlineBayesianGaussianMixture(random_state=0),
        OnlineBayesianGaussianMixture(
            n_components=2, covariance_type="full",
            weight_concentration_prior_type="dirichlet_distribution", random_state=0),
        OnlineBayesianGaussianMixture(n_components=2, covariance_type="tied", random_state=0),
        OnlineBayesianGaussianMixture(n_components=2, covariance_type="spherical",
                                      batch_size=7, random_state=0),
    ]
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_the_estimator_is_built_from_the_table():
    signature = inspect.signature(OnlineBayesianGaussianMixture.__init__).parameters
    names = set(core.VARIATIONAL_MIXTURE_PARAMETERS)
    assert set(OnlineBayesianGaussianMixture().get_params()) == names
    assert set(OnlineBayesianGaussianMixture._parameter_constraints) == names
    for name in names:
        assert signature[name].default == core.PARAMETERS[name].default, name
    sk = set(BayesianGaussianMixture().get_params())
    assert sk <= names  # every parameter of scikit-learn's, and the online ones
    assert not names & set(core.INITIAL_PARAMETERS)


@pytest.mark.parametrize("covariance_type", TYPES)
@pytest.mark.parametrize("prior_type", PRIORS)
def test_to_sklearn_gives_the_same_model(covariance_type, prior_type):
    X, _, _ = blobs(n=900, seed=1)
    model = OnlineBayesianGaussianMixture(
        5, covariance_type=covariance_type, weight_concentration_prior_type=prior_type,
        random_state=0)
    for batch in np.array_split(X, 6):
        model.partial_fit(batch)
    sk = model.to_sklearn()
    assert isinstance(sk, BayesianGaussianMixture)
    np.testing.assert_allclose(sk.score_samples(X), model.score_samples(X), rtol=1e-10)
    np.testing.assert_allclose(sk.predict_proba(X), model.predict_proba(X), atol=1e-10)
    np.testing.assert_array_equal(sk.predict(X), model.predict(X))
    np.testing.assert_allclose(sk.score(X), model.score(X), rtol=1e-10)
    Xs, ys = model.sample(50)
    assert Xs.shape == (50, X.shape[1]) and np.all(np.isfinite(Xs))


def test_pickle_resume_mid_stream_is_bit_identical():
    X, _, _ = blobs(n=2400, K=4, D=5, seed=8)
    batches = np.array_split(X, 12)
    kw = dict(n_components=8, covariance_type="full", forgetting_rate=0.02,
              temperature_init=2.0, anneal_steps=4, warmup_size=600, random_state=0)
    straight = OnlineBayesianGaussianMixture(**kw)
    for b in batches:
        straight.partial_fit(b)
    first = OnlineBayesianGaussianMixture(**kw)
    for b in batches[:5]:
        first.partial_fit(b)
    resumed = pickle.loads(pickle.dumps(first))
    for b in batches[5:]:
        resumed.partial_fit(b)
    assert set(resumed.__dict__) == set(straight.__dict__)
    for name, value in straight.__dict__.items():
        _assert_bit_identical(getattr(resumed, name), value, name)
    np.testing.assert_array_equal(resumed.predict_proba(X), straight.predict_proba(X))


def _assert_bit_identical(a, b, name):
    if dataclasses.is_dataclass(b):
        for f in dataclasses.fields(b):
            _assert_bit_identical(getattr(a, f.name), getattr(b, f.name), f"{name}.{f.name}")
    elif isinstance(b, tuple):
        assert isinstance(a, tuple) and len(a) == len(b), name
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_bit_identical(x, y, f"{name}[{i}]")
    elif isinstance(b, np.ndarray):
        np.testing.assert_array_equal(a, b, err_msg=name)
    elif isinstance(b, np.random.RandomState):
        sa, sb = a.get_state(), b.get_state()
        assert sa[0] == sb[0] and np.array_equal(sa[1], sb[1]) and sa[2:] == sb[2:], name
    elif b is None or isinstance(b, (bool, int, float, str)):
        assert a == b or (a != a and b != b), name
    # (other objects: the lock, callables; compared through what they produce)


# ---------------------------------------------------------------------- numerics
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("covariance_type", TYPES)
@pytest.mark.parametrize("offset,scale", [(0.0, 1.0), (1e6, 1.0), (0.0, 1e-6), (0.0, 1e6)])
def test_no_nan_escapes_in_either_precision(covariance_type, dtype, offset, scale):
    X, _, _ = blobs(n=800, K=3, D=4, seed=5)
    X = (X * scale + offset).astype(dtype)
    model = OnlineBayesianGaussianMixture(6, covariance_type=covariance_type, random_state=0,
                                          warmup_size=200)
    for batch in np.array_split(X, 8):
        model.partial_fit(batch)
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_",
                 "mean_precision_", "degrees_of_freedom_"):
        assert np.all(np.isfinite(getattr(model, name))), name
    assert model.weights_.sum() == pytest.approx(1.0) and np.all(model.weights_ >= 0)
    resp = model.predict_proba(X)  # float64 whatever the data, as scikit-learn's
    assert resp.dtype == np.float64 and np.all(np.isfinite(resp))
    np.testing.assert_allclose(resp.sum(axis=1), 1.0, rtol=1e-5)
    ll = model.score_samples(X)
    assert ll.dtype == np.float64 and np.all(np.isfinite(ll))


def test_a_batch_of_one_row_and_a_constant_feature():
    X = np.c_[np.random.default_rng(0).normal(size=(50, 2)), np.full(50, 3.0)]
    model = OnlineBayesianGaussianMixture(3, covariance_type="full", random_state=0)
    model.partial_fit(X[:1])  # the prior's covariance of one row: reg_covar on the diagonal
    for batch in np.array_split(X[1:], 5):
        model.partial_fit(batch)
    assert np.all(np.isfinite(model.score_samples(X)))
    with pytest.raises(ValueError, match="reg_covar is 0"):
        OnlineBayesianGaussianMixture(2, reg_covar=0.0).partial_fit(X)


# ---------------------------------------------------------------------- what the prior does
@pytest.mark.parametrize("prior_type", PRIORS)
def test_one_pass_switches_off_the_components_the_data_do_not_need(prior_type):
    """12 components on 3 separated clusters: one pass leaves 3 with weight above
    1 / (10 K), the rest near zero (scikit-learn's batch fit on the same data keeps 3 with
    the Dirichlet distribution and splits a cluster with the Dirichlet process)."""
    X, _, _ = blobs(n=6000, K=3, D=4, sep=8.0, seed=9)
    model = OnlineBayesianGaussianMixture(12, weight_concentration_prior_type=prior_type,
                                          random_state=0)
    for batch in np.array_split(X, 20):
        model.partial_fit(batch)
    weights = np.sort(model.weights_)[::-1]
    assert np.all(weights[:3] > 0.3) and np.all(weights[3:] < 1e-3)


# ---------------------------------------------------------------------- parameters
@pytest.mark.parametrize("params,message", [
    (dict(degrees_of_freedom_prior=1.5), "'degrees_of_freedom_prior' should be greater than 2"),
    (dict(mean_prior=[0.0, 0.0]), "'means' should have the shape of \\(3,\\)"),
    (dict(covariance_type="full", covariance_prior=np.eye(2)),
     "'full covariance_prior' should have the shape of \\(3, 3\\)"),
    (dict(covariance_type="tied", covariance_prior=-np.eye(3)),
     "'tied covariance_prior' should be symmetric, positive-definite"),
    (dict(covariance_type="diag", covariance_prior=[1.0, -1.0, 1.0]),
     "'diag covariance_prior' should be positive"),
    (dict(covariance_type="spherical", covariance_prior=[1.0, 2.0, 3.0]),
     "'spherical covariance_prior' should have the shape of \\(\\)"),
])
def test_the_prior_is_checked_as_scikit_learn_checks_it(params, message):
    X = np.random.default_rng(0).normal(size=(30, 3))
    model = OnlineBayesianGaussianMixture(2, **params)
    with pytest.raises(ValueError, match=message):
        model.partial_fit(X)
    assert not hasattr(model, "_state")  # a failed first call leaves the model unfitted


def test_given_priors_are_used():
    X = np.random.default_rng(0).normal(size=(200, 3))
    model = OnlineBayesianGaussianMixture(
        2, covariance_type="spherical", weight_concentration_prior=2.0,
        mean_precision_prior=3.0, mean_prior=[1.0, 2.0, 3.0], degrees_of_freedom_prior=4.0,
        covariance_prior=0.5, random_state=0).partial_fit(X)
    assert model.weight_concentration_prior_ == 2.0 and model.mean_precision_prior_ == 3.0
    np.testing.assert_array_equal(model.mean_prior_, [1.0, 2.0, 3.0])
    assert model.degrees_of_freedom_prior_ == 4.0 and float(model.covariance_prior_) == 0.5
    np.testing.assert_allclose(model.degrees_of_freedom_, 4.0 + model._state.mass)


def test_prior_parameters_are_checked_after_a_change():
    X = np.random.default_rng(0).normal(size=(40, 2))
    model = OnlineBayesianGaussianMixture(2, random_state=0).partial_fit(X)
    for name, value in dict(weight_concentration_prior=-1.0, mean_precision_prior=0.0,
                            weight_concentration_prior_type="x",
                            covariance_prior="x").items():
        good = getattr(model, name)
        setattr(model, name, value)
        with pytest.raises(InvalidParameterError, match=name):
            model.partial_fit(X)
        setattr(model, name, good)
    model.partial_fit(X)


def test_what_it_does_not_take():
    with pytest.raises(NotImplementedError, match="from_sklearn"):
        OnlineBayesianGaussianMixture.from_sklearn(BayesianGaussianMixture())
    da = pytest.importorskip("dask.array", reason="the dask extra is not installed")
    X = da.from_array(np.random.default_rng(0).normal(size=(40, 2)), chunks=20)
    with pytest.raises(TypeError, match="Dask"):
        OnlineBayesianGaussianMixture(2).partial_fit(X)
