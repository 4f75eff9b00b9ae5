"""What the ``online-gmm`` command line tells its user, and how it ends.

The exit statuses, the usage error (a command line that parsed but cannot run), the
progress line (:class:`Progress`), the status lines, and errors and warnings as one line
each on standard error (``online-gmm: error: <message>``, ``online-gmm: warning: ...``).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from typing import IO

__all__ = [
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_PIPE",
    "EXIT_USAGE",
    "PROG",
    "Progress",
    "UsageError",
]

PROG = "online-gmm"

#: Exit statuses.
EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a process killed by Ctrl-C
EXIT_PIPE = 141  # 128 + SIGPIPE, as a shell reports e.g. ``cat big | head``


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
    >>> from online_gmm._cli.output import Progress
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


def _notice(args: argparse.Namespace, message: str) -> None:
    """A line on standard error that a script should see too (unless --quiet)."""
    if not getattr(args, "quiet", False):
        print(f"{PROG}: {message}", file=sys.stderr)


def _one_line(exc: BaseException) -> str:
    """A readable one-line message for an exception."""
    if isinstance(exc, OSError) and exc.strerror:
        where = exc.filename if exc.filename is not None else ""
        # (lower case, as every other message after the path: "x.npy: no such file ...")
        reason = exc.strerror[:1].lower() + exc.strerror[1:]
        return f"{where}: {reason}" if where else reason
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
    """Show each warning as one ``online-gmm: warning: ...`` line (none with --quiet), each
    text once per command (EM's passes read every file again: a notice about a file is not
    repeated at every pass)."""
    shown: set[str] = set()

    def show(message, category, filename, lineno, file=None, line=None):
        text = " ".join(str(message).split())
        if not quiet and text not in shown:
            shown.add(text)
            print(f"{PROG}: warning: {text}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.simplefilter("always", UserWarning)  # (deduplicated above, per command)
        warnings.showwarning = show
        yield
