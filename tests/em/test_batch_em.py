"""``fit`` is scikit-learn's batch EM (``docs/algorithm.md``, "What fit means"): from the
same start, the same iterations, bounds and optimum as ``GaussianMixture`` /
``BayesianGaussianMixture``, for every covariance type; the drop-in behaviours of their
``fit`` (``warm_start``, ``max_iter=0``, ``lower_bounds_``, too few samples)."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import BayesianGaussianMixture, GaussianMixture

import online_gmm._em.batch as batch_em_mod
import online_gmm._em.fit_init as fit_init_mod
from online_gmm import OnlineBayesianGaussianMixture, OnlineGaussianMixture, load

from .._data import assert_same_state, blobs, state_snapshot

FIXTURES = Path(__file__).parents[1] / "fixtures"
TYPES = ("full", "tied", "diag", "spherical")


def _quiet_fit(model, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X)


def _data(n=1200, K=4, D=3, seed=0):
    X, _, _ = blobs(n=n, K=K, D=D, seed=seed)
    return X[np.random.default_rng(seed).permutation(len(X))]


def _assert_same_fit(ours, theirs, rtol=1e-7):
    np.testing.assert_allclose(ours.weights_, theirs.weights_, rtol=rtol, atol=1e-12)
    np.testing.assert_allclose(ours.means_, theirs.means_, rtol=rtol, atol=1e-10)
    np.testing.assert_allclose(ours.covariances_, theirs.covariances_, rtol=rtol, atol=1e-10)
    np.testing.assert_allclose(ours.precisions_cholesky_, theirs.precisions_cholesky_,
                               rtol=1e-6, atol=1e-8)
    assert ours.n_iter_ == theirs.n_iter_
    assert ours.converged_ == theirs.converged_
    np.testing.assert_allclose(ours.lower_bound_, theirs.lower_bound_, rtol=1e-9)
    # (rtol 1e-5: a one-hot start's first bound is taken at covariances of reg_covar, where
    # distances of 1e8 variances carry the rounding of the two implementations' sums)
    np.testing.assert_allclose(ours.lower_bounds_, np.ravel(theirs.lower_bounds_), rtol=1e-5)


# scikit-learn's tied covariance of a one-hot start (``random_from_data``, ``k-means++``)
# counts every row of X (its formula assumes each row's responsibilities sum to one), ours
# only the rows that seed: those two starts differ by design (README's table)
SAME_START = [(ct, init) for ct in TYPES for init in ("kmeans", "random", "random_from_data",
                                                        "k-means++")
              if not (ct == "tied" and init in ("random_from_data", "k-means++"))]


@pytest.mark.parametrize("covariance_type, init_params", SAME_START)
def test_fit_is_scikit_learns_em_from_the_same_random_state(covariance_type, init_params):
    X = _data()
    params = dict(covariance_type=covariance_type, init_params=init_params, random_state=3,
                  tol=1e-6, max_iter=200)
    theirs = GaussianMixture(4, **params).fit(X)
    ours = OnlineGaussianMixture(4, warmup_size=0, **params).fit(X)
    _assert_same_fit(ours, theirs)
    np.testing.assert_array_equal(ours.fit_predict(X), theirs.fit_predict(X))


@pytest.mark.parametrize("covariance_type", TYPES)
def test_fit_from_the_same_initial_parameters_reaches_scikit_learns_optimum(covariance_type):
    X = _data(n=1500, K=5, D=4, seed=1)
    X_train, X_test = X[:1200], X[1200:]
    start = GaussianMixture(5, covariance_type=covariance_type, max_iter=1,
                            random_state=0).fit(X_train)  # (a ConvergenceWarning)
    init = dict(weights_init=start.weights_, means_init=start.means_,
                precisions_init=start.precisions_)
    theirs = GaussianMixture(5, covariance_type=covariance_type, **init).fit(X_train)
    ours = OnlineGaussianMixture(5, covariance_type=covariance_type, **init).fit(X_train)
    assert abs(ours.score(X_test) - theirs.score(X_test)) <= 1e-4 * abs(theirs.score(X_test))
    assert abs(ours.n_iter_ - theirs.n_iter_) <= 2
    _assert_same_fit(ours, theirs)


@pytest.mark.parametrize("given", ["weights_init", "precisions_init", "means_init"])
def test_each_initial_parameter_is_honoured_alone(given):
    # scikit-learn replaces only the part given; the rest comes from init_params's start
    X = _data(n=900, K=3, D=2, seed=2)
    start = GaussianMixture(3, covariance_type="diag", max_iter=1, random_state=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        start.fit(X[::-1])
    value = {"weights_init": np.array([0.2, 0.3, 0.5]),
             "precisions_init": 4.0 * start.precisions_, "means_init": start.means_ + 1.0}[given]
    params = dict(covariance_type="diag", init_params="kmeans", random_state=0, max_iter=3,
                  **{given: value})
    theirs = _quiet_fit(GaussianMixture(3, **params), X)
    ours = _quiet_fit(OnlineGaussianMixture(3, **params), X)
    _assert_same_fit(ours, theirs)
    plain = _quiet_fit(OnlineGaussianMixture(3, **{**params, given: None}), X)
    assert not np.allclose(plain.lower_bounds_[0], ours.lower_bounds_[0])  # it mattered


@pytest.mark.parametrize("covariance_type", TYPES)
@pytest.mark.parametrize("init_params", ["kmeans", "random"])
def test_variational_fit_is_scikit_learns(covariance_type, init_params):
    X = _data(n=300, K=3, D=3, seed=4)
    params = dict(covariance_type=covariance_type, init_params=init_params, random_state=0,
                  max_iter=300)
    theirs = BayesianGaussianMixture(n_components=5, **params).fit(X)
    ours = OnlineBayesianGaussianMixture(5, **params).fit(X)
    for name in ("weights_", "means_", "covariances_", "degrees_of_freedom_",
                 "mean_precision_", "weight_concentration_"):
        np.testing.assert_allclose(np.asarray(getattr(ours, name), dtype=float),
                                   np.asarray(getattr(theirs, name), dtype=float),
                                   rtol=1e-7, atol=1e-9, err_msg=name)
    assert ours.n_iter_ == theirs.n_iter_
    np.testing.assert_allclose(ours.lower_bound_, np.ravel(theirs.lower_bound_)[0], rtol=1e-9)


def test_variational_fit_counts_every_row_once():
    # the defect this fixes: epochs of online steps counted each row once per epoch
    X = np.random.RandomState(0).randn(10, 2)
    params = dict(covariance_type="full", init_params="kmeans", random_state=0)
    theirs = BayesianGaussianMixture(n_components=2, **params).fit(X)
    ours = OnlineBayesianGaussianMixture(2, **params).fit(X)
    np.testing.assert_allclose(ours.degrees_of_freedom_, theirs.degrees_of_freedom_,
                               rtol=1e-9)
    assert ours.degrees_of_freedom_.sum() < 2 * 2 + len(X) + 1e-9  # prior dof + n rows


def test_warm_start_with_one_iteration_converges_on_repeated_fit():
    X = _data(n=600, K=3, D=2, seed=5)
    ours = OnlineGaussianMixture(3, warm_start=True, max_iter=1, random_state=0)
    theirs = GaussianMixture(3, covariance_type="diag", warm_start=True, max_iter=1,
                             random_state=0)
    calls = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        while not ours.converged_ if calls else True:
            ours.fit(X)
            calls += 1
            assert calls < 50
        theirs_calls = 0
        while not theirs_calls or not theirs.converged_:
            theirs.fit(X)
            theirs_calls += 1
    assert calls < 50 and ours.converged_
    assert calls <= theirs_calls + 2


def test_warm_start_continues_from_the_last_bound():
    X = _data(n=600, K=3, D=2, seed=5)
    model = _quiet_fit(OnlineGaussianMixture(3, warm_start=True, max_iter=2, tol=0,
                                             random_state=0), X)
    first = list(model.lower_bounds_)
    _quiet_fit(model, X)
    assert len(model.lower_bounds_) == 2 and model.lower_bounds_[0] >= first[-1] - 1e-12
    assert model.n_steps_ == 4


def test_max_iter_zero_returns_the_initialisation():
    X = _data(n=600, K=3, D=2, seed=6)
    params = dict(covariance_type="diag", init_params="kmeans", random_state=0, max_iter=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # no warning with max_iter=0
        ours = OnlineGaussianMixture(3, **params).fit(X)
        theirs = GaussianMixture(3, **params).fit(X)
    assert ours.n_iter_ == theirs.n_iter_ == 0
    assert ours.lower_bounds_ == [] and ours.lower_bound_ == theirs.lower_bound_ == -np.inf
    np.testing.assert_allclose(ours.means_, theirs.means_, rtol=1e-10)
    np.testing.assert_allclose(ours.covariances_, theirs.covariances_, rtol=1e-10)


def test_lower_bounds_are_the_best_initialisations():
    X = _data(n=900, K=4, D=2, seed=7)
    model = OnlineGaussianMixture(4, n_init=3, init_params="random", random_state=0,
                                  max_iter=300).fit(X)
    assert len(model.lower_bounds_) == model.n_iter_
    assert model.lower_bounds_[-1] == model.lower_bound_
    assert np.all(np.diff(model.lower_bounds_) >= -1e-10)  # EM never lowers its bound


def test_fewer_samples_than_components_is_scikit_learns_error():
    X = _data(n=300, K=3, D=2, seed=8)[:4]
    message = "Expected n_samples >= n_components but got n_components = 5, n_samples = 4"
    with pytest.raises(ValueError, match=re.escape(message)):
        GaussianMixture(5).fit(X)
    model = OnlineGaussianMixture(5)
    with pytest.raises(ValueError, match=re.escape(message)):
        model.fit(X)
    assert not hasattr(model, "n_features_in_")  # nothing changed
    OnlineGaussianMixture(5).partial_fit(X)  # a stream may start with fewer: documented


def test_fit_anneals_over_iterations():
    X = _data(n=600, K=3, D=2, seed=9)
    # at a huge temperature every row's responsibilities are uniform: one iteration puts
    # every mean on the data's mean
    hot = _quiet_fit(OnlineGaussianMixture(3, init_params="kmeans", temperature_init=1e9,
                                           temperature_final=1.0, anneal_steps=50,
                                           anneal_schedule="linear", max_iter=1,
                                           random_state=0), X)
    np.testing.assert_allclose(hot.means_, np.broadcast_to(X.mean(axis=0), (3, 2)), atol=1e-6)
    annealed = OnlineGaussianMixture(3, init_params="kmeans", temperature_init=5.0,
                                     anneal_steps=20, anneal_schedule="linear",
                                     random_state=0).fit(X)
    assert annealed.n_iter_ > 20 and annealed.converged_  # no convergence while annealing
    plain = OnlineGaussianMixture(3, init_params="kmeans", random_state=0).fit(X)
    assert annealed.score(X) == pytest.approx(plain.score(X), rel=1e-3)


def test_forgetting_does_not_apply_to_fit():
    X = _data(n=600, K=3, D=2, seed=10)
    a = OnlineGaussianMixture(3, random_state=0).fit(X)
    b = OnlineGaussianMixture(3, random_state=0, forgetting_rate=0.5).fit(X)
    np.testing.assert_array_equal(a.means_, b.means_)
    np.testing.assert_array_equal(a.covariances_, b.covariances_)


def test_partial_fit_continues_a_fit_with_its_evidence():
    X = _data(n=1200, K=3, D=2, seed=11)
    model = OnlineGaussianMixture(3, random_state=0).fit(X[:1000])
    assert model.n_samples_seen_ == 1000
    np.testing.assert_allclose(model._state.mass.sum(), 1000.0)  # every row once
    means = model.means_.copy()
    model.partial_fit(X[1000:])
    assert model.n_samples_seen_ == 1200
    assert np.abs(model.means_ - means).max() < 0.5  # 200 rows move 1000 rows' fit little


def test_default_fit_is_as_good_as_scikit_learns():
    X = _data(n=3000, K=6, D=5, seed=12)
    X_train, X_test = X[:2400], X[2400:]
    theirs = GaussianMixture(6, covariance_type="diag", random_state=0).fit(X_train)
    ours = OnlineGaussianMixture(6, random_state=0).fit(X_train)
    gap = (theirs.score(X_test) - ours.score(X_test)) / abs(theirs.score(X_test))
    assert gap <= 0.005
    assert ours.converged_


def test_the_iterations_count_every_row_once(monkeypatch):
    X = _data(n=700, K=3, D=2, seed=13)
    seen = []
    original = batch_em_mod.Rows.statistics

    def spy(self, state, config, inv_temp):
        stats = original(self, state, config, inv_temp)
        seen.append((self.n_samples, stats.weight, float(np.sum(stats.mass))))
        return stats

    monkeypatch.setattr(batch_em_mod.Rows, "statistics", spy)
    model = _quiet_fit(OnlineGaussianMixture(3, warmup_size=0, init_params="kmeans",
                                             max_iter=4, tol=0, random_state=0), X)
    assert len(seen) == model.n_iter_ == 4
    for n, weight, mass in seen:
        assert n == 700 and weight == 700.0 and mass == pytest.approx(700.0)


@pytest.mark.parametrize("n, init_size, expected", [(1000, None, 1000), (1000, 300, 300),
                                                    (100, 10_000, 100)])
def test_init_size_rows_initialise(monkeypatch, n, init_size, expected):
    calls = []
    original = fit_init_mod.responsibilities

    def spy(X, *args):
        calls.append(np.array(X))
        return original(X, *args)

    monkeypatch.setattr(fit_init_mod, "responsibilities", spy)
    X = np.random.default_rng(0).standard_normal((n, 3))
    _quiet_fit(OnlineGaussianMixture(5, init_params="kmeans", init_size=init_size,
                                     max_iter=1, random_state=0), X)
    (sample,) = calls
    assert sample.shape == (expected, 3)
    rows = {r.tobytes() for r in X}
    assert all(r.tobytes() in rows for r in sample)  # rows of X, without replacement
    assert len({r.tobytes() for r in sample}) == expected


def test_fit_is_reproducible_and_random_state_matters():
    X = _data(n=800, K=4, D=2, seed=14)
    a = OnlineGaussianMixture(4, random_state=3).fit(X)
    b = OnlineGaussianMixture(4, random_state=3).fit(X)
    assert_same_state(state_snapshot(a), state_snapshot(b))


@pytest.mark.parametrize("bad, error", [(0, ValueError), (-3, ValueError), (2.5, TypeError),
                                        ("10", TypeError)])
def test_init_size_is_checked_before_anything_changes(bad, error):
    X = _data(n=200, K=3, D=2, seed=15)
    model = OnlineGaussianMixture(3, random_state=0).partial_fit(X)
    before = state_snapshot(model)
    model.set_params(init_size=bad)
    with pytest.raises(error, match="init_size"):
        model.fit(X)
    after = state_snapshot(model)
    after["init_size"] = before["init_size"]
    assert_same_state(after, before)


def test_a_failed_fit_leaves_the_fitted_model_as_it_was():
    X = _data(n=300, K=3, D=2, seed=16)
    model = OnlineGaussianMixture(3, random_state=0).fit(X)
    before = state_snapshot(model)
    with pytest.raises(ValueError):
        model.fit(np.r_[X, [[np.nan, 0.0]]])
    assert_same_state(state_snapshot(model), before)


def test_a_model_saved_before_init_size_existed_gets_the_default():
    model = load(FIXTURES / "model_v0.1.0.joblib", trusted=True)  # a pickle-based file
    assert model.get_params()["init_size"] is None
    assert clone(model).init_size is None


def test_fit_never_returns_an_unseeded_component():
    # a warm start from a stream that seeded one component of three starts afresh, and an
    # init_size smaller than n_components is refused (batch EM seeds no component)
    X = _data(n=600, K=3, D=2, seed=17)
    model = OnlineGaussianMixture(3, random_state=0, warm_start=True, warmup_size=0)
    model.partial_fit(X[:1])
    assert not model._state.seeded.all()
    model.fit(X)
    assert model._state.seeded.all() and np.all(model.weights_ > 0.05)
    with pytest.raises(ValueError, match="init_size=2 is smaller than n_components=3"):
        OnlineGaussianMixture(3, random_state=0, init_size=2).fit(X)


def test_partial_fit_after_fit_is_not_converged_and_max_iter_zero_counts_its_start():
    X = _data(n=600, K=3, D=2, seed=18)
    model = OnlineGaussianMixture(3, random_state=0).fit(X)
    assert model.converged_
    model.partial_fit(X[:50])
    assert not model.converged_  # the fitted model has changed since
    start = OnlineGaussianMixture(3, random_state=0, max_iter=0).fit(X)
    np.testing.assert_allclose(start.n_samples_seen_, start._state.mass.sum(), rtol=1e-9)
    assert start.n_samples_seen_ < len(X)  # (the warm-up's sample, not every row)
