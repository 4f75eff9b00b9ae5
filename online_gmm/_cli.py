"""The ``online-gmm`` command line (``python -m online_gmm``).

Subcommands: ``demo``, ``fit``, ``partial-fit``, ``predict``, ``score``, ``sample`` and
``diagnose``. Data are read by :mod:`online_gmm._readers` (streamed: ``.npy`` memory-mapped,
shards one at a time, CSV in chunks); models are saved and loaded by
:mod:`online_gmm._persistence`. See ``docs/cli.md`` for the reference and the decisions.

Exit codes: 0 success, 1 runtime failure (bad data, unreadable or incompatible model, ...),
2 usage error, 130 interrupted (Ctrl-C), 141 output pipe closed early. Errors are one line on
standard error, ``online-gmm: error: <message>`` (``--debug`` shows the traceback instead).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np

from ._readers import count_rows, iter_batches, load_matrix
from ._sources import DATA_FORMATS, DataError, ReadOptions, Source, expand_sources, source_names
from ._version import __version__
from ._writers import ArrayWriter, atomic_target, output_format

__all__ = [
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_PIPE",
    "EXIT_USAGE",
    "Progress",
    "build_parser",
    "main",
]

PROG = "online-gmm"

#: Exit statuses.
EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a process killed by Ctrl-C
EXIT_PIPE = 141  # 128 + SIGPIPE, as a shell reports e.g. ``cat big | head``

#: File extensions read as data (a matrix) by ``diagnose``; anything else is a model.
_MATRIX_EXTENSIONS = (".npy", ".npz", ".csv", ".tsv", ".txt")

#: Target size of one inference batch (``predict``, ``score``) when --batch-size is not given.
_INFERENCE_BATCH_BYTES = 64 << 20

#: Rows drawn per call by ``sample``.
_SAMPLE_CHUNK = 65536


class UsageError(Exception):
    """A command line that parsed but cannot run as given (exit status 2)."""


# ---------------------------------------------------------------------- progress
class Progress:
    """A one-line progress report on a terminal: samples done and samples per second.

    Nothing is written unless ``enabled``, and nothing before ``delay`` seconds have passed
    (short work stays silent). The line is redrawn at most every ``interval`` seconds and
    erased by :meth:`close`.

    Parameters
    ----------
    enabled : bool
        Whether to draw at all (the CLI: standard error is a terminal and no ``--quiet``).
    total : int or None, default=None
        Samples expected, for a percentage (None: unknown).
    stream : text stream, default=None
        Where to draw (default ``sys.stderr``).
    delay, interval : float, default=1.0, 0.2
        Seconds before the first draw, and between draws.
    clock : callable, default=time.monotonic
        Returns the time in seconds (injectable for tests).

    Examples
    --------
    >>> import io
    >>> from online_gmm._cli import Progress
    >>> out, now = io.StringIO(), iter([0.0, 2.0, 2.0])
    >>> p = Progress(True, total=200, stream=out, clock=lambda: next(now))
    >>> p.update(100)
    >>> out.getvalue().strip()
    '100 samples  50 samples/s  50%'
    """

    def __init__(
        self,
        enabled: bool,
        total: int | None = None,
        stream: IO[str] | None = None,
        delay: float = 1.0,
        interval: float = 0.2,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.enabled = enabled
        self.total = total
        self.stream = stream
        self.delay = delay
        self.interval = interval
        self.clock = clock
        self.done = 0
        self._start = clock() if enabled else 0.0
        self._last_draw = -float("inf")
        self._width = 0

    def update(self, n: int, note: str = "") -> None:
        """Count ``n`` more samples and redraw if it is time.

        Parameters
        ----------
        n : int
            Samples just processed.
        note : str, default=""
            Appended to the line (e.g. the epoch).
        """
        self.done += n
        if not self.enabled:
            return
        now = self.clock()
        elapsed = now - self._start
        if elapsed < self.delay or now - self._last_draw < self.interval:
            return
        self._last_draw = now
        line = f"{self.done:,} samples  {self.done / max(elapsed, 1e-9):,.0f} samples/s"
        if self.total:
            line += f"  {min(100.0, 100.0 * self.done / self.total):.0f}%"
        if note:
            line += f"  {note}"
        out = self.stream or sys.stderr
        out.write("\r" + line.ljust(self._width))
        out.flush()
        self._width = len(line)

    def close(self) -> None:
        """Erase the line, if one was drawn."""
        if self._width:
            out = self.stream or sys.stderr
            out.write("\r" + " " * self._width + "\r")
            out.flush()
            self._width = 0

    def elapsed(self) -> float:
        """Seconds since the start (0 when disabled)."""
        return self.clock() - self._start if self.enabled else 0.0


# ---------------------------------------------------------------------- helpers
def _status_enabled(args: argparse.Namespace) -> bool:
    """Progress and summaries go to standard error only if it is a terminal."""
    if getattr(args, "quiet", False):
        return False
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def _say(args: argparse.Namespace, message: str) -> None:
    if _status_enabled(args):
        print(f"{PROG}: {message}", file=sys.stderr)


def _one_line(exc: BaseException) -> str:
    """A readable one-line message for an exception."""
    if isinstance(exc, OSError) and exc.strerror:
        where = exc.filename if exc.filename is not None else ""
        return f"{where}: {exc.strerror}" if where else exc.strerror
    if isinstance(exc, MemoryError):
        return "out of memory (use a smaller --batch-size, or stream the data)"
    msg = " ".join(str(exc).split()) or type(exc).__name__
    if not isinstance(exc, (ValueError, FloatingPointError, LookupError)):
        msg = f"{type(exc).__name__}: {msg} (rerun with --debug for the traceback)"
    return msg


def _error(message: str) -> None:
    print(f"{PROG}: error: {message}", file=sys.stderr)


@contextlib.contextmanager
def _warnings_as_lines(quiet: bool) -> Iterator[None]:
    """Show each warning as one ``online-gmm: warning: ...`` line (none with --quiet)."""

    def show(message, category, filename, lineno, file=None, line=None):
        if not quiet:
            text = " ".join(str(message).split())
            print(f"{PROG}: warning: {text}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


def _check_writable(path: str) -> None:
    """Fail before any work if the output's directory does not exist."""
    if path == "-":
        return
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise DataError(f"{path}: cannot write there: no such directory {directory}")
    if os.path.isdir(path):
        raise DataError(f"{path}: is a directory")


