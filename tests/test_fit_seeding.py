"""``fit`` seeds from ``init_size`` random rows of ``X`` (seeding only), not from its first
mini-batch; ``partial_fit`` still seeds from its first batch (docs/algorithm.md, Seeding).
These are the paths without a warm-up (``warmup_size=0``); with one, ``fit`` runs the
warm-up's restarts on that sample (``tests/test_warmup.py``)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning

import online_gmm._epochs as epochs_mod
from online_gmm import OnlineGaussianMixture, load

from ._data import assert_same_state, mixture, state_snapshot

FIXTURES = Path(__file__).parent / "fixtures"


def _eight_blobs(n=1600, seed=0):
    angles = np.arange(8) * 2 * np.pi / 8
    centres = 30.0 * np.c_[np.cos(angles), np.sin(angles)]
    X, y = mixture(n, centres, np.ones(8), seed=seed)
    return X, centres


@pytest.fixture
def seeding_calls(monkeypatch):
    """The samples ``fit`` seeds from (the real seeding still runs)."""
    calls = []
    original = epochs_mod.seed_from_sample

    def spy(state, X, w, **kwargs):
        calls.append((np.array(X), np.array(w)))
        return original(state, X, w, **kwargs)

    monkeypatch.setattr(epochs_mod, "seed_from_sample", spy)
    return calls


def _fit(model, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X)


def test_fit_finds_every_cluster_that_its_first_batch_cannot_seed():
    # 8 rows (one mini-batch) cover all 8 blobs with probability 8!/8^8 = 0.24 %: seeded from
    # the first batch, some blobs would share a component. Seeded from 800 rows by k-means,
    # every blob gets its own.
    X, centres = _eight_blobs()
    model = _fit(
        OnlineGaussianMixture(8, warmup_size=0, batch_size=8, init_params="kmeans", init_size=800,
                              max_iter=2, random_state=0),
        X,
    )
    dist = np.linalg.norm(model.means_[:, None, :] - centres[None], axis=2)
    assert np.all(dist.min(axis=0) < 1.0)  # every centre has a component on it
    assert np.sort(model.weights_).min() > 0.5 / 8


@pytest.mark.parametrize(
    "n, batch_size, init_size, expected",
    [
        (1000, 64, None, 3 * 64),  # max(3 * batch_size, 3 * K)
        (1000, 16, None, 3 * 20),
        (1000, 64, 500, 500),
        (100, 64, None, 100),  # at most n_samples: all rows, in order
        (100, 64, 10_000, 100),
    ],
)
def test_fit_seeds_from_init_size_rows_of_X(seeding_calls, n, batch_size, init_size, expected):
    X = np.random.default_rng(0).standard_normal((n, 3))
    _fit(OnlineGaussianMixture(20, warmup_size=0, batch_size=batch_size, init_size=init_size,
                               max_iter=1,
                               random_state=0), X)
    assert len(seeding_calls) == 1
    sample, w = seeding_calls[0]
    assert sample.shape == (expected, 3)
    np.testing.assert_array_equal(w, np.ones(expected))
    rows = {r.tobytes() for r in X}
    assert all(r.tobytes() in rows for r in sample)  # rows of X, not made up
    assert len({r.tobytes() for r in sample}) == expected  # drawn without replacement
    if expected == n:
        np.testing.assert_array_equal(sample, X)


def test_fit_seeding_adds_no_statistics():
    X, _ = _eight_blobs(n=400)
    model = _fit(OnlineGaussianMixture(8, warmup_size=0, batch_size=50, init_size=200, max_iter=1,
                                       random_state=0), X)
    assert model.n_samples_seen_ == len(X)  # one epoch: the seed sample is not counted
    assert model.n_steps_ == 8


def test_fit_seeding_is_reproducible():
    X, _ = _eight_blobs(n=600)
    a = _fit(OnlineGaussianMixture(8, warmup_size=0, init_size=300, init_params="kmeans",
                                   batch_size=100,
                                   max_iter=2, random_state=3), X)
    b = _fit(OnlineGaussianMixture(8, warmup_size=0, init_size=300, init_params="kmeans",
                                   batch_size=100,
                                   max_iter=2, random_state=3), X)
    assert_same_state(state_snapshot(a), state_snapshot(b))


def test_user_means_and_warm_start_are_not_reseeded(seeding_calls):
    X, centres = _eight_blobs(n=400)
    model = OnlineGaussianMixture(8, means_init=centres, max_iter=1, random_state=0)
    _fit(model, X)
    assert seeding_calls == []  # means_init seeds instead
    model = _fit(OnlineGaussianMixture(8, warmup_size=0, max_iter=1, warm_start=True,
                                       random_state=0), X)
    assert len(seeding_calls) == 1
    means = model.means_.copy()
    _fit(model, X)  # continues: no new seeding
    assert len(seeding_calls) == 1
    assert np.abs(model.means_ - means).max() < 1.0


def test_partial_fit_ignores_init_size():
    X, _ = _eight_blobs(n=300)
    a = OnlineGaussianMixture(8, init_size=5, random_state=0).partial_fit(X[:100])
    b = OnlineGaussianMixture(8, random_state=0).partial_fit(X[:100])
    assert_same_state(
        {k: v for k, v in state_snapshot(a).items() if k != "init_size"},
        {k: v for k, v in state_snapshot(b).items() if k != "init_size"},
    )


@pytest.mark.parametrize("bad, error", [(0, ValueError), (-3, ValueError), (2.5, TypeError),
                                        ("10", TypeError)])
def test_init_size_is_checked_before_anything_changes(bad, error):
    X, _ = _eight_blobs(n=200)
    model = OnlineGaussianMixture(8, random_state=0).partial_fit(X)
    before = state_snapshot(model)
    model.set_params(init_size=bad)
    with pytest.raises(error, match="init_size"):
        model.fit(X)
    after = state_snapshot(model)
    after["init_size"] = before["init_size"]
    assert_same_state(after, before)


def test_a_model_saved_before_init_size_existed_gets_the_default():
    model = load(FIXTURES / "model_v0.1.0.joblib", trusted=True)  # a pickle-based file
    assert model.get_params()["init_size"] is None
    assert clone(model).init_size is None
