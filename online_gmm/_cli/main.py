"""The ``online-gmm`` command line (``python -m online_gmm``): the parser and :func:`main`.

Subcommands: ``demo``, ``fit``, ``partial-fit``, ``predict``, ``score``, ``sample`` and
``diagnose``, run by the ``cmd_*`` functions of :mod:`online_gmm._cli.commands` (estimator
options in :mod:`online_gmm._cli.options`, the files they name in :mod:`online_gmm._cli.files`,
progress, messages and exit statuses in :mod:`online_gmm._cli.output`). Data are read by
:mod:`online_gmm._io.readers` (streamed: ``.npy`` memory-mapped, shards one at a time, CSV in
chunks) and written by :mod:`online_gmm._io.writers`; models are saved and loaded by
:mod:`online_gmm._io.persistence`. See ``docs/cli.md`` for the reference and the decisions.

Models are read pickle-free; a pickle-based model file (online-gmm 0.1.0's, or a bare pickle)
is loaded only with ``--trusted``, as unpickling can run code from the file.

Exit codes: 0 success, 1 runtime failure (bad data, unreadable or incompatible model, ...),
2 usage error, 130 interrupted (Ctrl-C), 141 output pipe closed early. Errors are one line on
standard error, ``online-gmm: error: <message>`` (``--debug`` shows the traceback instead).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence

from .._io.sources import DATA_FORMATS
from .._version import __version__
from .options import _add_hyper_options
from .output import (
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_PIPE,
    EXIT_USAGE,
    PROG,
    UsageError,
    _error,
    _one_line,
    _warnings_as_lines,
)

__all__ = [
    "build_parser",
    "main",
]


# ---------------------------------------------------------------------- commands
def _command(name: str) -> Callable[[argparse.Namespace], int]:
    """The command ``name`` of :mod:`online_gmm._cli.commands`, imported when it runs: the
    parser, ``--help``, ``--version`` and usage errors import no numpy, scikit-learn or
    numba (and a Ctrl-C during those imports ends as one later in the run does)."""

    def run(args: argparse.Namespace) -> int:
        from . import commands as _cli_commands

        return getattr(_cli_commands, name)(args)

    run.__name__ = run.__qualname__ = name
    return run


cmd_demo, cmd_diagnose, cmd_fit, cmd_partial_fit, cmd_predict, cmd_sample, cmd_score = (
    _command(f"cmd_{name}")
    for name in ("demo", "diagnose", "fit", "partial_fit", "predict", "sample", "score")
)


# ---------------------------------------------------------------------- parser
def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value


def _eps(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 < value <= 2.0:
        raise argparse.ArgumentTypeError(f"must be a cosine distance in (0, 2]: {text!r}")
    return value


def _delimiter(text: str) -> str:
    aliases = {"tab": "\t", "\\t": "\t", "space": " "}
    value = aliases.get(text, text)
    if len(value) != 1:
        raise argparse.ArgumentTypeError(f"must be one character (or 'tab'): {text!r}")
    return value


_FORMATTER = argparse.RawDescriptionHelpFormatter

_EXAMPLES = {
    "fit": """examples:
  online-gmm fit -k 16 -o model.joblib embeddings.npy             # batch EM, out of core
  online-gmm fit -k 64 --epochs 3 -o model.joblib shards/          # 3 online passes
  online-gmm fit -k 8 --converge -o model.joblib small.csv         # EM, DATA in memory
  producer | online-gmm fit -k 8 -o model.joblib -                 # one online pass""",
    "partial-fit": """examples:
  online-gmm partial-fit model.joblib new_shard.npy                # update in place
  online-gmm partial-fit model.joblib 'day-*.npy' -o model-v2.joblib""",
    "predict": """examples:
  online-gmm predict model.joblib X.npy > labels.csv
  online-gmm predict model.joblib X.npy --proba -o posterior.npy""",
    "score": """examples:
  online-gmm score model.joblib held_out.npy                       # prints the mean
  online-gmm score model.joblib held_out.npy -o loglik.npy         # and writes each row's""",
    "sample": """examples:
  online-gmm sample model.joblib -n 1000 -o X.npy --labels y.npy --random-state 0""",
    "diagnose": """examples:
  online-gmm diagnose model.joblib
  online-gmm diagnose prototypes.npy --eps 0.025 0.1 --weights pi.npy""",
}