def _read_options(args: argparse.Namespace, batch_size: int) -> ReadOptions:
    return ReadOptions(
        key=args.key,
        delimiter=args.delimiter,
        skip_header=args.skip_header,
        dtype=args.dtype,
        block_rows=max(batch_size, 256),
    )


def _sources(args: argparse.Namespace, specs: Sequence[str]) -> list[Source]:
    if list(specs).count("-") > 1:
        raise UsageError("standard input ('-') can be read only once")
    return expand_sources(specs, args.format)


# ---------------------------------------------------------------------- models
def _persistence() -> tuple[Callable[[Any, Any], Any], Callable[[Any], Any]]:
    from ._persistence import load, save

    return save, load


def _load_model(path: str) -> Any:
    """Load a saved model and check that it is a fitted ``OnlineGaussianMixture``."""
    from . import OnlineGaussianMixture

    if not os.path.exists(path):
        raise FileNotFoundError(2, "No such file or directory", path)
    _, load = _persistence()
    model = load(path)
    if not isinstance(model, OnlineGaussianMixture):
        raise DataError(f"{path}: holds a {type(model).__name__}, not an OnlineGaussianMixture")
    if not model.__sklearn_is_fitted__():
        raise DataError(f"{path}: the model is not fitted")
    return model


def _save_model(model: Any, path: str) -> None:
    """Save atomically: to a temporary file next to ``path``, then rename it over ``path``."""
    save, _ = _persistence()
    with atomic_target(path) as tmp:
        save(model, tmp)


def _n_features(model: Any) -> int:
    return int(model.n_features_in_)


