"""The river comparison (``python -m benchmarks.river_compare``) runs end to end in its smoke
mode, in one process, and reports every model with finite figures."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("river", reason="river is the river (and bench) extra")

ROOT = Path(__file__).resolve().parents[2]


def test_smoke_mode_reports_every_model(tmp_path):
    from benchmarks._common import child_env

    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.river_compare", "--smoke", "--out", str(tmp_path)],
        cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    results = json.loads((tmp_path / "river_compare.json").read_text())
    md = (tmp_path / "river_compare.md").read_text()
    assert md.startswith("# river comparison") and "smoke mode" in md
    assert results["settings"]["smoke"] is True
    assert results["machine"]["usable_cores"] >= 1

    models = {r["model"] for r in results["clustering"]}
    assert models == {"ours GaussianMixture", "ours GaussianMixture (batch_size=1024)",
                      "river KMeans", "river STREAMKMeans"}
    for r in results["clustering"]:
        assert r["rows_per_s"] > 0 and math.isfinite(r["ratio_to_river_kmeans"])
        assert 0.0 <= r["nmi_held_out"] <= 1.0 + 1e-9
        assert f"| {r['model']} |" in md
    kmeans = [r for r in results["clustering"] if r["model"] == "river KMeans"]
    assert all(r["ratio_to_river_kmeans"] == 1.0 for r in kmeans)

    sizes = results["settings"]["batch_sizes"]
    assert [r["batch_size"] for r in results["batch_size"]] == sizes
    for r in results["batch_size"]:
        assert r["rows_per_s"] > 0 and math.isfinite(r["loglik_held_out"])
        assert 0.0 <= r["nmi_prequential"] <= 1.0 + 1e-9

    assert {r["model"] for r in results["detection"]} == {
        "ours GaussianMixtureDetector", "river HalfSpaceTrees (MinMaxScaler first)"}
    for r in results["detection"]:
        assert 0.0 <= r["roc_auc"] <= 1.0 and r["outliers"] > 0
        assert r["rows_per_s"] > 0 and math.isfinite(r["ratio_to_river"])
