"""``online_gmm.river.GaussianMixtureDetector``: minus the log-density, higher for rows far
from the stream."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("river", reason="river is the river extra")
pd = pytest.importorskip("pandas", reason="pandas comes with the river extra")

from online_gmm.river import GaussianMixtureDetector  # noqa: E402

from .._data import mixture  # noqa: E402
from ._checks import BLOB_MEANS  # noqa: E402


def far_outliers(n: int, seed: int) -> np.ndarray:
    """``n`` points 25 to 40 from the origin in random directions (the blobs are within
    about 11 of it)."""
    rng = np.random.default_rng(seed)
    angle = rng.uniform(0, 2 * np.pi, n)
    radius = rng.uniform(25, 40, n)
    return np.column_stack([radius * np.cos(angle), radius * np.sin(angle)])


def rows(X: np.ndarray) -> list[dict]:
    return [{"a": a, "b": b} for a, b in X.tolist()]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_far_outliers_score_above_the_inliers_99th_percentile(seed):
    inliers, _ = mixture(3000, BLOB_MEANS, [1.0, 1.0, 1.0], seed=seed)
    stream = np.concatenate([inliers, far_outliers(50, seed)])  # the stream has some too
    stream = stream[np.random.default_rng(seed).permutation(len(stream))]
    detector = GaussianMixtureDetector(n_components=3, random_state=seed)
    for x in rows(stream):
        detector.learn_one(x)
    held_out, _ = mixture(2000, BLOB_MEANS, [1.0, 1.0, 1.0], seed=seed + 100)
    inlier_scores = np.array([detector.score_one(x) for x in rows(held_out)])
    outlier_scores = np.array([detector.score_one(x) for x in rows(far_outliers(50,
                                                                              seed + 100))])
    threshold = np.percentile(inlier_scores, 99)
    assert np.mean(outlier_scores > threshold) >= 0.95
    # the score is minus the estimator's log-density
    X = held_out[:5]
    np.testing.assert_allclose([detector.score_one(x) for x in rows(X)],
                               -detector.mixture.score_samples(X), rtol=1e-12)


def test_every_row_scores_zero_before_the_first_step():
    detector = GaussianMixtureDetector(batch_size=20, random_state=0)
    assert detector.score_one({"a": 1e6, "b": 0.0}) == 0.0
    for i in range(19):
        detector.learn_one({"a": float(i % 5), "b": float(i % 3)})
    assert detector.score_one({"a": 1e6, "b": 0.0}) == 0.0
    detector.learn_one({"a": 1.0, "b": 2.0})
    assert detector.score_one({"a": 1e6, "b": 0.0}) > detector.score_one({"a": 2.0, "b": 1.0})


def test_a_row_with_other_features_is_refused_by_name():
    detector = GaussianMixtureDetector(batch_size=4, random_state=0)
    for x in rows(np.arange(16.0).reshape(8, 2)):
        detector.learn_one(x)
    with pytest.raises(ValueError, match=r"GaussianMixtureDetector models the features "
                                         r"\['a', 'b'\].*misses the features \['b'\]"):
        detector.score_one({"a": 1.0})
    with pytest.raises(ValueError, match=r"has the new features \['c'\]"):
        detector.learn_one({"a": 1.0, "b": 2.0, "c": 3.0})


def test_score_many_matches_score_one():
    X, _ = mixture(500, BLOB_MEANS, [1.0, 1.0, 1.0], seed=4)
    detector = GaussianMixtureDetector(n_components=3, random_state=0)
    detector.learn_many(pd.DataFrame(X, columns=["a", "b"]))
    assert detector.n_samples_seen == 500
    test = pd.DataFrame(np.concatenate([X[:20], far_outliers(5, 0)]), columns=["a", "b"])
    many = detector.score_many(test)
    np.testing.assert_allclose(many.to_numpy(), [detector.score_one(x) for x in
                                                 test.to_dict("records")], rtol=1e-12)
    assert many.iloc[20:].min() > many.iloc[:20].max()
    fresh = GaussianMixtureDetector()
    assert fresh.score_many(test).tolist() == [0.0] * 25
