"""``python -m benchmarks.gpu --device cpu --smoke`` runs end to end and writes every section.

In smoke mode both sides of the agreement section run on CPU: the numba fast path against
the generic array-API path (the code CUDA runs), so their differences must be tiny. No
timing is asserted, only that every figure is there and finite.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="torch is the optional 'torch' extra")

ROOT = Path(__file__).resolve().parents[2]
FLOAT32_TOL = 1e-5
# both sides see the same bfloat16 values, computed in float32 by the bridge; the bound is
# bfloat16's unit roundoff (2**-8), what a bfloat16 E-step would be held to
BFLOAT16_TOL = 2.0**-8


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    from benchmarks._common import child_env

    out = tmp_path_factory.mktemp("gpu")
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.gpu", "--device", "cpu", "--smoke",
         "--out", str(out)],
        cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=600, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads((out / "gpu.json").read_text()), (out / "gpu.md").read_text()


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def test_every_section_is_written(smoke):
    results, md = smoke
    assert results["complete"] is True and results["smoke"] is True
    assert set(results["sections"]) == {"cuda_tests", "agreement", "timing", "syncs", "memory"}
    for name, section in results["sections"].items():
        assert section["error"] is None, (name, section["error"])
    dev = results["device"]
    assert dev["device"] == "cpu" and dev["torch"] and "cuda_runtime" in dev
    assert md.startswith("# GPU benchmark") and "smoke mode" in md
    for title in ("## 1. CUDA tests", "## 2. Device vs CPU agreement", "## 3. One training",
                  "## 4. Host-device", "## 5. Memory"):
        assert title in md


def test_device_tests_are_skipped_on_cpu(smoke):
    tests = smoke[0]["sections"]["cuda_tests"]
    assert tests["ran"] is False and "cpu" in tests["note"]
    assert "-k cuda" in tests["command"]


def test_generic_path_agrees_with_the_numba_path(smoke):
    agreement = smoke[0]["sections"]["agreement"]
    rows = [r for r in agreement["rows"] if not r["autocast_bf16"]]
    assert {(r["covariance_type"], r["dtype"]) for r in rows} == {
        (ct, dt) for ct in ("full", "tied", "diag", "spherical")
        for dt in ("float32", "bfloat16")
    }
    for r in rows:
        tol = FLOAT32_TOL if r["dtype"] == "float32" else BFLOAT16_TOL
        for key in ("means_rel", "weights_rel"):
            assert _finite(r[key]) and r[key] <= tol, (r["covariance_type"], r["dtype"], key)
        # the targets of one state on both paths: within the tolerance, or float32's rounding
        # of the log-densities they are the softmax of (4 eps |l| / T), whichever is
        # larger, never looser than 1e-4; the whole difference (the states' too) is reported
        assert tol <= r["targets_tolerance"] <= max(tol, 1e-4)
        assert _finite(r["targets_estep_rel"])
        assert r["targets_estep_rel"] <= r["targets_tolerance"], (r["covariance_type"],
                                                                  r["dtype"])
        assert _finite(r["targets_rel"])
        assert r["met"] is True and r["met_state"] is True
        assert r["targets_dtype"] == "float32"
        assert r["n_reseeded_cpu"] == r["n_reseeded_device"]
        assert r["seeding_rows_differ"] == 0
        assert r["restart_rows_differ"] in (None, 0)  # (None: no restarts in the stream)
    assert agreement["met"] is True and not agreement["skipped_for_budget"]
    assert agreement["errors"] == 0
    autocast = [r for r in agreement["rows"] if r["autocast_bf16"]]
    assert len(autocast) == 4  # reported, no target: the E-step ran in bfloat16
    for r in autocast:
        assert all(_finite(r[k]) for k in ("means_rel", "weights_rel", "targets_rel"))


def test_timing_rows_are_finite(smoke):
    timing = smoke[0]["sections"]["timing"]
    assert (timing["K"], timing["D"], timing["B"]) == (64, 16, 128)
    assert [r["precision"] for r in timing["rows"]] == ["f32", "bf16"]
    for r in timing["rows"]:
        for case in ("matmul", "decoupled", "learnable"):
            assert _finite(r["median_s"][case]) and r["median_s"][case] > 0, case
            assert len(r["times_s"][case]) == r["repeats_done"] >= 1
            assert r["memory"][case]["step_peak_bytes"] is None  # CPU: no CUDA allocator
        for key in ("ratio_decoupled_over_learnable", "decoupled_in_matmuls",
                    "learnable_in_matmuls", "reseeded_per_step"):
            assert _finite(r[key]), key
        assert r["met"] in (True, False)
        assert set(r["decoupled_phases_median_s"]) == {"update with targets", "student"}


def test_sync_sites_are_counted(smoke):
    syncs = smoke[0]["sections"]["syncs"]
    assert syncs["seeded_all"] is True
    update = syncs["update"]
    policy = [s for s in update["sites"] if s["nonfinite_policy"]]
    assert len(policy) == 1 and policy[0]["site"].startswith("ssl_bridge/_update_paths.py:")
    assert update["host_reads"] >= 1
    assert update["host_reads_beyond_policy"] == update["host_reads"] - policy[0]["count"]
    unchecked = syncs["update_unchecked"]
    assert syncs["met"] == (update["host_reads_beyond_policy"] == 0
                            and unchecked["host_reads"] == 0)
    assert syncs["met"] is True and update["host_reads"] == 1  # the fused flags, alone
    assert unchecked["host_reads"] == 0 and unchecked["sites"] == []  # the checks off
    assert update["host_to_device"] is None  # not measurable on CPU
    assert all(isinstance(v, int) for v in syncs["profiler"]["update"].values())


def test_a_missing_gpu_is_refused(tmp_path):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    from benchmarks.gpu import main

    with pytest.raises(SystemExit, match="no CUDA device"):
        main(["--device", "cuda", "--out", str(tmp_path)])


def test_only_selects_sections_and_refuses_unknown_ones():
    from benchmarks.gpu import parse_args

    assert parse_args(["--only", "syncs,agreement"]).only == ["agreement", "syncs"]
    assert parse_args(["--smoke"]).only == ["cuda_tests", "agreement", "timing", "syncs",
                                            "memory"]
    with pytest.raises(SystemExit):
        parse_args(["--only", "nope"])


def test_failed_cases_are_rows_of_the_report(smoke):
    import copy

    from benchmarks._gpu_report import to_markdown

    results = copy.deepcopy(smoke[0])
    secs = results["sections"]
    secs["agreement"]["rows"][0] = {"covariance_type": "full", "dtype": "float32",
                                    "autocast_bf16": True, "error": "ValueError: not PD"}
    secs["timing"]["rows"][1] = {"precision": "bf16", "met": False, "error": "OOM"}
    secs["syncs"]["profiler"] = {"update": {}, "error": "RuntimeError: no CUPTI"}
    md = to_markdown(results)
    assert "**error**: ValueError: not PD" in md and "| bf16 | **error**: OOM" in md
    assert "profiler failed (RuntimeError: no CUPTI)" in md


def test_memory_of_one_update_is_measured(smoke):
    memory = smoke[0]["sections"]["memory"]
    assert [r["covariance_type"] for r in memory["rows"]] == ["spherical", "diag"]
    for r in memory["rows"]:
        assert _finite(r["state_mib"]) and r["state_mib"] > 0
        assert _finite(r["update_extra_mib"]) and r["update_extra_mib"] >= 0
        assert r["peak_over_state"] == pytest.approx(1 + r["update_extra_mib"] / r["state_mib"])
