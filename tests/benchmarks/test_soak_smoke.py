"""A ~2 s run of the long-stream soak (``benchmarks/soak.py``): the script runs, reports
every window, writes its JSON, and computes its verdict. The real 20 M-sample soak is not a
unit test (see ``docs/benchmarks.md``, "Long-stream soak")."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from benchmarks import soak


def test_soak_smoke_run_writes_its_figures(tmp_path):
    out = tmp_path / "soak.json"
    result = soak.main(["--smoke", "--quiet", "--output", str(out), "--threads", "1"])
    saved = json.loads(out.read_text())
    assert saved["n_steps"] == result["n_steps"] == math.ceil(120_000 / 4096)
    windows = saved["windows"]
    assert len(windows) == 3 and windows[-1]["samples"] == 120_000  # a report per ~40 000
    for w in windows:
        for key in ("throughput_wall", "throughput_cpu", "rss_mib", "heldout_ll", "oracle_ll",
                    "oracle_gap"):
            assert math.isfinite(w[key]), key
        assert w["throughput_wall"] > 0 and w["throughput_cpu"] > 0 and w["rss_mib"] > 0
        assert w["live_components"] >= 1
    assert saved["peak_rss_mib"] >= max(w["rss_mib"] for w in windows) - 1
    v = saved["verdict"]
    assert set(v) == {"throughput", "memory", "quality", "reseeding", "nothing_degrades"}
    assert v["nothing_degrades"] == all(v[k]["ok"] for k in v if k != "nothing_degrades")
    # even a short run learns: the model is within 2 nats/sample of the true density
    assert windows[-1]["oracle_gap"] < 2.0


def test_the_oracle_density_is_normalised():
    """The soak's yardstick is right: the oracle density integrates to one (on a 2-D grid)."""
    cfg = soak.SoakConfig(n_features=2, n_clusters=3, samples=1, heldout=1)
    stream = soak.DriftingStream(cfg)
    rng = np.random.default_rng(0)
    g = np.linspace(-60, 60, 601)
    xx, yy = np.meshgrid(g, g)
    pts = np.column_stack([xx.ravel(), yy.ravel()])
    mass = np.exp(stream.log_density(pts, 12345.0)).sum() * (g[1] - g[0]) ** 2
    assert mass == pytest.approx(1.0, abs=1e-3)
    X = stream.draw(20_000, 0.0, rng)
    assert X.dtype == np.float32 and X.shape == (20_000, 2)


def test_the_verdict_flags_degradation():
    base = dict(throughput_wall=1e5, throughput_cpu=1e5, rss_mib=100.0, oracle_gap=0.1,
                reseeds=1)
    good = [dict(base) for _ in range(10)]
    assert soak.verdict(good)["nothing_degrades"]
    slow = [dict(base) for _ in range(10)]
    for w in slow[-3:]:
        w["throughput_cpu"] = 5e4
    assert not soak.verdict(slow)["throughput"]["ok"]
    leak = [dict(base, rss_mib=100.0 + 10 * i) for i in range(10)]
    assert not soak.verdict(leak)["memory"]["ok"]
    worse = [dict(base, oracle_gap=0.1 + 0.05 * i) for i in range(10)]
    assert not soak.verdict(worse)["quality"]["ok"]
    churn = [dict(base, reseeds=1 if i < 5 else 50) for i in range(10)]
    assert not soak.verdict(churn)["reseeding"]["ok"]
