"""k-means++ seeding (``online_gmm._seeding``) against a plain re-implementation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from online_gmm import _seeding


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


@pytest.mark.parametrize("n_centers", [0, 5])
def test_kmeans_plusplus_picks_what_the_plain_algorithm_picks(n_centers):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 6)) + 8 * rng.integers(0, 12, size=(400, 1))
    w = rng.uniform(0.5, 2.0, 400)
    w[::7] = 0.0  # never chosen
    centers = X[:n_centers] + 0.1
    got = _seeding.kmeans_plusplus_indices(X, w, centers, 20, np.random.RandomState(1), np)
    want = _reference_kmeans_pp(X, w, centers, 20, np.random.RandomState(1))
    np.testing.assert_array_equal(got, want)
    assert len(set(got.tolist())) == 20 and np.all(w[got] > 0)


def test_pairwise_distances_reuse_the_centred_batch_exactly():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(300, 5)) * 3 + 100  # far from the origin: centring matters
    idx = np.array([4, 0, 299, 17])
    centred = _seeding._centred(X, np)
    reused = _seeding._pairwise_sq(X, idx, np, centred)
    np.testing.assert_array_equal(reused, _seeding._pairwise_sq(X, idx, np))
    np.testing.assert_allclose(reused, _brute_sq(X[idx], X), rtol=1e-9, atol=1e-9)
    assert np.all(reused[np.arange(4), idx] < 1e-9)
