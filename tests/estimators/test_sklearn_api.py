"""scikit-learn's own estimator checks, and the scikit-learn-facing surface."""

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from online_gmm import OnlineGaussianMixture

from .._data import blobs


@parametrize_with_checks(
    [
        OnlineGaussianMixture(random_state=0),
        OnlineGaussianMixture(n_components=2, covariance_type="full", random_state=0),
        OnlineGaussianMixture(n_components=2, covariance_type="tied", random_state=0),
        OnlineGaussianMixture(
            n_components=2, covariance_type="spherical", batch_size=7, random_state=0
        ),
    ]
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_to_sklearn_gives_the_same_model(covariance_type):
    X, _, _ = blobs(n=900)
    model = OnlineGaussianMixture(3, covariance_type=covariance_type, random_state=0)
    with pytest.warns(ConvergenceWarning):
        model.set_params(max_iter=1).fit(X)
    sk = model.to_sklearn()
    np.testing.assert_allclose(sk.score_samples(X), model.score_samples(X), rtol=1e-10)
    np.testing.assert_allclose(sk.predict_proba(X), model.predict_proba(X), atol=1e-10)
    np.testing.assert_array_equal(sk.predict(X), model.predict(X))
    assert sk.bic(X) == pytest.approx(model.bic(X), rel=1e-10)
    assert sk.aic(X) == pytest.approx(model.aic(X), rel=1e-10)


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_from_sklearn_starts_from_the_fitted_model(covariance_type):
    X, _, _ = blobs(n=900, seed=3)
    sk = GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(X)
    model = OnlineGaussianMixture.from_sklearn(sk, n_samples_seen=len(X), random_state=0)
    np.testing.assert_allclose(model.score_samples(X), sk.score_samples(X), rtol=1e-10)
    before = model.means_.copy()
    model.partial_fit(X[:100])
    assert model.n_steps_ == 1
    # 100 new samples against 900 of evidence: the means move, but only a little
    shift = np.abs(model.means_ - before).max()
    assert 0 < shift < 0.5


def test_from_sklearn_rejects_mismatched_parameters():
    sk = GaussianMixture(2).fit(np.random.default_rng(0).normal(size=(50, 2)))
    with pytest.raises(ValueError, match="must match"):
        OnlineGaussianMixture.from_sklearn(sk, n_components=3)


def test_to_sklearn_refuses_unseeded_components():
    model = OnlineGaussianMixture(5, random_state=0).partial_fit(np.eye(3))
    with pytest.raises(ValueError, match="not been seeded"):
        model.to_sklearn()


def test_sample_draws_from_the_mixture():
    X, _, means = blobs(n=3000, K=2, D=2, sep=20)
    model = OnlineGaussianMixture(2, random_state=0).fit(X)
    S, labels = model.sample(4000)
    assert S.shape == (4000, 2) and labels.shape == (4000,)
    for k in range(2):
        np.testing.assert_allclose(S[labels == k].mean(0), model.means_[k], atol=0.15)
    np.testing.assert_allclose(np.bincount(labels) / 4000, model.weights_, atol=0.03)


def test_fit_converges_and_reports_it():
    X, _, _ = blobs(n=2000, K=3, D=3)
    model = OnlineGaussianMixture(3, batch_size=256, tol=1e-3, random_state=0).fit(X)
    assert model.converged_
    assert 1 < model.n_iter_ < 100
    assert model.lower_bound_ == pytest.approx(model.score(X), rel=0.02)


def test_fit_warns_when_not_converged():
    X, _, _ = blobs(n=500)
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        model = OnlineGaussianMixture(3, max_iter=1, random_state=0).fit(X)
    assert not model.converged_ and model.n_iter_ == 1


def test_n_init_keeps_the_best_restart():
    X, _, _ = blobs(n=600, K=4, D=2, sep=3)
    scores = [
        OnlineGaussianMixture(4, random_state=s, max_iter=5, tol=0).fit(X).lower_bound_
        for s in range(3)
    ]
    best = OnlineGaussianMixture(4, n_init=3, max_iter=5, tol=0, random_state=0)
    with pytest.warns(ConvergenceWarning):
        best.fit(X)
    assert best.lower_bound_ >= max(scores[:1]) - 1e-12
    assert best.lower_bound_ == pytest.approx(best.lower_bound_)


def test_warm_start_continues_instead_of_resetting():
    X, _, _ = blobs(n=600)
    model = OnlineGaussianMixture(3, warm_start=True, max_iter=2, tol=0.0, random_state=0)
    with pytest.warns(ConvergenceWarning):
        model.fit(X)
    steps = model.n_steps_
    with pytest.warns(ConvergenceWarning):
        model.fit(X)
    assert model.n_steps_ == 2 * steps


def test_transform_feeds_a_pipeline():
    X, _, _ = blobs(n=300)
    pipe = make_pipeline(StandardScaler(), OnlineGaussianMixture(3, random_state=0))
    Z = pipe.fit_transform(X)
    assert Z.shape == (300, 3)
    np.testing.assert_allclose(Z.sum(axis=1), 1.0)
    names = pipe[-1].get_feature_names_out()
    assert list(names) == [f"onlinegaussianmixture{i}" for i in range(3)]


def test_float32_in_float32_out():
    X, _, _ = blobs(n=500, dtype=np.float32)
    model = OnlineGaussianMixture(3, random_state=0).partial_fit(X)
    assert model.predict_proba(X).dtype == np.float32
    assert model.score_samples(X).dtype == np.float32
    assert model.transform(X).dtype == np.float32
    # the fitted attributes are float32, as scikit-learn's; the statistics accumulate in
    # float64 so a long float32 stream cannot stall its counts
    assert model.means_.dtype == np.float32
    assert model._state.means.dtype == np.float64
