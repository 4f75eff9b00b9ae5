"""benchmarks/large_batch_estep.py (one E-step of a large batch, its plan and time) runs in
its smoke mode and reports a plan that covers every row of each case."""

from __future__ import annotations

import math


def test_smoke_run_reports_each_case_with_its_plan(capsys):
    from benchmarks import large_batch_estep

    out = large_batch_estep.main(["--smoke"])
    assert [(r["K"], r["D"], r["n"]) for r in out] == list(large_batch_estep.SMOKE_CASES)
    for r in out:
        assert r["blocks"] * r["rows_per_block"] >= r["n"] > (r["blocks"] - 1) * (
            r["rows_per_block"])
        assert 1 <= r["rounds"] <= r["blocks"]
        assert r["ms"] > 0 and math.isfinite(r["loglik"])
    assert "rows a block" in capsys.readouterr().out
