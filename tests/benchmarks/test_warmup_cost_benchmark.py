"""benchmarks/warmup_cost.py (the warm-up's one-off cost against the stream it starts)
runs in its smoke mode for the estimator and for the bridge, and reports its stages."""

from __future__ import annotations

import json
import math

import pytest


@pytest.mark.parametrize("bridge", [False, True])
def test_smoke_run_reports_the_ratio_and_the_restarts(capsys, bridge):
    if bridge:
        pytest.importorskip("torch", reason="torch is the optional 'torch' extra")
    from benchmarks import warmup_cost

    assert warmup_cost.main(["--smoke", "--json"] + (["--bridge"] if bridge else [])) == 0
    r = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert r["model"] == ("bridge" if bridge else "estimator")
    assert r["rows_held"] >= 64 * r["K"]  # at least the restarts' rows ("auto")
    assert r["one_off_s"] > 0 and r["stream_s"] > 0
    assert math.isclose(r["ratio"], r["one_off_s"] / r["stream_s"], rel_tol=0.5)
    assert r["stages_s"]["restarts"] > 0 and "restarts: k-means++" in r["stages_s"]
