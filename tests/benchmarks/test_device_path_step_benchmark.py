"""benchmarks/device_path_step.py (one steady update on the CUDA code path: time and ops)
runs in its smoke mode and reports both types."""

from __future__ import annotations

import pytest

pytest.importorskip("torch", reason="torch is the optional 'torch' extra")


def test_smoke_run_reports_time_and_ops_for_both_types(capsys):
    from benchmarks import device_path_step

    out = device_path_step.main(["--smoke"])
    assert set(out) == {"spherical", "diag"}
    for r in out.values():
        assert r["ms"] > 0 and r["ops"] > r["adds"] > 0
        assert 0 < r["adds_cuda"] <= r["adds"] and r["ops_cuda"] <= r["ops"]
    assert "in-place adds" in capsys.readouterr().out
