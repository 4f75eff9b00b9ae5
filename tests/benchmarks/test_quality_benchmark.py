"""The quality benchmark (``python -m benchmarks.quality``) runs end to end in its smoke
mode and reports every dataset and every kind of run with finite figures; its text stream
is the committed file and reads without the embedding model."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]

KINDS_WITH_LL = ("batch_em", "pass", "fit", "pass_sorted")
KINDS_NMI_ONLY = ("mbk_fit", "mbk_pass")


def test_smoke_mode_reports_every_dataset(tmp_path):
    from benchmarks._common import child_env
    from benchmarks._quality_data import LOADERS
    from benchmarks.quality import variants

    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.quality", "--smoke", "--out", str(tmp_path)],
        cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    results = json.loads((tmp_path / "quality.json").read_text())
    md = (tmp_path / "quality.md").read_text()
    assert md.startswith("# Quality: one pass against batch EM (smoke mode")
    assert results["settings"]["smoke"] is True
    assert results["machine"]["usable_cores"] >= 1
    assert set(results["datasets"]) == set(LOADERS) == {"blobs", "digits", "text"}

    expected_variants = set(variants())  # "" and, where the estimator has it, warmup_size=0
    assert set(results["settings"]["variants"]) == expected_variants
    for name, d in results["datasets"].items():
        assert f"## {name}" in md
        groups = d["summary"]["groups"]
        for kind in KINDS_WITH_LL + KINDS_NMI_ONLY:
            assert kind in groups, (name, kind)
        for variant in expected_variants - {""}:
            for kind in ("pass", "fit", "pass_sorted"):
                assert f"{kind}[{variant}]" in groups, (name, kind, variant)
        for key, g in groups.items():
            assert g["runs"] >= 1, (name, key)
            assert 0.0 <= g["nmi"]["mean"] <= 1.0 + 1e-9, (name, key)
            if g["kind"] in KINDS_WITH_LL:
                for stat in ("mean", "std", "min", "max"):
                    assert math.isfinite(g["ll"][stat]), (name, key, stat)
                    assert math.isfinite(g["gap_percent"][stat]), (name, key, stat)
            else:
                assert "ll" not in g, (name, key)
        assert groups["batch_em"]["gap_percent"]["mean"] == 0.0
        for target in (groups["pass"]["targets"]["gap_percent"],
                       groups["pass"]["targets"]["nmi"],
                       groups["fit"]["targets"]["gap_percent"]):
            assert target["met"] in (True, False)
        for r in d["runs"]:
            assert math.isfinite(r["nmi"]) and math.isfinite(r["seconds"]), (name, r)
            if r["ll"] is not None:
                assert math.isfinite(r["ll"]) and math.isfinite(r["gap_percent"]), (name, r)

    # the variational section: K = 30 on streams of 5 and of 12 true clusters
    v = results["variational"]
    assert "## Variational mixture" in md
    assert {line["n_true"] for line in v["summary"]} == {5, 12}
    for r in v["runs"]:
        for key in ("ll_ours", "ll_sklearn", "gap_percent", "score_ours", "score_sklearn",
                    "bound_sklearn", "bound_from_ours", "bound_sklearn_sorted",
                    "gap_percent_fit"):
            assert math.isfinite(r[key]), (key, r)
        # (its own optimum, sorted and continued: no lower than where it was, to rounding)
        assert r["bound_sklearn_sorted"] >= r["bound_sklearn"] - 1e-6, r
        for key in ("effective_ours", "effective_sklearn", "effective_fit"):
            assert 1 <= r[key] <= v["settings"]["n_components"], (key, r)
    for line in v["summary"]:
        assert line["gap_met"] in (True, False)


def test_text_stream_file():
    from benchmarks._quality_data import TEXT_EMBEDDINGS, split, text

    assert TEXT_EMBEDDINGS.stat().st_size < 8_000_000
    with np.load(TEXT_EMBEDDINGS) as z:
        E, y, sections = z["embeddings"], z["labels"], z["sections"]
        meta = json.loads(str(z["meta"]))
    assert E.dtype == np.float16 and E.shape == (meta["n_rows"], 384)
    assert np.isfinite(E).all()
    norms = np.linalg.norm(E.astype(np.float64), axis=1)
    assert np.allclose(norms, 1.0, atol=2e-3)  # L2-normalised sentence embeddings
    assert len(sections) >= 15 and set(np.unique(y)) == set(range(len(sections)))
    assert 10_000 <= len(y) <= 20_000

    ds = text(smoke=False)
    sp = split(ds, seed=3)
    assert sp.X_train.shape == (8_000, 32) and sp.X_test.shape == (2_000, 32)
    # the split is fixed by the seed, and the PCA is fitted on the training rows only
    again = split(ds, seed=3)
    np.testing.assert_array_equal(sp.X_test, again.X_test)
    assert abs(sp.X_train.mean(axis=0)).max() < 1e-9


def test_blobs_are_workload_1s_generator():
    from benchmarks._common import overlapping_clusters
    from benchmarks._quality_data import labelled_clusters

    X, y = labelled_clusters(500, 8, 4, seed=0)
    same = overlapping_clusters(8, 4, seed=0).sample(500, np.random.default_rng(0))
    np.testing.assert_array_equal(X, same)
    assert y.shape == (500,) and y.max() < 8
