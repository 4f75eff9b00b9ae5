"""Build the gallery: run every ``examples/plot_*.py`` and write ``docs/gallery/``.

Usage::

    python docs/gen_gallery.py           # full runs (the committed images)
    python docs/gen_gallery.py --fast    # quick runs (what CI checks)
    python docs/gen_gallery.py --check   # no runs: fail if index.md is out of date

Each example saves ``docs/gallery/<name>.png``; this script then writes
``docs/gallery/index.md`` from the examples' docstrings (title, text, image, code), plus the
prototype-diversity figure made by ``examples/ssl_digits.py``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
GALLERY = ROOT / "docs" / "gallery"

HEADER = """# Gallery

Examples that run and show plots. Each is a script in `examples/`: run it with
`python examples/<name>.py` (add `--fast`, or set `ONLINE_GMM_FAST=1`, for a quick run; `--out`
chooses the PNG). `python docs/gen_gallery.py` re-runs them all and regenerates this page,
which is written by that script: edit the examples' docstrings, not this file.
"""

SSL = """## Prototype collapse: joint against decoupled, over training

Prototypes learned jointly with the encoder (a `JointPrototypes` head trained by the SSL
loss, the DINO recipe) against prototypes fitted apart from it as the means of an online
mixture over teacher embeddings (`GMMPrototypes`, with its posterior or balanced targets), on
scikit-learn's digits, both heads in one run (the same seeds and batches), 3 seeds each: the
unique prototypes at cosine distance 0.025 and 0.1 over training, and the usage of the
targets. Top: the "stressed" configuration (D = 16, the learnable head's learning rate 300x
and weight decay 0.4 on its direction), where the learnable head collapses to 44 % unique
and the GMM's stay at 98-99 %. Bottom: the recipe (D = 64), where neither collapses. Made
by `examples/ssl_digits.py` (`--config stressed`, then `--aggregate`); see
[Self-supervised prototypes](../ssl.md) for the commands and the numbers.

"""


def figure(alt: str, src: str) -> str:
    """A figure as wide as the page allows; a click shows it at full size."""
    return f'[![{alt}]({src}){{ .gallery-figure }}]({src} "the figure at full size")'


SSL += "\n".join([
    figure("unique prototypes over training, stressed configuration",
           "../img/ssl_contrast_stressed.png"),
    "",
    figure("unique prototypes over training, the recipe", "../img/ssl_contrast_recipe.png"),
    "",
])


def examples() -> list[Path]:
    return sorted(EXAMPLES.glob("plot_*.py"))


def docstring(path: Path) -> tuple[str, str]:
    """``(title, body)`` of an example's module docstring (rst title underline dropped)."""
    import ast

    doc = ast.get_docstring(ast.parse(path.read_text())) or path.stem
    lines = doc.splitlines()
    title = lines[0].strip()
    rest = lines[1:]
    if rest and set(rest[0].strip()) <= {"=", "-"} and rest[0].strip():
        rest = rest[1:]
    return title, "\n".join(rest).strip()


def page() -> str:
    parts = [HEADER]
    for path in examples():
        title, body = docstring(path)
        rel = path.relative_to(ROOT).as_posix()
        parts.append(
            f"## {title}\n\n{body}\n\n{figure(title, f'{path.stem}.png')}\n\n"
            f'??? example "Source: `{rel}`"\n\n'
            f'    ```python\n    --8<-- "{rel}"\n    ```\n'
        )
    parts.append(SSL)
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the examples, write docs/gallery/.")
    parser.add_argument("--fast", action="store_true", help="quick runs")
    parser.add_argument("--check", action="store_true", help="only check index.md")
    args = parser.parse_args(argv)
    index = GALLERY / "index.md"
    if args.check:
        if not index.exists() or index.read_text() != page():
            print(f"{index} is out of date: run python docs/gen_gallery.py", file=sys.stderr)
            return 1
        return 0
    GALLERY.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, MPLBACKEND="Agg")
    for path in examples():
        cmd = [sys.executable, str(path), "--out", str(GALLERY / f"{path.stem}.png")]
        if args.fast:
            cmd.append("--fast")
        print("running", " ".join(cmd[1:]), flush=True)
        subprocess.run(cmd, check=True, env=env, cwd=ROOT)
    index.write_text(page())
    print(f"wrote {index}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
