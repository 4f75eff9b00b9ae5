"""Command line: ``python -m online_gmm demo`` (also installed as ``online-gmm``)."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="online-gmm", description="Online Gaussian mixtures for streams of embeddings."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", help="stream built-in data through partial_fit and compare")
    args = parser.parse_args(argv)
    if args.command == "demo":
        from ._demo import run_demo

        run_demo()
    return 0


if __name__ == "__main__":
    sys.exit(main())
