"""Command line: ``python -m online_gmm demo`` (also installed as ``online-gmm``).

The subcommands (``demo``, ``fit``, ``partial-fit``, ``predict``, ``score``, ``sample``,
``diagnose``) are parsed and dispatched by :mod:`online_gmm._cli.main` (its ``main``); see
``docs/cli.md``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

try:
    from ._cli.main import main as _cli_main
except KeyboardInterrupt:  # a Ctrl-C while the command line loads: as later in the run
    sys.stderr.write("\nonline-gmm: error: interrupted\n")
    raise SystemExit(130) from None


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``online-gmm`` (the console script's entry point).

    Parameters
    ----------
    argv : sequence of str, default=None
        The arguments without the program name (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit status: 0 success, 1 runtime failure, 2 usage error (see ``docs/cli.md``).
    """
    return _cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
