"""river's ``check_estimator`` passes for a fresh instance of each estimator, and river's
checks pass one by one (as river's own test suite runs them) for the parameters of
``_unit_test_params``, on offline data (``_checks``)."""

from __future__ import annotations

import pytest

river = pytest.importorskip("river", reason="river is the river extra")

from river import checks, datasets  # noqa: E402

from online_gmm.river import GaussianMixture, GaussianMixtureDetector  # noqa: E402

from ._checks import offline_datasets, run_checks  # noqa: E402

ESTIMATORS = [GaussianMixture, GaussianMixtureDetector]
FEATURE_SET_CHECKS = {"check_emerging_features", "check_disappearing_features",
                      "check_radically_disappearing_features"}


def test_check_estimator_passes_for_a_fresh_clusterer_as_river_has_it():
    # river's own datasets, unpatched: it gives a clusterer none (no download)
    checks.check_estimator(GaussianMixture())
    checks.check_estimator(GaussianMixture(n_components=3, random_state=0))


@pytest.mark.skipif(not datasets.CreditCard().is_downloaded,
                    reason="river's CreditCard dataset is a 150 MB download (not on disk)")
def test_check_estimator_passes_for_a_fresh_detector_on_river_s_own_data():
    checks.check_estimator(GaussianMixtureDetector())


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_check_estimator_passes_for_a_fresh_instance(cls, monkeypatch):
    with offline_datasets(monkeypatch):
        checks.check_estimator(cls())


@pytest.mark.parametrize(
    "cls, params",
    [(cls, params) for cls in ESTIMATORS for params in cls._unit_test_params()],
    ids=lambda v: v.__name__ if isinstance(v, type) else ",".join(f"{k}={v}" for k, v in
                                                                 v.items()),
)
def test_every_river_check_passes(cls, params, monkeypatch):
    model = cls(**params)
    with offline_datasets(monkeypatch):
        passed, failed = run_checks(model)
    assert not failed, failed
    # the checks that feed data ran (river gives a clusterer none of its own)
    for name in ("check_learn_one", "check_pickling", "check_shuffle_features_no_impact",
                 "check_clone_is_independent", "check_bounded_memory_growth"):
        assert name in passed, name
    if cls is GaussianMixtureDetector:
        assert "check_roc_auc" in passed


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_only_the_feature_set_checks_are_skipped_and_they_fail_by_our_error(cls, monkeypatch):
    """A mixture models one fixed vector of features: river's checks that drop or add
    features are skipped (as for river's ``compat`` wrappers of scikit-learn estimators), and
    only because a row with other features is refused with our error."""
    model = cls(n_components=2, batch_size=16, random_state=0)
    assert model._unit_test_skips() == FEATURE_SET_CHECKS
    ran = set()
    with offline_datasets(monkeypatch):
        for check in checks.yield_checks(model):
            if check.__name__ not in FEATURE_SET_CHECKS:
                continue
            ran.add(check.__name__)
            with pytest.raises(ValueError, match="models the features"):
                check(model.clone())
    assert ran == FEATURE_SET_CHECKS


def test_the_offline_stand_in_is_a_credit_card_like_stream():
    from ._checks import CREDIT_CARD_FEATURES, credit_card_like

    rows = credit_card_like(1000)
    assert len(rows) == 1000 and list(rows[0][0]) == CREDIT_CARD_FEATURES
    assert sum(y for _, y in rows) == 5
