"""What the model learns: recovery of a known mixture in one pass, forgetting, annealing."""

import inspect

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment
from scipy.stats import spearmanr
from sklearn.mixture import GaussianMixture

from online_gmm import OnlineGaussianMixture
from online_gmm._backends import kernels as _kernels

from .._data import mixture

TYPES = ["full", "tied", "diag", "spherical"]


def _matched_error(est, true):
    cost = ((est[:, None, :] - true[None, :, :]) ** 2).sum(-1)
    r, c = linear_sum_assignment(cost)
    return np.sqrt(cost[r, c]).max()


@pytest.mark.parametrize("covariance_type", TYPES)
def test_one_pass_recovers_a_known_mixture(covariance_type):
    rng = np.random.default_rng(0)
    K, D = 5, 6
    # a random rotation of well-separated centres (pairwise distance 6 sqrt 2)
    Q, _ = np.linalg.qr(rng.normal(size=(D, D)))
    means = 6.0 * Q[:K] + rng.normal(0, 3, D)
    weights = np.array([0.1, 0.15, 0.2, 0.25, 0.3])
    X, _ = mixture(20000, means, np.full(K, 1.0), weights, seed=1)
    X_test, _ = mixture(5000, means, np.full(K, 1.0), weights, seed=2)
    model = OnlineGaussianMixture(K, covariance_type=covariance_type, random_state=0)
    for batch in np.array_split(X, 20000 // 512):
        model.partial_fit(batch)
    assert _matched_error(model.means_, means) < 0.1
    ref = GaussianMixture(K, covariance_type=covariance_type, random_state=0, n_init=3).fit(X)
    ours, theirs = model.score(X_test), ref.score(X_test)
    assert abs(ours - theirs) <= 0.01 * abs(theirs)


def _drift_stream(seed=0):
    before = np.array([[0.0, 0.0], [10.0, 0.0]])
    after = before + np.array([0.0, 6.0])
    X1, _ = mixture(6000, before, [1.0, 1.0], seed=seed)
    X2, _ = mixture(6000, after, [1.0, 1.0], seed=seed + 1)
    return X1, X2, after


def test_forgetting_tracks_a_changed_distribution():
    X1, X2, after = _drift_stream()
    X_new, _ = mixture(3000, after, [1.0, 1.0], seed=9)
    models = {
        eta: OnlineGaussianMixture(2, forgetting_rate=eta, random_state=0)
        for eta in (0.0, 0.01)
    }
    for m in models.values():
        for batch in np.array_split(np.concatenate([X1, X2]), 48):
            m.partial_fit(batch)
    assert _matched_error(models[0.01].means_, after) < 0.3
    assert _matched_error(models[0.0].means_, after) > 2.0  # stuck half way
    assert models[0.01].score(X_new) > models[0.0].score(X_new) + 0.5


def _batches_to_recover(model, X1, X2, after, n_batches=48, tol=0.3):
    """Batches after the shift until every mean is within ``tol`` of its new centre."""
    parts = np.array_split(np.concatenate([X1, X2]), n_batches)
    shift = n_batches // 2
    for i, batch in enumerate(parts):
        model.partial_fit(batch)
        if i >= shift and _matched_error(model.means_, after) < tol:
            return i - shift
    return n_batches  # never


def test_the_warm_up_keeps_drift_tracking_at_least_as_fast():
    """Contract, "Warm-up": after an abrupt drift, with forgetting, the model recovers at
    least as fast as without the warm-up (its buffer is not refit once forgetting is on)."""
    for seed in range(3):
        X1, X2, after = _drift_stream(seed)
        steps = {
            size: _batches_to_recover(
                OnlineGaussianMixture(2, forgetting_rate=0.01, warmup_size=size,
                                      random_state=seed), X1, X2, after)
            for size in ("auto", 0)
        }
        assert steps["auto"] <= steps[0] < 24, steps


ETA = 0.002


def _silence_component(forgetting):
    """Fit two clusters, then stream only cluster A; return (model, index of B, B before)."""
    X1, _ = mixture(4000, [[0.0, 0.0], [20.0, 0.0]], [1.0, 1.0], seed=0)
    # dead_threshold=0: the silent component's weight fades (time forgetting) but it must
    # not be reseeded, so that what its statistics keep can be seen
    model = OnlineGaussianMixture(
        2, forgetting=forgetting, forgetting_rate=ETA, dead_threshold=0.0, random_state=0
    )
    for batch in np.array_split(X1, 8):
        model.partial_fit(batch)
    b = int(np.argmax(model.means_[:, 0]))
    before = (model.means_[b].copy(), model.covariances_[b].copy(), model._state.mass[b])
    only_a, _ = mixture(4000, [[0.0, 0.0]], [1.0], seed=1)
    for batch in np.array_split(only_a, 8):
        model.partial_fit(batch)
    return model, b, before


def test_responsibility_forgetting_keeps_a_silent_component():
    model, b, (mean, cov, mass) = _silence_component("responsibility")
    np.testing.assert_allclose(model.means_[b], mean, rtol=1e-12)
    np.testing.assert_allclose(model.covariances_[b], cov, rtol=1e-12)
    assert model._state.mass[b] == pytest.approx(mass, rel=1e-12)


def test_uniform_forgetting_fades_a_silent_component():
    model, b, (mean, cov, mass) = _silence_component("uniform")
    # its evidence fades by (1 - eta) per sample streamed, whoever absorbed it...
    assert model._state.mass[b] == pytest.approx(mass * (1 - ETA) ** 4000, rel=1e-9)
    # ...so when its data comes back, shifted, it moves at once; the kept one barely does
    kept, bk, _ = _silence_component("responsibility")
    back, _ = mixture(64, [[20.0, 5.0]], [1.0], seed=3)
    model.partial_fit(back)
    kept.partial_fit(back)
    assert model.means_[b][1] > 4.0
    assert kept.means_[bk][1] < 1.0


def test_annealing_posterior_entropy_follows_the_temperature(monkeypatch):
    entropies = []
    original = _kernels.block_statistics
    g_at = list(inspect.signature(original.py_func).parameters).index("G")

    def recording(*args):  # the step's kernel: its G buffer ends as the responsibilities
        original(*args)
        G = args[g_at]
        assert G.shape[0] == 1  # one block (of the whole batch)
        rc = np.clip(G[0], 1e-300, 1)
        entropies.append(float(-(rc * np.log(rc)).sum(axis=1).mean()))

    monkeypatch.setattr(_kernels, "block_statistics", recording)
    rng = np.random.default_rng(0)
    means = rng.normal(0, 8, (6, 3))
    X, _ = mixture(6000, means, np.ones(6), seed=1)
    # Started at the truth so that only the temperature moves the posterior. (A much hotter
    # start merges every component into one: see docs/algorithm.md, "Annealing".)
    model = OnlineGaussianMixture(
        6, temperature_init=3.0, temperature_final=1.0, anneal_steps=15,
        anneal_schedule="linear", forgetting_rate=0.01, means_init=means, random_state=0,
    )
    temps = []
    for batch in np.array_split(X, 20):
        model.partial_fit(batch)
        temps.append(model.temperature_)
    assert temps[0] == 3.0 and temps[-1] == 1.0
    assert entropies[0] > 0.8 * np.log(6)  # hot: every component learns from every sample
    assert entropies[-1] < 0.3 * np.log(6)  # cold: nearly hard assignments
    rho, _ = spearmanr(temps, entropies)
    assert rho > 0.9


@pytest.mark.parametrize("schedule", ["constant", "linear", "cosine", "exponential"])
def test_temperature_schedules(schedule):
    X = np.random.default_rng(0).normal(size=(200, 2))
    model = OnlineGaussianMixture(
        2, temperature_init=8.0, temperature_final=2.0, anneal_steps=4,
        anneal_schedule=schedule, random_state=0,
    )
    temps = []
    for batch in np.array_split(X, 6):
        model.partial_fit(batch)
        temps.append(model.temperature_)
    assert temps[0] == 8.0
    if schedule == "constant":
        assert temps == [8.0] * 6
    else:
        assert temps[4:] == [2.0, 2.0]
        assert all(a > b for a, b in zip(temps[:4], temps[1:5], strict=True))
    if schedule == "linear":
        np.testing.assert_allclose(temps[:5], [8.0, 6.5, 5.0, 3.5, 2.0])


def test_callable_schedules_and_power_decay():
    from online_gmm import PowerDecay

    X = np.random.default_rng(0).normal(size=(300, 2))
    seen = []
    model = OnlineGaussianMixture(
        2, anneal_schedule=lambda t: seen.append(t) or 1.0 + 1.0 / (t + 1),
        forgetting_rate=PowerDecay(0.2, t0=1, alpha=1.0), random_state=0,
    )
    for batch in np.array_split(X, 3):
        model.partial_fit(batch)
    assert sorted(set(seen)) == [0, 1, 2]  # called with the step number
    assert model.temperature_ == pytest.approx(1 + 1 / 3)


def test_small_first_batch_seeds_the_rest_later():
    rng = np.random.default_rng(0)
    model = OnlineGaussianMixture(8, random_state=0)
    model.partial_fit(rng.normal(size=(3, 2)))
    assert int(model._state.seeded.sum()) == 3
    assert np.count_nonzero(model.weights_) == 3
    model.partial_fit(rng.normal(size=(2, 2)))
    assert int(model._state.seeded.sum()) == 5
    model.partial_fit(rng.normal(size=(50, 2)))
    assert model._state.seeded.all()
    assert np.all(model.weights_ > 0)
    np.testing.assert_allclose(model.weights_.sum(), 1.0)


def test_dead_components_are_reseeded_and_counted():
    X, _ = mixture(3000, [[0.0, 0.0], [30.0, 0.0]], [1.0, 1.0], seed=0)
    model = OnlineGaussianMixture(2, forgetting_rate=0.05, dead_threshold=0.5, random_state=0)
    model.partial_fit(X[:500])
    # the cluster at (30, 0) vanishes and one appears at (0, 40), nearer the other component:
    # the component at (30, 0) starves, dies, and is reseeded where the model fits worst
    new_means = np.array([[0.0, 0.0], [0.0, 40.0]])
    later, _ = mixture(3000, new_means, [1.0, 1.0], seed=1)
    for batch in np.array_split(later, 12):
        model.partial_fit(batch)
    assert model.n_reseeded_ >= 1
    assert _matched_error(model.means_, new_means) < 1.0
