"""river is optional: ``import online_gmm`` does not import it, and ``online_gmm.river``
says how to install it when it is missing."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_importing_online_gmm_does_not_import_river():
    code = ("import sys, online_gmm; online_gmm.OnlineGaussianMixture; "
            "print(sorted(m for m in sys.modules if m == 'river' or m.startswith('river.')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]"


def test_a_missing_river_says_how_to_install_it(monkeypatch):
    for name in list(sys.modules):
        if name == "online_gmm.river" or name.startswith("online_gmm.river."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "river", None)  # as if it were not installed
    with pytest.raises(ImportError, match=r'pip install "online-gmm\[river\]"'):
        importlib.import_module("online_gmm.river")
    with pytest.raises(ImportError, match=r'pip install "online-gmm\[river\]"'):
        from online_gmm.river import GaussianMixture  # noqa: F401
