"""The README's set-up and test commands, read from README.md itself (so CI runs them).

The README opens with one ```bash block of exactly two commands: the set-up (which also
runs the main job) and the tests. ``.ci/run`` runs both as written; this module is the one
place that knows how to find them.

Usage: ``python .ci/readme_commands.py {setup,test} [README]`` prints that command.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROLES = ("setup", "test")

_FENCE = re.compile(r"^```(?:bash|sh|shell|console)\s*$\n(?P<body>.*?)^```\s*$", re.S | re.M)
_TRAILING_COMMENT = re.compile(r"\s+#\s.*$")


def readme_commands(text: str) -> dict[str, str]:
    """``{"setup": ..., "test": ...}``: the commands of the first shell block of ``text``.

    Full-line comments and blank lines are skipped, a trailing ``  # comment`` is removed.
    Raises ``ValueError`` unless the block holds exactly two commands, the second one
    running pytest.
    """
    match = _FENCE.search(text)
    if match is None:
        raise ValueError("README: no ```bash block (the set-up and test commands)")
    commands = []
    for line in match["body"].splitlines():
        line = _TRAILING_COMMENT.sub("", line).strip()
        if line and not line.startswith("#"):
            commands.append(line)
    if len(commands) != len(ROLES):
        raise ValueError(
            f"README: the first ```bash block must hold {len(ROLES)} commands (set-up, tests), "
            f"found {len(commands)}: {commands}"
        )
    if "pytest" not in commands[1]:
        raise ValueError(f"README: the second command must run the tests: {commands[1]!r}")
    return dict(zip(ROLES, commands, strict=True))


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ROLES or len(argv) > 2:
        print(f"usage: readme_commands.py {{{','.join(ROLES)}}} [README]", file=sys.stderr)
        return 2
    readme = Path(argv[1]) if len(argv) == 2 else Path(__file__).resolve().parents[1] / "README.md"
    try:
        print(readme_commands(readme.read_text(encoding="utf-8"))[argv[0]])
    except (OSError, ValueError) as exc:
        print(f"readme_commands.py: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
