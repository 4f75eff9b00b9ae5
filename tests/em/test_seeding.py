"""k-means++ seeding (``online_gmm._em.seeding``) against a plain re-implementation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from online_gmm._em import seeding as _seeding


def _brute_sq(A, B):
    return ((A[:, None, :] - B[None, :, :]) ** 2).sum(axis=2)


def _reference_kmeans_pp(X, w, centers, n_new, rng):
    """Greedy D^2 sampling as scikit-learn's ``_kmeans_plusplus``, distances by brute force,
    drawing from ``rng`` in the same order as the library."""
    closest = _brute_sq(X, centers).min(axis=1) if len(centers) else np.full(len(X), np.inf)
    n_trials = 2 + int(math.log(len(centers) + n_new))
    chosen = []
    for _ in range(n_new):
        if not np.isfinite(closest).all():
            p = w.copy()
            p[chosen] = 0.0
            idx = int(rng.choice(w.size, p=p / p.sum()))
        else:
            pot = w * closest
            cand = rng.choice(w.size, size=n_trials, p=pot / pot.sum())
            d_cand = _brute_sq(X[cand], X)
            idx = int(cand[np.argmin((np.minimum(closest, d_cand) * w).sum(axis=1))])
        chosen.append(idx)
        closest = np.minimum(closest, _brute_sq(X[[idx]], X)[0])
    return np.asarray(chosen)


@pytest.mark.parametrize("fast", [False, True])
@pytest.mark.parametrize("n_centers", [0, 5])
def test_kmeans_plusplus_picks_what_the_plain_algorithm_picks(n_centers, fast):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 6)) + 8 * rng.integers(0, 12, size=(400, 1))
    w = rng.uniform(0.5, 2.0, 400)
    w[::7] = 0.0  # never chosen
    centers = X[:n_centers] + 0.1
    r_got, r_want = np.random.RandomState(1), np.random.RandomState(1)
    got = _seeding.kmeans_plusplus_indices(X, w, centers, 20, r_got, np, fast=fast)
    want = _reference_kmeans_pp(X, w, centers, 20, r_want)
    np.testing.assert_array_equal(got, want)
    assert len(set(got.tolist())) == 20 and np.all(w[got] > 0)
    assert r_got.random_sample() == r_want.random_sample()  # the same draws, no more


@pytest.mark.parametrize("seed", range(6))
def test_the_kmeans_plusplus_kernel_draws_the_reference_s_seeds(seed):
    """The numba kernel (``fast``) chooses the rows the array steps choose, and leaves the
    generator where they leave it: any width, float32 rows, weights, existing centres."""
    rng = np.random.default_rng(seed)
    n, D = int(rng.integers(60, 900)), int(rng.integers(1, 40))
    X = rng.normal(size=(n, D)) * 3 + 5 * rng.integers(0, 9, size=(n, 1))
    X = X.astype(np.float32) if seed % 3 == 0 else X
    w = rng.uniform(0.2, 3.0, n) if seed % 2 else np.ones(n)
    w[::5] = 0.0
    centers = X[: 3 * (seed % 2)]
    k = int(rng.integers(2, 40))
    states = [np.random.RandomState(seed) for _ in range(2)]
    ref, fast = (_seeding.kmeans_plusplus_indices(X, w, centers, k, r, np, fast=f)
                 for r, f in zip(states, (False, True), strict=True))
    np.testing.assert_array_equal(fast, ref)
    assert states[0].random_sample() == states[1].random_sample()


def test_the_kmeans_plusplus_kernel_falls_back_where_the_reference_draws_by_weight():
    """Every row on a seed after four: the reference then draws one uniform by weight, the
    kernel gives the generator back and the reference goes on (the same rows, the same
    generator state)."""
    X = np.zeros((32, 3))  # (32 rows of small integers: every distance exact)
    X[:4] += np.arange(4)[:, None]  # rows 0 (and 4..31, the same) and 1, 2, 3
    w = np.ones(32)
    states = [np.random.RandomState(0) for _ in range(2)]
    ref, fast = (_seeding.kmeans_plusplus_indices(X, w, X[:0], 8, r, np, fast=f)
                 for r, f in zip(states, (False, True), strict=True))
    np.testing.assert_array_equal(fast, ref)
    assert len(set(ref.tolist())) == 8
    assert states[0].random_sample() == states[1].random_sample()


def test_pairwise_distances_reuse_the_centred_batch_exactly():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(300, 5)) * 3 + 100  # far from the origin: centring matters
    idx = np.array([4, 0, 299, 17])
    centred = _seeding._centred(X, np)
    reused = _seeding._pairwise_sq(X, idx, np, centred)
    np.testing.assert_array_equal(reused, _seeding._pairwise_sq(X, idx, np))
    np.testing.assert_allclose(reused, _brute_sq(X[idx], X), rtol=1e-9, atol=1e-9)
    assert np.all(reused[np.arange(4), idx] < 1e-9)


@pytest.mark.parametrize("covariance_type", ["diag", "spherical", "full", "tied"])
def test_a_batch_of_identical_rows_cannot_collapse_the_model_for_good(covariance_type):
    """``partial_fit(np.zeros((32, 2)))`` seeds both components at the origin; identical
    components get identical responsibilities for ever, so one is reseeded (and counted)."""
    from online_gmm import OnlineGaussianMixture

    rng = np.random.default_rng(0)
    model = OnlineGaussianMixture(2, covariance_type=covariance_type, random_state=0)
    model.partial_fit(np.zeros((32, 2)))
    X = np.concatenate([rng.normal(-5, 1, (4000, 2)), rng.normal(5, 1, (4000, 2))])
    for batch in np.array_split(rng.permutation(X), 8):
        model.partial_fit(batch)
    np.testing.assert_allclose(np.sort(model.means_[:, 0]), [-5, 5], atol=0.2)
    assert model.n_reseeded_ >= 1


def test_redundant_components_keep_one_of_each_group():
    from online_gmm.core import empty_state, select_backend

    means = np.array([[0.0, 0], [1, 1], [0, 0], [0, 1e-12], [3, 3], [1, 1]])
    backend = select_backend(means)
    state = empty_state(6, 2, "diag", backend.xp, "cpu").replace(
        means=means, seeded=np.ones(6, dtype=bool),
        weights=np.array([0.1, 0.2, 0.3, 0.1, 0.2, 0.1]))
    got = _seeding.redundant_components(state, "diag", backend.xp)
    # {0, 2, 3}: 2 is heaviest and stays; {1, 5}: 1 stays; 4 is alone
    assert got.tolist() == [True, False, False, True, False, True]
    far = state.replace(means=means + np.arange(6)[:, None] * 1e-3)  # 1e-3 std apart: kept
    assert not _seeding.redundant_components(far, "diag", backend.xp).any()
