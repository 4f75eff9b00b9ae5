"""benchmarks/bridge_usage.py (the usage of GMMPrototypes' prototypes on a synthetic stream)
runs in its smoke mode and reports figures in their ranges."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch", reason="torch is the optional 'torch' extra")


def test_smoke_run_reports_every_case(tmp_path):
    from benchmarks import bridge_usage

    out = tmp_path / "usage.json"
    rows = bridge_usage.main(["--smoke", "--json", str(out)])
    assert [r["case"] for r in rows] == list(bridge_usage.SMOKE_CASES)
    assert json.loads(out.read_text()) == rows
    for r in rows:
        K = r["K"]
        for key in ("weights_eff", "usage"):
            assert 1 <= r[key] <= K + 1e-6, (r["case"], key)
        assert 1 <= r["argmax"] <= K
        assert 0 < r["unique"] <= 1
        assert r["reseeds"] >= 0
        if r["kwargs"].get("estimator"):
            assert r["usage_sinkhorn"] is None  # the estimator has no balanced targets
        else:
            assert 1 <= r["usage_sinkhorn"] <= K + 1e-6


def test_extra_cases_parse_numbers_and_names():
    from benchmarks.bridge_usage import parse_case

    case = parse_case("covariance_type=tied,temperature_init=5,anneal_steps=200,max_reseed=None")
    assert case.kwargs == {"covariance_type": "tied", "temperature_init": 5,
                           "anneal_steps": 200, "max_reseed": None}
