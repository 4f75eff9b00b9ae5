"""Regressions found by attacking the library as a hostile user would (issue: reliability,
second round): no lost data, no crash on valid input."""

from __future__ import annotations

import threading
import warnings

import numpy as np
import pytest

from online_gmm import OnlineGaussianMixture


@pytest.mark.parametrize("covariance_type", ["diag", "full"])
def test_concurrent_partial_fit_loses_no_batch(covariance_type):
    rng = np.random.default_rng(0)
    model = OnlineGaussianMixture(4, covariance_type=covariance_type, random_state=0)
    model.partial_fit(rng.normal(size=(1000, 8)))
    steps, seen, mass = model.n_steps_, model.n_samples_seen_, float(model._state.mass.sum())
    errors = []

    def feed(seed):
        r = np.random.default_rng(seed)
        try:
            for _ in range(150):
                model.partial_fit(r.normal(size=(64, 8)))
                model.predict(r.normal(size=(4, 8)))  # predictions go on meanwhile
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=feed, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert model.n_steps_ == steps + 300
    assert model.n_samples_seen_ == seen + 300 * 64
    # no forgetting: the masses are exact cumulative sums of the weights
    assert float(model._state.mass.sum()) == pytest.approx(mass + 300 * 64, rel=1e-12)


torch = pytest.importorskip("torch", reason="torch is the torch extra")


def _snapshot(module):
    return {k: v.clone() for k, v in module.state_dict().items()}


@pytest.mark.parametrize("other", [dict(n_prototypes=5), dict(covariance_type="diag"),
                                   dict(dim=4)])
def test_a_refused_checkpoint_changes_nothing(other):
    from ssl_bridge import GMMPrototypes

    source = GMMPrototypes(4, 3)
    source.update(torch.randn(32, 3))
    params = dict(n_prototypes=4, dim=3, covariance_type="spherical", random_state=7)
    params.update(other)
    target = GMMPrototypes(**params)
    target.update(torch.randn(16, params["dim"]))
    before = _snapshot(target)
    with pytest.raises(RuntimeError, match="was not changed"):
        target.load_state_dict(source.state_dict())
    after = _snapshot(target)
    assert set(after) == set(before)
    for name, value in after.items():
        assert torch.equal(value, before[name]), name


@pytest.mark.parametrize("covariance_type", ["spherical", "diag", "full", "tied"])
def test_an_all_skipped_or_empty_batch_is_a_no_op_that_says_so(covariance_type):
    from ssl_bridge import GMMPrototypes

    head = GMMPrototypes(4, 3, covariance_type=covariance_type, nonfinite="skip")
    head.update(torch.randn(32, 3))
    before = _snapshot(head)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        info = head.update(torch.full((5, 3), float("nan")))
    assert any("skipped 5 of 5" in str(w.message) for w in caught)
    assert info["updated"] is False and info["n_skipped"] == 5
    empty = head.update(torch.randn(0, 3))
    assert empty["updated"] is False and empty["n_skipped"] == 0
    for name, value in _snapshot(head).items():
        assert torch.equal(value, before[name]), name
    assert head.update(torch.randn(8, 3))["updated"] is True


def test_normalize_keeps_the_direction_of_huge_float32_rows():
    from ssl_bridge import GMMPrototypes

    head = GMMPrototypes(4, 3)
    x = torch.randn(16, 3)
    x[0] = torch.tensor([1e30, -2e30, 5e29])  # its norm overflows float32
    x[1] = 0.0
    unit = head._prepare_input(x, "x")
    torch.testing.assert_close(unit[0], torch.tensor([2.0, -4.0, 1.0]) / 21**0.5)
    assert torch.equal(unit[1], torch.zeros(3))
    torch.testing.assert_close(unit[2:].norm(dim=1), torch.ones(14))
    head.update(x)
    assert torch.isfinite(head.means).all()


@pytest.mark.parametrize("covariance_type", ["spherical", "diag", "full", "tied"])
@pytest.mark.parametrize("kind", ["cauchy", "outliers", "subnormal"])
def test_heavy_tails_huge_outliers_and_subnormals_keep_the_model_finite(covariance_type,
                                                                        kind):
    """Attacks that held (issue 14, "keep them as tests")."""
    rng = np.random.default_rng(3)
    model = OnlineGaussianMixture(4, covariance_type=covariance_type, random_state=0)
    for _ in range(6):
        if kind == "cauchy":
            X = rng.standard_cauchy((200, 5))
        elif kind == "outliers":
            X = rng.normal(size=(200, 5))
            X[rng.integers(0, 200, 3)] = 1e30
        else:
            X = rng.normal(size=(200, 5)) * 1e-310
        model.partial_fit(X)
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        assert np.isfinite(getattr(model, name)).all(), name
    assert np.isfinite(model.score_samples(X)).all()


@pytest.mark.parametrize("D", [1, 2048])
def test_extreme_dimensions(D):
    X = np.random.default_rng(0).normal(size=(300, D)).astype(np.float32)
    model = OnlineGaussianMixture(3, random_state=0).partial_fit(X[:150]).partial_fit(X[150:])
    assert np.isfinite(model.score_samples(X)).all()
