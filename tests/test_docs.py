"""The documentation site builds with warnings as errors, and the gallery page is current."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

needs_docs = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("mkdocs", "material", "mkdocstrings")),
    reason="the docs extra (mkdocs-material, mkdocstrings[python]) is not installed",
)


def test_gallery_page_is_generated_from_the_examples():
    proc = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "gen_gallery.py"), "--check"],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stderr
    for example in sorted((ROOT / "examples").glob("plot_*.py")):
        assert (ROOT / "docs" / "gallery" / f"{example.stem}.png").is_file(), example.stem


@needs_docs
def test_site_builds_strict(tmp_path):
    site = tmp_path / "site"
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert (site / "index.html").is_file()
    api = (site / "api" / "online_gmm" / "index.html").read_text()
    assert "OnlineGaussianMixture" in api and "partial_fit" in api
    gallery = (site / "gallery" / "index.html").read_text()
    assert "plot_drift_tracking.png" in gallery
