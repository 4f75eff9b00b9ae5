"""Termination signals while a file is written under a temporary name.

SIGTERM (or SIGHUP) kills a process without running its ``finally`` blocks, so the temporary
file of an atomic write (:func:`online_gmm._io.writers.atomic_target`, the command line's
:class:`online_gmm._io.writers.ArrayWriter`) would stay behind. :func:`signals_clean_up` turns
such a signal into an exception while the file exists, the writer removes its temporary
file, and the process then dies of the signal, as it would have. Saving a model and the
commands that write arrays (``predict``, ``score -o``, ``sample``) share it.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

__all__ = ["SignalGuard", "Terminated", "deferred", "signals_clean_up"]

_ACTIVE: list[SignalGuard] = []  # the guards installed, innermost last


class Terminated(BaseException):
    """Raised by the temporary signal handler of :func:`signals_clean_up`."""


class SignalGuard:
    """The handler :func:`signals_clean_up` installs: it records the signal, and raises
    :class:`Terminated` once :meth:`arm` has been called (the temporary file exists, or
    will be created under :func:`deferred`, and is in the hands of a writer that removes it
    on an exception)."""

    def __init__(self) -> None:
        self.armed = False
        self.received: list[int] = []

    def handler(self, signum, frame) -> None:
        self.received.append(signum)
        if self.armed:
            self.armed = False  # (once: a second signal must not interrupt the clean-up)
            raise Terminated(signum)

    def arm(self) -> None:
        self.armed = True
        if self.received:  # arrived while the temporary file was being created
            self.armed = False
            raise Terminated(self.received[0])


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """While a temporary file is created (and its name not yet held by its writer), a
    signal is only recorded; it raises when the block ends."""
    guard = _ACTIVE[-1] if _ACTIVE else None  # (the guard that installed the handlers)
    if guard is None or not guard.armed:
        yield
        return
    guard.armed = False
    try:
        yield
    finally:
        guard.arm()


@contextlib.contextmanager
def signals_clean_up() -> Iterator[SignalGuard]:
    """While writing, SIGTERM (and SIGHUP) raise :class:`Terminated` instead of killing the
    process at once, so that the temporary file is removed; the process then dies of the
    signal, as it would have. Only where the signal's disposition is the default one (an
    application's own handler is left alone) and in the main thread (the only one Python
    lets install handlers)."""
    guard = SignalGuard()
    if threading.current_thread() is not threading.main_thread():
        yield guard
        return
    signums = [
        getattr(signal, name) for name in ("SIGTERM", "SIGHUP")
        if hasattr(signal, name) and signal.getsignal(getattr(signal, name)) is signal.SIG_DFL
    ]
    if not signums:  # an application's own handlers, or an outer guard's: theirs to handle
        yield guard
        return
    for signum in signums:
        signal.signal(signum, guard.handler)
    _ACTIVE.append(guard)
    try:
        yield guard
    except Terminated:
        pass  # the writer has removed its temporary file
    finally:
        _ACTIVE.remove(guard)
        guard.armed = False  # a signal from now on is only recorded ...
        for signum in signums:
            signal.signal(signum, signal.SIG_DFL)  # (this runs pending handlers first)
        if guard.received:  # ... and kills the process as it would have without the handler
            signal.raise_signal(guard.received[0])