def _add_warmup_buffer_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--include-warmup-buffer",
        action="store_true",
        help="also store the warm-up's buffer (raw training rows) in the model file, so that "
        "a later partial-fit resumes the warm-up exactly; by default the file holds no "
        "training row and the warm-up ends where the model is saved",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``online-gmm``.

    Returns
    -------
    argparse.ArgumentParser
        Each subcommand's parser sets ``handler`` (the function to run) and ``parser``
        (itself, to report usage errors) as defaults.
    """
    common = argparse.ArgumentParser(add_help=False)
    g = common.add_argument_group("general options")
    g.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=argparse.SUPPRESS,
        help="no progress line, summary or warnings on standard error",
    )
    g.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show the traceback of an error instead of one line",
    )

    reading = argparse.ArgumentParser(add_help=False)
    r = reading.add_argument_group("input options")
    r.add_argument(
        "--format",
        choices=DATA_FORMATS,
        help="read every DATA as this format (default: by extension; '-' is csv)",
    )
    r.add_argument("--key", help="array of an .npz file (default: its only array)")
    r.add_argument(
        "--delimiter",
        type=_delimiter,
        help="CSV field separator, one character or 'tab' (default: detected)",
    )
    r.add_argument(
        "--skip-header",
        action="store_true",
        help="skip the first CSV line (default: skipped only if it is not numeric)",
    )
    r.add_argument(
        "--dtype",
        choices=("auto", "float32", "float64"),
        default="auto",
        help="compute in this dtype (default: auto = float32/float64 .npy as stored, else float64)",
    )

    trusting = argparse.ArgumentParser(add_help=False)
    trusting.add_argument_group("model file options").add_argument(
        "--trusted",
        action="store_true",
        help="also load a pickle-based MODEL (written by online-gmm 0.1.0, by "
        "save(..., format='pickle') or a bare joblib/pickle dump). WARNING: loading a pickle "
        "runs whatever code the file holds; use it only for files you trust. Models saved "
        "by this version are pickle-free and need no flag",
    )

    data_help = (
        "input: .npy/.npz/.csv/.tsv/.txt file, directory of .npy shards, glob pattern, "
        "or '-' for standard input"
    )

    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Online Gaussian mixtures for streams of embeddings.",
        epilog="Run 'online-gmm COMMAND --help' for a command's options. Exit status: 0 ok, "
        "1 failure, 2 usage error.",
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name: str, help_text: str, handler: Callable[[argparse.Namespace], int], **kw):
        p = sub.add_parser(
            name,
            help=help_text,
            description=help_text[0].upper() + help_text[1:] + ".",
            epilog=_EXAMPLES.get(name),
            formatter_class=_FORMATTER,
            **kw,
        )
        p.set_defaults(handler=handler, parser=p)
        return p

    add("demo", "stream built-in data through partial_fit and compare", cmd_demo, parents=[common])

    p = add("fit", "fit a new model to DATA and save it", cmd_fit, parents=[common, reading])
    p.add_argument("data", nargs="+", metavar="DATA", help=data_help)
    p.add_argument("-o", "--output", required=True, metavar="MODEL", help="model file to write")
    p.add_argument(
        "--epochs",
        type=_positive_int,
        default=None,
        metavar="N",
        help="online EM instead of batch EM: N passes of partial_fit over DATA (DATA "
        "that can be read once, such as standard input, gets one)",
    )
    p.add_argument(
        "--converge",
        action="store_true",
        help="load DATA into memory for the batch EM (the estimator's fit, as without it: "
        "iterations until --tol or --max-iter, --n-init initialisations); also for DATA "
        "that can be read once",
    )
    _add_warmup_buffer_option(p)
    _add_hyper_options(p)

    p = add(
        "partial-fit",
        "continue a saved model on more DATA",
        cmd_partial_fit,
        parents=[common, reading, trusting],
    )
    p.add_argument("model", metavar="MODEL", help="saved model (updated in place unless -o)")
    p.add_argument("data", nargs="+", metavar="DATA", help=data_help)
    p.add_argument("-o", "--output", metavar="MODEL", help="write the updated model here")
    p.add_argument(
        "--batch-size",
        type=_positive_int,
        metavar="N",
        help="rows per step (default: the model's batch_size)",
    )
    p.add_argument(
        "--epochs", type=_positive_int, default=1, metavar="N", help="passes (default: 1)"
    )
    _add_warmup_buffer_option(p)

    out_help = "output file, .npy or .csv/.tsv/.txt by extension (default: CSV on stdout)"
    for name, text, handler in (
        ("predict", "predict the component of each row of DATA", cmd_predict),
        ("score", "mean log-likelihood of DATA under a saved model", cmd_score),
    ):
        p = add(name, text, handler, parents=[common, reading, trusting])
        p.add_argument("model", metavar="MODEL", help="saved model")
        p.add_argument("data", nargs="+", metavar="DATA", help=data_help)
        if name == "score":
            p.add_argument(
                "-o",
                "--output",
                metavar="FILE",
                help="also write each row's log-likelihood (.npy or .csv; '-' = stdout "
                "instead of the mean)",
            )
        else:
            p.add_argument("-o", "--output", metavar="FILE", help=out_help)
            p.add_argument(
                "--proba",
                action="store_true",
                help="write the posterior probabilities (n_samples x n_components) instead",
            )
        p.add_argument(
            "--batch-size",
            type=_positive_int,
            metavar="N",
            help="rows processed at once (default: about 64 MiB of data, 256 to 65536)",
        )

    p = add("sample", "draw samples from a saved model", cmd_sample, parents=[common, trusting])
    p.add_argument("model", metavar="MODEL", help="saved model")
    p.add_argument(
        "-n", "--n-samples", type=int, default=1, metavar="N", help="rows to draw (default: 1)"
    )
    p.add_argument("-o", "--output", metavar="FILE", help=out_help)
    p.add_argument("--labels", metavar="FILE", help="also write each row's component here")
    p.add_argument(
        "--random-state",
        type=int,
        metavar="N",
        help="seed (default: the model's random_state; fresh randomness if it has none)",
    )

    p = add(
        "diagnose",
        "print the prototype-collapse report of a model or of a prototype matrix",
        cmd_diagnose,
        parents=[common, reading, trusting],
    )
    p.add_argument(
        "target",
        metavar="MODEL_OR_MATRIX",
        help="a saved model (its means_ and weights_), or a matrix file "
        "(.npy/.npz/.csv/.tsv/.txt, or '-'), one prototype per row",
    )
    p.add_argument(
        "--eps",
        type=_eps,
        nargs="+",
        default=None,
        metavar="EPS",
        help="cosine-distance thresholds (default: 0.025 0.1 0.25 0.5)",
    )
    p.add_argument(
        "--weights",
        metavar="FILE",
        help="mixing weights, one per prototype (.npy or text); default: the model's, "
        "uniform for a matrix",
    )
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    return parser


# ---------------------------------------------------------------------- entry point
def _exit_status(exc: SystemExit) -> int:
    code = exc.code
    if code is None:
        return EXIT_OK
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return EXIT_FAILURE


def _interrupted() -> int:
    print(file=sys.stderr)
    _error("interrupted")
    return EXIT_INTERRUPTED


@contextlib.contextmanager
def _sigint_noted() -> Iterator[list]:
    """A list that a Ctrl-C (SIGINT) during the block appends to. The KeyboardInterrupt is
    raised as usual, but a C extension being imported under it (numpy's) turns it into an
    ImportError: the note lets that still end as an interrupt. Only where Python's own
    handler is installed (not when SIGINT is ignored, nor outside the main thread)."""
    noted: list = []
    previous = signal.getsignal(signal.SIGINT)
    if previous is not signal.default_int_handler or (
        threading.current_thread() is not threading.main_thread()
    ):
        yield noted
        return

    def note(signum: int, frame: object) -> None:
        noted.append(signum)
        signal.default_int_handler(signum, frame)

    signal.signal(signal.SIGINT, note)
    try:
        yield noted
    finally:
        signal.signal(signal.SIGINT, previous)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line.

    Parameters
    ----------
    argv : sequence of str, default=None
        The arguments, without the program name (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit status: 0 success, 1 runtime failure, 2 usage error, 130 interrupted,
        141 output pipe closed early.
    """
    try:
        parser = build_parser()
        args = parser.parse_args(None if argv is None else list(argv))
    except SystemExit as exc:
        return _exit_status(exc)
    except KeyboardInterrupt:  # while starting up: as later in the run
        return _interrupted()
    debug = getattr(args, "debug", False)
    sigint: list = []
    try:
        with _sigint_noted() as sigint:
            if args.command == "diagnose" and args.eps is None:
                from ..diagnostics import DEFAULT_EPS

                args.eps = list(DEFAULT_EPS)
            with _warnings_as_lines(getattr(args, "quiet", False)):
                return args.handler(args)
    except UsageError as exc:
        if debug:
            raise
        try:
            args.parser.error(str(exc))
        except SystemExit as exit_:
            return _exit_status(exit_)
        return EXIT_USAGE  # pragma: no cover - error() always exits
    except KeyboardInterrupt:
        if debug:
            raise
        return _interrupted()
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): stop quietly, as a process killed by SIGPIPE.
        with contextlib.suppress(OSError, ValueError, AttributeError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return EXIT_PIPE
    except Exception as exc:
        if debug:
            raise
        if sigint:  # a Ctrl-C that an extension module turned into another error
            return _interrupted()
        _error(_one_line(exc))
        return EXIT_FAILURE
