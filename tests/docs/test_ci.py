"""``.ci/run`` runs the README's own set-up and test commands (no network: the installers
are stubbed), so the README and CI cannot drift."""

from __future__ import annotations

import importlib.util
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CI = ROOT / ".ci"

needs_bash = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def _module():
    spec = importlib.util.spec_from_file_location("readme_commands", CI / "readme_commands.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


readme_commands = _module().readme_commands


def test_the_readme_opens_with_the_set_up_and_the_tests():
    commands = readme_commands((ROOT / "README.md").read_text(encoding="utf-8"))
    setup = commands["setup"]
    # the CPU torch pin comes first, so the torch extra does not pull a CUDA build
    assert setup.startswith("pip install torch==")
    assert setup.index("torch==") < setup.index('pip install -e ".[test,torch]"')
    assert setup.endswith("python -m online_gmm demo")
    assert commands["test"] == "python -m pytest -q"


def test_comments_are_dropped_and_only_the_first_block_counts():
    text = """# title

```bash
# set up
pip install a && pip install -e ".[x]"   # the set-up

python -m pytest -q                      # the tests
```

```bash
rm -rf /
```
"""
    assert readme_commands(text) == {
        "setup": 'pip install a && pip install -e ".[x]"',
        "test": "python -m pytest -q",
    }


@pytest.mark.parametrize(
    "text, message",
    [
        ("no block here\n", "no ```bash block"),
        ("```bash\npip install .\n```\n", "found 1"),
        ("```bash\na\nb\nc\n```\n", "found 3"),
        ("```bash\npip install .\nmake\n```\n", "must run the tests"),
    ],
)
def test_a_readme_without_the_two_commands_is_an_error(text, message):
    with pytest.raises(ValueError, match=message):
        readme_commands(text)


def test_the_command_line_prints_one_command(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("```bash\nmake setup\npytest -x\n```\n")
    script = str(CI / "readme_commands.py")
    run = [sys.executable, script]
    out = subprocess.run([*run, "setup", str(readme)], capture_output=True, text=True)
    assert (out.returncode, out.stdout) == (0, "make setup\n")
    out = subprocess.run([*run, "test", str(readme)], capture_output=True, text=True)
    assert (out.returncode, out.stdout) == (0, "pytest -x\n")
    assert subprocess.run([*run, "deploy"], capture_output=True).returncode == 2
    readme.write_text("nothing\n")
    out = subprocess.run([*run, "test", str(readme)], capture_output=True, text=True)
    assert out.returncode == 1 and "no ```bash block" in out.stderr


# ---------------------------------------------------------------------- .ci/run itself
def _stub(path: Path, body: str) -> None:
    path.write_text("#!/usr/bin/env bash\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def _ci_run(tmp_path: Path, setup: str, test: str) -> tuple[subprocess.CompletedProcess, list]:
    """.ci/run in a copy of the repository's .ci/ with this README; python (but for the
    README extractor), pip and ruff are stubs that log their arguments."""
    repo = tmp_path / "repo"
    shutil.copytree(CI, repo / ".ci")
    (repo / "README.md").write_text(f"# x\n\n```bash\n{setup}\n{test}\n```\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "log"
    _stub(bin_dir / "python", f'if [ "$1" = .ci/readme_commands.py ]; then exec '
                              f'"{sys.executable}" "$@"; fi\necho "python $*" >> "{log}"\n')
    _stub(bin_dir / "ruff", f'echo "ruff $*" >> "{log}"\n')
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "LOG": str(log)}
    proc = subprocess.run(["bash", str(repo / ".ci" / "run")], capture_output=True, text=True,
                          env=env, timeout=60)
    lines = log.read_text().splitlines() if log.exists() else []
    return proc, lines


@needs_bash
def test_ci_runs_the_readme_commands_in_order(tmp_path):
    proc, lines = _ci_run(tmp_path, 'echo "setup a" >> "$LOG" && echo "setup b" >> "$LOG"',
                          'echo "pytest ran" >> "$LOG"   # the tests')
    assert proc.returncode == 0, proc.stderr
    assert lines[0].startswith("python -m pip install") and "--upgrade pip" in lines[0]
    assert lines[1:3] == ["setup a", "setup b"]
    assert lines[3].startswith("python -m pip install")
    for extra in ("test", "torch", "bench", "river", "dask", "docs", "examples"):
        assert extra in lines[3]
    assert lines[4:] == ["ruff check .", "pytest ran"]


@needs_bash
def test_ci_fails_when_any_part_of_the_readme_set_up_fails(tmp_path):
    # `false && ...` does not stop `set -e`; .ci/run must still stop and fail
    proc, lines = _ci_run(tmp_path, 'false && echo "setup b" >> "$LOG"',
                          'echo "pytest ran" >> "$LOG"')
    assert proc.returncode != 0
    assert "ci: failed" in proc.stderr
    assert "pytest ran" not in lines and "ruff check ." not in lines


@needs_bash
def test_ci_fails_when_the_tests_fail(tmp_path):
    proc, _ = _ci_run(tmp_path, "true", 'echo pytest; exit 3')
    assert proc.returncode == 3
