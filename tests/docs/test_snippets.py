"""Every runnable code block of README.md and docs/*.md runs as pasted.

The convention (also in CONTRIBUTING.md):

- a fenced block whose info string is ``python`` (```` ```python ````) is **runnable**: it
  must run as pasted into a fresh interpreter, on its own (no name from an earlier block),
  with data it makes itself (``make_blobs``, ``load_digits``, ...) and quickly (seconds);
- a block that cannot run here (it needs a cluster, a GPU, files of the reader's) is
  marked by an HTML comment on the line just before its fence, giving the reason:
  ``<!-- not-run: needs a running Dask scheduler -->`` (invisible on the site and on GitHub);
- other info strings (``bash``, ``text``, ``pycon``, none) are not run here (the command
  line's examples are tested in tests/cli).

Each block runs in a fresh namespace, in a temporary working directory (a block may write
files). A block that needs an optional extra that is not installed (torch, dask,
matplotlib) is skipped, saying which. The gallery's scripts (docs/gallery/) are run by
``test_examples.py``; the docstrings' examples by ``--doctest-modules``.
"""

from __future__ import annotations

import linecache
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
#: Top-level modules of the optional extras: a block that needs a missing one is skipped.
EXTRAS = {"torch": "torch", "dask": "dask", "distributed": "dask", "matplotlib": "examples"}

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<ticks>`{3,}|~{3,})[ \t]*(?P<info>[^\n`]*)$")
_NOT_RUN = re.compile(r"^\s*<!--\s*not-run:\s*(?P<reason>\S.*?)\s*-->\s*$")


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # of the opening fence, 1-based
    info: str
    code: str
    not_run: str | None  # the reason given by a <!-- not-run: ... --> marker

    @property
    def id(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    @property
    def runnable(self) -> bool:
        return self.info.split()[:1] == ["python"] and self.not_run is None


def code_blocks(text: str, page: Path) -> list[Block]:
    """The fenced code blocks of a Markdown page (indented fences in lists included)."""
    lines = text.splitlines()
    blocks, i = [], 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, ticks, info = m["indent"], m["ticks"], m["info"].strip()
        marker = _NOT_RUN.match(lines[i - 1]) if i else None  # on the line just before
        body, j = [], i + 1
        while j < len(lines) and not (lines[j].strip().startswith(ticks[0] * len(ticks))
                                      and lines[j].strip().strip(ticks[0]) == ""):
            body.append(lines[j][len(indent):] if lines[j].startswith(indent) else lines[j])
            j += 1
        blocks.append(Block(page, i + 1, info, textwrap.dedent("\n".join(body)) + "\n",
                            marker["reason"] if marker else None))
        i = j + 1
    return blocks


ALL_BLOCKS = [b for page in PAGES for b in code_blocks(page.read_text(encoding="utf-8"), page)]
RUNNABLE = [b for b in ALL_BLOCKS if b.runnable]


@pytest.mark.parametrize("block", RUNNABLE, ids=lambda b: b.id)
def test_the_block_runs_as_pasted(block, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # (the source in linecache: a failure's traceback shows the block's lines)
    linecache.cache[block.id] = (len(block.code), None, block.code.splitlines(True), block.id)
    code = compile(block.code, block.id, "exec")
    try:
        exec(code, {"__name__": "__main__"})
    except ModuleNotFoundError as exc:
        root = (exc.name or "").partition(".")[0]
        if root in EXTRAS:
            pytest.skip(f"{block.id} needs the {EXTRAS[root]} extra ({root} is not installed)")
        raise


def test_the_quickstarts_are_runnable():
    """The first Python block of the README, the home page and the user guide's saving
    recipe run (none of them may be marked not-run)."""
    def first(page: str) -> Block:
        return next(b for b in ALL_BLOCKS if b.page == ROOT / page and b.info == "python")

    for page in ("README.md", "docs/index.md"):
        assert first(page).runnable, page
    ids = {b.id.split(":")[0] for b in RUNNABLE}
    assert {"README.md", "docs/index.md", "docs/user-guide.md", "docs/ssl.md",
            "docs/dask.md"} <= ids


def test_every_not_run_marker_gives_a_reason_and_precedes_a_python_block():
    for page in PAGES:
        lines = page.read_text(encoding="utf-8").splitlines()
        for n, line in enumerate(lines):
            if "not-run" not in line:
                continue
            assert _NOT_RUN.match(line), f"{page.name}:{n + 1}: <!-- not-run: REASON -->"
            following = lines[n + 1] if n + 1 < len(lines) else ""
            fence = _FENCE.match(following)
            assert fence and fence["info"].strip() == "python", (
                f"{page.name}:{n + 1}: a not-run marker must be just before a ```python fence")


def test_the_block_finder_on_its_own():
    text = textwrap.dedent("""\
        # t

        ```python
        a = 1
        ```

        <!-- not-run: needs a cluster -->
        ```python
        b = 2
        ```

        1. item:

            ```python
            c = 3
            ```

        ```bash
        echo
        ```
        """)
    blocks = code_blocks(text, ROOT / "x.md")
    assert [(b.line, b.info, b.code, b.not_run, b.runnable) for b in blocks] == [
        (3, "python", "a = 1\n", None, True),
        (8, "python", "b = 2\n", "needs a cluster", False),
        (14, "python", "c = 3\n", None, True),
        (18, "bash", "echo\n", None, False),
    ]
