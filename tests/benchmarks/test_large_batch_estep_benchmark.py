"""benchmarks/large_batch_estep.py (one E-step of a large batch, its plan and time) runs in
its smoke mode and reports a plan that covers every row of each case."""

from __future__ import annotations

import math

import pytest


def test_smoke_run_reports_each_case_with_its_plan(capsys):
    from benchmarks import large_batch_estep

    out = large_batch_estep.main(["--smoke"])
    assert [(r["K"], r["D"], r["n"]) for r in out] == list(large_batch_estep.SMOKE_CASES)
    for r in out:
        # the statistics of every row, once: the masses add up to the rows (unit weights)
        assert r["n_samples"] == r["n"]
        assert r["mass"] == pytest.approx(r["n"], rel=1e-9)
        assert 1 <= r["rounds"] <= r["blocks"] and r["lanes"] >= 1
        assert r["ms"] > 0 and math.isfinite(r["loglik"])
    assert "rows a block" in capsys.readouterr().out
