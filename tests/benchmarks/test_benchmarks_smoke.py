"""The benchmark suite's smoke mode (tiny sizes) runs end to end, so the suite cannot rot.

No timing is asserted: only that every workload ran and reported finite, positive ratios.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]



def test_smoke_suite_writes_every_workload(tmp_path):
    from benchmarks._common import child_env
    from benchmarks.workloads import WORKLOADS

    env = child_env()  # the repository importable, whether installed or not
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--smoke", "--out", str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]

    results = json.loads((tmp_path / "results.json").read_text())
    assert (tmp_path / "results.md").read_text().startswith("# Benchmark results")
    assert results["smoke"] is True
    assert set(results["workloads"]) == set(WORKLOADS)
    machine = results["machine"]
    assert machine["usable_cores"] >= 1
    assert machine["threads"]["numba_num_threads"] >= 1
    assert isinstance(machine["threads"]["threadpoolctl"], list)
    for name, workload in results["workloads"].items():
        assert workload["error"] is None, (name, workload["error"])
        assert workload["rows"], name
        for r in workload["rows"]:
            for key in ("ours", "baseline", "ratio"):
                value = r[key]
                # signed rows (the quality workload): log-likelihoods, gaps and differences
                positive = value > 0 or r.get("signed", False)
                assert math.isfinite(value) and positive, (name, r["case"], key, value)
            assert r["met"] in (True, False, None)


def test_only_selects_workloads(tmp_path):
    from benchmarks.run import main

    assert main(["--smoke", "--only", "embedding", "--out", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert list(results["workloads"]) == ["embedding"]


def test_unknown_workload_is_refused():
    from benchmarks.run import selected

    with pytest.raises(SystemExit):
        selected(["no_such_workload"])


def test_thread_contention_study_runs(capsys):
    from benchmarks.thread_contention import main

    rows = main(["--smoke"])
    settings = {r["setting"] for r in rows}
    assert settings == {"default", "OPENBLAS_THREAD_TIMEOUT=4",
                        "products under threadpool_limits(1, 'blas')"}
    for r in rows:
        assert math.isfinite(r["step_s"]) and r["step_s"] > 0
        assert math.isfinite(r["products_s"]) and r["products_s"] > 0
    assert "| setting |" in capsys.readouterr().out


def test_startup_stages_runs(capsys):
    from benchmarks.startup_stages import STAGES, main

    (run,) = main(["--runs", "1"])
    assert len(run) == len(STAGES) and all(t > 0 for t in run)
    assert "| total |" in capsys.readouterr().out
