"""The gallery's examples run in fast mode and write a real figure (``docs/gallery/``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("matplotlib", reason="the examples extra (matplotlib) is not installed")

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("plot_*.py"))
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_the_gallery_has_its_examples():
    names = {p.stem for p in EXAMPLES}
    assert {"plot_drift_tracking", "plot_annealing", "plot_forgetting"} <= names


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_runs_fast_and_saves_a_plot(path, tmp_path):
    out = tmp_path / f"{path.stem}.png"
    env = dict(os.environ, ONLINE_GMM_FAST="1", MPLBACKEND="Agg")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    proc = subprocess.run(
        [sys.executable, str(path), "--out", str(out)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = out.read_bytes()
    assert data.startswith(PNG_MAGIC)
    assert len(data) > 20_000, "the figure is suspiciously small (empty axes?)"
    import matplotlib.image as mpimg

    img = mpimg.imread(out)
    assert img.shape[0] > 200 and img.shape[1] > 600
    assert img[..., :3].std() > 0.05, "the figure is blank"


def test_fast_flag_is_honoured(tmp_path):
    """``--fast`` alone (no environment variable) also selects the quick run."""
    path = ROOT / "examples" / "plot_drift_tracking.py"
    out = tmp_path / "f.png"
    env = {k: v for k, v in os.environ.items() if k != "ONLINE_GMM_FAST"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    proc = subprocess.run(
        [sys.executable, str(path), "--fast", "--out", str(out)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert out.stat().st_size > 20_000