def _inference_batch(args: argparse.Namespace, model: Any) -> int:
    if args.batch_size is not None:
        return args.batch_size
    return int(np.clip(_INFERENCE_BATCH_BYTES // (8 * max(_n_features(model), 1)), 256, 65536))


# ---------------------------------------------------------------------- estimator options
def _hyper_parameters() -> list[tuple[tuple[str, ...], str, Any, str]]:
    """(flags, parameter, type or choices, help) of the estimator options of ``fit``."""
    from ._estimator import _FORGETTING
    from ._gaussian import COVARIANCE_TYPES
    from ._schedules import ANNEAL_SCHEDULES
    from ._seeding import INIT_PARAMS

    return [
        (("-k", "--n-components"), "n_components", int, "number of mixture components"),
        (("--covariance-type",), "covariance_type", COVARIANCE_TYPES, "covariance shape"),
        (("--batch-size",), "batch_size", int, "rows per online-EM step (mini-batch)"),
        (("--forgetting",), "forgetting", _FORGETTING, "how old evidence is discounted"),
        (("--forgetting-rate",), "forgetting_rate", float, "eta in [0, 1); 0 never forgets"),
        (("--temperature-init",), "temperature_init", float, "E-step temperature at step 0"),
        (("--temperature-final",), "temperature_final", float, "temperature after annealing"),
        (("--anneal-steps",), "anneal_steps", int, "steps from initial to final temperature"),
        (("--anneal-schedule",), "anneal_schedule", ANNEAL_SCHEDULES, "temperature path"),
        (("--init-params",), "init_params", INIT_PARAMS, "how the first batch seeds components"),
        (("--reg-covar",), "reg_covar", float, "added to every covariance's diagonal"),
        (("--seed-mass",), "seed_mass", float, "evidence a freshly seeded component starts with"),
        (("--dead-threshold",), "dead_threshold", float, "reseed below this weight * K"),
        (("--max-reseed",), "max_reseed", int, "dead components reseeded per step at most"),
        (("--random-state",), "random_state", int, "seed, for reproducible runs"),
        (("--tol",), "tol", float, "--converge: stop when the epoch log-lik changes less"),
        (("--max-iter",), "max_iter", int, "--converge: most epochs"),
        (("--n-init",), "n_init", int, "--converge: restarts, the best is kept"),
        (("--init-size",), "init_size", int, "--converge: rows drawn to seed from"),
    ]


def _add_hyper_options(parser: argparse.ArgumentParser) -> None:
    from . import OnlineGaussianMixture

    defaults = OnlineGaussianMixture().get_params()
    group = parser.add_argument_group("estimator options (OnlineGaussianMixture parameters)")
    for flags, param, kind, text in _hyper_parameters():
        help_text = f"{text} (default: {defaults[param]})"
        if isinstance(kind, tuple):
            group.add_argument(*flags, dest=param, choices=kind, default=None, help=help_text)
        else:
            metavar = "N" if kind is int else "X"
            group.add_argument(
                *flags, dest=param, type=kind, default=None, metavar=metavar, help=help_text
            )
    group.add_argument(
        "--means-init",
        metavar="FILE",
        help="initial means: a (n_components, n_features) matrix file (.npy, .npz, .csv)",
    )


def _estimator_from(args: argparse.Namespace) -> Any:
    from . import OnlineGaussianMixture

    params = {
        param: getattr(args, param)
        for _, param, _, _ in _hyper_parameters()
        if getattr(args, param) is not None
    }
    model = OnlineGaussianMixture(**params)
    try:
        model._validate_hyperparameters()
    except ValueError as exc:
        raise UsageError(" ".join(str(exc).split())) from None
    if args.means_init is not None:
        src = _sources(args, [args.means_init])
        model.set_params(means_init=load_matrix(src, _read_options(args, 65536)))
    return model


# ---------------------------------------------------------------------- commands
def _stream_into(
    model: Any,
    args: argparse.Namespace,
    sources: Sequence[Source],
    batch_size: int,
    epochs: int,
) -> tuple[int, int]:
    """``epochs`` passes of ``partial_fit`` over the sources; returns (samples, steps)."""
    if epochs > 1 and any(s.is_stdin for s in sources):
        raise UsageError("standard input can be read only once: --epochs must be 1 with '-'")
    opts = _read_options(args, batch_size)
    enabled = _status_enabled(args)
    per_epoch = count_rows(sources, opts) if enabled else None
    progress = Progress(enabled, total=per_epoch * epochs if per_epoch else None)
    n = steps = 0
    try:
        for epoch in range(1, epochs + 1):
            note = f"epoch {epoch}/{epochs}" if epochs > 1 else ""
            for batch in iter_batches(sources, batch_size, opts):
                model.partial_fit(batch)
                n += batch.shape[0]
                steps += 1
                progress.update(batch.shape[0], note)
            if n == 0:
                raise DataError(f"no data: {source_names(sources)} holds no row")
    finally:
        progress.close()
    return n, steps


def _rate(n: int, seconds: float) -> str:
    return f"{n:,} samples in {seconds:.2f} s ({n / max(seconds, 1e-9):,.0f} samples/s)"


def cmd_demo(args: argparse.Namespace) -> int:
    """``demo``: the built-in demo (:func:`online_gmm._demo.run_demo`)."""
    from ._demo import run_demo

    run_demo()
    return EXIT_OK


def cmd_fit(args: argparse.Namespace) -> int:
    """``fit``: a new model from DATA, saved to ``--output``."""
    if args.converge and args.epochs is not None:
        raise UsageError("--epochs applies to streaming; --converge runs until --tol/--max-iter")
    model = _estimator_from(args)
    _check_writable(args.output)
    sources = _sources(args, args.data)
    t0 = time.perf_counter()
    if args.converge:
        X = load_matrix(sources, _read_options(args, 65536))
        model.fit(X)
        n, how = X.shape[0], f"{model.n_iter_} epochs, converged: {model.converged_}"
    else:
        n, steps = _stream_into(model, args, sources, model.batch_size, args.epochs or 1)
        how = f"{steps} steps"
    _save_model(model, args.output)
    _say(args, f"fit {_rate(n, time.perf_counter() - t0)}, {how} -> {args.output}")
    return EXIT_OK


def cmd_partial_fit(args: argparse.Namespace) -> int:
    """``partial-fit``: continue a saved model on DATA, in place or to ``--output``."""
    output = args.output or args.model
    _check_writable(output)
    model = _load_model(args.model)
    sources = _sources(args, args.data)
    batch_size = args.batch_size or int(model.batch_size)
    t0 = time.perf_counter()
    n, steps = _stream_into(model, args, sources, batch_size, args.epochs)
    _save_model(model, output)
    _say(
        args,
        f"partial-fit {_rate(n, time.perf_counter() - t0)}, {steps} steps "
        f"(model: {model.n_samples_seen_:,} samples seen) -> {output}",
    )
    return EXIT_OK


def _infer(
    args: argparse.Namespace,
    method: Callable[[Any, np.ndarray], np.ndarray],
    writer: ArrayWriter | None,
) -> tuple[int, float]:
    """Run ``method(model, batch)`` over DATA, writing each result; (n, sum of results)."""
    model = _load_model(args.model)
    sources = _sources(args, args.data)
    batch_size = _inference_batch(args, model)
    progress = Progress(_status_enabled(args))
    n, total = 0, 0.0
    try:
        for batch in iter_batches(sources, batch_size, _read_options(args, batch_size)):
            out = np.asarray(method(model, batch))
            if writer is not None:
                writer.write(out)
            n += batch.shape[0]
            total += float(np.sum(out, dtype=np.float64))
            progress.update(batch.shape[0])
        if n == 0:
            raise DataError(f"no data: {source_names(sources)} holds no row")
        if writer is not None:
            writer.close()
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    finally:
        progress.close()
    return n, total


def _writer(path: str | None) -> ArrayWriter:
    path = path or "-"
    try:
        fmt = output_format(path)
    except DataError as exc:
        raise UsageError(str(exc)) from None
    _check_writable(path)
    return ArrayWriter(path, fmt)


def cmd_predict(args: argparse.Namespace) -> int:
    """``predict``: the component of each row (or its posterior with ``--proba``)."""
    writer = _writer(args.output)
    if args.proba:
        _infer(args, lambda m, X: m.predict_proba(X), writer)
    else:
        _infer(args, lambda m, X: m.predict(X), writer)
    return EXIT_OK


def cmd_score(args: argparse.Namespace) -> int:
    """``score``: the mean log-likelihood of DATA (per row with ``--output``)."""
    writer = _writer(args.output) if args.output is not None else None
    n, total = _infer(args, lambda m, X: m.score_samples(X), writer)
    if args.output != "-":
        print(repr(total / n))
    return EXIT_OK


def cmd_sample(args: argparse.Namespace) -> int:
    """``sample``: draw rows from the mixture."""
    if args.n_samples < 1:
        raise UsageError(f"--n-samples must be at least 1; got {args.n_samples}")
    writer = _writer(args.output)
    labels = None
    if args.labels is not None:
        labels = _writer(args.labels)
        if args.labels == "-" and (args.output or "-") == "-":
            raise UsageError("--labels and the samples cannot both go to standard output")
    model = _load_model(args.model)
    seed = args.random_state
    if seed is None and isinstance(model.random_state, (int, np.integer)):
        seed = int(model.random_state)
    model.set_params(random_state=np.random.RandomState(seed))
    try:
        left = args.n_samples
        while left > 0:
            X, y = model.sample(min(left, _SAMPLE_CHUNK))
            writer.write(X)
            if labels is not None:
                labels.write(np.asarray(y, dtype=np.int64))
            left -= X.shape[0]
        writer.close()
        if labels is not None:
            labels.close()
    except BaseException:
        writer.abort()
        if labels is not None:
            labels.abort()
        raise
    return EXIT_OK


def _read_vector(path: str) -> np.ndarray:
    """A 1-D weight vector from ``.npy`` or text (one value per line or row)."""
    if Path(path).suffix.lower() == ".npy":
        w = np.load(path, allow_pickle=False)
    else:
        try:
            w = np.loadtxt(path, delimiter="," if path.endswith(".csv") else None, ndmin=1)
        except ValueError as exc:
            raise DataError(f"{path}: not a list of numbers ({exc})") from None
    return np.asarray(w).reshape(-1) if np.ndim(w) == 2 and 1 in np.shape(w) else w


def cmd_diagnose(args: argparse.Namespace) -> int:
    """``diagnose``: the prototype-collapse report of a model's means or of a matrix."""
    from .diagnostics import collapse_report, format_report

    target = args.target
    is_matrix = (
        target == "-"
        or args.format is not None
        or Path(target).suffix.lower() in _MATRIX_EXTENSIONS
        or Path(target).is_dir()
    )
    if is_matrix:
        C = load_matrix(_sources(args, [target]), _read_options(args, 65536))
        weights = _read_vector(args.weights) if args.weights else None
    else:
        model = _load_model(target)
        C = np.asarray(model.means_)
        weights = _read_vector(args.weights) if args.weights else np.asarray(model.weights_)
    report = collapse_report(C, weights, eps=args.eps)
    if args.json:
        data = dict(report)
        data["unique"] = {str(k): v for k, v in report["unique"].items()}
        data["unique_fraction"] = {str(k): v for k, v in report["unique_fraction"].items()}
        print(json.dumps(data))
    else:
        print(format_report(report))
    return EXIT_OK


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
  online-gmm fit -k 16 -o model.joblib embeddings.npy
  online-gmm fit -k 64 --epochs 3 -o model.joblib shards/          # every shards/*.npy
  online-gmm fit -k 8 --converge -o model.joblib small.csv         # estimator.fit
  producer | online-gmm fit -k 8 -o model.joblib -                 # CSV on stdin""",
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
        help="passes of partial_fit over DATA (default: 1)",
    )
    p.add_argument(
        "--converge",
        action="store_true",
        help="load DATA into memory and run the estimator's fit (shuffled epochs until "
        "--tol or --max-iter, --n-init restarts) instead of streaming",
    )
    _add_hyper_options(p)

    p = add(
        "partial-fit",
        "continue a saved model on more DATA",
        cmd_partial_fit,
        parents=[common, reading],
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

    out_help = "output file, .npy or .csv/.tsv/.txt by extension (default: CSV on stdout)"
    for name, text, handler in (
        ("predict", "predict the component of each row of DATA", cmd_predict),
        ("score", "mean log-likelihood of DATA under a saved model", cmd_score),
    ):
        p = add(name, text, handler, parents=[common, reading])
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

    p = add("sample", "draw samples from a saved model", cmd_sample, parents=[common])
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
        parents=[common, reading],
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
    parser = build_parser()
    try:
        args = parser.parse_args(None if argv is None else list(argv))
    except SystemExit as exc:
        return _exit_status(exc)
    debug = getattr(args, "debug", False)
    if args.command == "diagnose" and args.eps is None:
        from .diagnostics import DEFAULT_EPS

        args.eps = list(DEFAULT_EPS)
    try:
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
        print(file=sys.stderr)
        _error("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): stop quietly, as a process killed by SIGPIPE.
        with contextlib.suppress(OSError, ValueError, AttributeError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return EXIT_PIPE
    except Exception as exc:
        if debug:
            raise
        _error(_one_line(exc))
        return EXIT_FAILURE
