"""``online_gmm.river.GaussianMixture``: clusters a stream of dicts, fixes its features at the
first row, and goes through the public estimator."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

pytest.importorskip("river", reason="river is the river extra")
pd = pytest.importorskip("pandas", reason="pandas comes with the river extra")

from sklearn.metrics import normalized_mutual_info_score  # noqa: E402

from online_gmm import OnlineGaussianMixture  # noqa: E402
from online_gmm.river import GaussianMixture  # noqa: E402

from .._data import mixture  # noqa: E402
from ._checks import BLOB_MEANS, blob_rows  # noqa: E402


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_three_separated_blobs_one_dict_at_a_time(seed):
    stream, held_out = blob_rows(3000, seed=seed), blob_rows(1000, seed=seed + 100)
    model = GaussianMixture(n_components=3, random_state=seed)
    for x, _ in stream:
        model.learn_one(x)
    labels = [model.predict_one(x) for x, _ in held_out]
    nmi = normalized_mutual_info_score([y for _, y in held_out], labels)
    assert nmi >= 0.9, nmi
    assert isinstance(labels[0], int)
    # the model is the estimator's, fed in batches of batch_size rows
    assert isinstance(model.mixture, OnlineGaussianMixture)
    assert model.mixture.n_samples_seen_ + model.n_pending == model.n_samples_seen == 3000
    assert model.n_pending == 3000 % model.batch_size
    means = np.array(sorted(model.mixture.means_.tolist()))
    np.testing.assert_allclose(means, sorted(BLOB_MEANS), atol=0.3)


def test_steps_are_partial_fit_on_the_gathered_rows():
    """The same rows through OnlineGaussianMixture.partial_fit, batch by batch, give the
    same model (one math: the wrapper only gathers rows)."""
    X, _ = mixture(500, BLOB_MEANS, [1.0, 1.0, 1.0], seed=3)
    model = GaussianMixture(n_components=3, batch_size=50, random_state=7)
    for a, b in X.tolist():
        model.learn_one({"a": a, "b": b})
    direct = OnlineGaussianMixture(3, batch_size=50, random_state=np.random.RandomState(7))
    for start in range(0, 500, 50):
        direct.partial_fit(X[start:start + 50])
    for name in ("weights_", "means_", "covariances_"):
        np.testing.assert_array_equal(getattr(model.mixture, name), getattr(direct, name))
    assert model.mixture.n_steps_ == 10


def test_before_the_first_step_every_row_is_cluster_zero():
    model = GaussianMixture(n_components=3, batch_size=10, random_state=0)
    assert model.predict_one({"x": 1.0, "y": 2.0}) == 0  # nothing learned: no features yet
    assert model.centers == {} and model.mixture is None and model.features is None
    for i in range(9):
        model.learn_one({"x": float(i), "y": float(-i)})
    assert model.mixture is None and model.n_pending == 9
    assert model.predict_one({"x": 100.0, "y": 100.0}) == 0
    model.learn_one({"x": 9.0, "y": -9.0})
    assert model.mixture is not None and model.n_pending == 0
    assert model.features == ("x", "y")
    assert set(model.centers) == {0, 1, 2} and set(model.centers[0]) == {"x", "y"}


def test_the_order_of_a_dict_s_keys_never_matters():
    """Features are kept sorted, so rows whose keys come in any order (the first row's
    included) make the same model, to the bit (river's check_shuffle_features_no_impact
    asks for the same predictions)."""
    rows = blob_rows(400, seed=4, n_features=4)
    a = GaussianMixture(n_components=3, batch_size=40, random_state=0)
    b = GaussianMixture(n_components=3, batch_size=40, random_state=0)
    rng = np.random.default_rng(0)
    for x, _ in rows:
        a.learn_one(x)
        b.learn_one({k: x[k] for k in rng.permutation(list(x))})
    assert a.features == b.features == ("f2", "f3", "x", "y")
    np.testing.assert_array_equal(a.mixture.means_, b.mixture.means_)
    x = rows[0][0]
    assert a.predict_one(x) == b.predict_one(dict(reversed(list(x.items()))))


def test_names_that_do_not_sort_keep_the_first_row_s_order():
    model = GaussianMixture(batch_size=2, random_state=0)
    model.learn_one({"b": 1.0, 0: 2.0})
    assert model.features == ("b", 0)
    model.learn_one({0: 3.0, "b": 1.5})
    (b, zero), = model.mixture.means_.tolist()  # columns in that order
    assert 1.0 <= b <= 1.5 and 2.0 <= zero <= 3.0


@pytest.mark.parametrize("method", ["learn_one", "predict_one"])
def test_a_row_with_missing_or_new_features_is_refused_by_name(method):
    model = GaussianMixture(n_components=2, batch_size=4, random_state=0)
    for x, _ in blob_rows(8):
        model.learn_one(x)
    before = pickle.dumps(model)
    call = getattr(model, method)
    with pytest.raises(ValueError, match=r"models the features \['x', 'y'\].*misses the "
                                         r"features \['y'\]") as missing:
        call({"x": 1.0})
    assert "new" not in str(missing.value)
    with pytest.raises(ValueError, match=r"has the new features \['z'\]") as new:
        call({"x": 1.0, "y": 2.0, "z": 3.0})
    assert "misses" not in str(new.value)
    with pytest.raises(ValueError, match=r"misses the features \['y'\] and has the new "
                                         r"features \['Y'\]"):
        call({"x": 1.0, "Y": 2.0})
    assert pickle.dumps(model) == before  # refused rows change nothing


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), None, "1.5"])
def test_a_value_that_is_not_a_finite_number_is_refused(bad):
    model = GaussianMixture(n_components=2, batch_size=4, random_state=0)
    model.learn_one({"x": 0.0, "y": 1.0})
    with pytest.raises(ValueError, match=r"finite numbers: the values of \['y'\]"):
        model.learn_one({"x": 0.0, "y": bad})
    assert model.n_pending == 1


def test_parameters_are_checked_at_the_first_row():
    with pytest.raises(ValueError, match="n_components"):
        GaussianMixture(n_components=0).learn_one({"x": 1.0})
    with pytest.raises(ValueError, match="batch_size"):
        GaussianMixture(batch_size=0).learn_one({"x": 1.0})


def test_learn_many_and_predict_many_match_the_one_row_methods():
    rows = blob_rows(700, seed=5)
    frame = pd.DataFrame([x for x, _ in rows])
    one = GaussianMixture(n_components=3, batch_size=64, random_state=2)
    many = one.clone()
    for x, _ in rows:
        one.learn_one(x)
    many.learn_many(frame.iloc[:30])  # a partial batch, then the rest across batches
    many.learn_many(frame.iloc[30:500])
    many.learn_many(frame.iloc[500:])
    assert one.n_pending == many.n_pending == 700 % 64
    assert one.mixture.n_steps_ == many.mixture.n_steps_ == 700 // 64
    np.testing.assert_array_equal(one.mixture.means_, many.mixture.means_)
    test = pd.DataFrame([x for x, _ in blob_rows(50, seed=6)], index=np.arange(50) + 1000)
    predicted = many.predict_many(test[["y", "x"]])  # columns in any order
    assert predicted.index.tolist() == test.index.tolist()
    assert predicted.tolist() == [one.predict_one(x) for x in test.to_dict("records")]
    with pytest.raises(ValueError, match=r"misses the features \['y'\]"):
        many.predict_many(test[["x"]])


def test_predict_many_before_the_first_step_is_zeros():
    model = GaussianMixture(n_components=3, random_state=0)
    frame = pd.DataFrame({"x": [1.0, 2.0], "y": [3.0, 4.0]})
    assert model.predict_many(frame).tolist() == [0, 0]


def test_a_copy_of_a_fresh_unseeded_model_learns_the_same():
    model = GaussianMixture(n_components=3, batch_size=32)  # random_state=None
    twin = copy.deepcopy(model)
    for x, _ in blob_rows(300, seed=8):
        model.learn_one(x)
        twin.learn_one(x)
    np.testing.assert_array_equal(model.mixture.means_, twin.mixture.means_)


def test_a_pickled_model_resumes_the_stream_exactly():
    rows = blob_rows(900, seed=9)
    model = GaussianMixture(n_components=3, batch_size=50, random_state=0)
    for x, _ in rows[:425]:
        model.learn_one(x)
    resumed = pickle.loads(pickle.dumps(model))
    for x, _ in rows[425:]:
        model.learn_one(x)
        resumed.learn_one(x)
    np.testing.assert_array_equal(model.mixture.means_, resumed.mixture.means_)
    assert model.n_pending == resumed.n_pending == 0


def test_clone_and_repr_follow_river():
    model = GaussianMixture(n_components=4, forgetting_rate=0.01, batch_size=16)
    assert "n_components=4" in repr(model) and "batch_size=16" in repr(model)
    clone = model.clone({"n_components": 2})
    assert (clone.n_components, clone.forgetting_rate, clone.batch_size) == (2, 0.01, 16)


def test_learn_predict_one():
    model = GaussianMixture(n_components=3, batch_size=1, random_state=0)
    labels = [model.learn_predict_one(x) for x, _ in blob_rows(300, seed=10)]
    assert model.mixture.n_steps_ == 300  # batch_size=1: a step per row
    assert len(set(labels[-100:])) == 3
