"""benchmarks/sparse_statistics.py (the sparse sums against the dense product) runs in its
smoke mode, reports every density and both bridge updates, and leaves the costs as found."""

from __future__ import annotations

import math

import pytest

pytest.importorskip("torch", reason="torch is the optional 'torch' extra")


def test_smoke_run_reports_both_paths(capsys):
    from benchmarks import sparse_statistics
    from online_gmm._backends import numba_backend

    costs = numba_backend.SPARSE_COSTS
    out = sparse_statistics.main(["--smoke"])
    assert numba_backend.SPARSE_COSTS == costs
    densities = [r["density"] for r in out["kernel"]]
    assert densities == sorted(densities) and len(densities) >= 3
    for r in out["kernel"]:
        assert r["sparse_ms"] > 0 and r["dense_ms"] > 0
    b = out["bridge"]
    assert 1 <= b["positive_per_row"] <= b["K"]
    assert math.isfinite(b["dense_ms"]) and math.isfinite(b["sparse_ms"])
    assert "Bridge update with targets" in capsys.readouterr().out
