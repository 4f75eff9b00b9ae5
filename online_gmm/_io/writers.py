"""Atomic writers of the command line.

:class:`ArrayWriter` writes rows as they come to a ``.npy`` or CSV file (or CSV to a text
stream), atomically: the file appears under its name only once it is complete.
:func:`atomic_target` gives any writer (e.g. a model's) the same guarantee.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

from .sources import DataError

__all__ = [
    "ArrayWriter",
    "atomic_target",
    "output_format",
]


def output_format(path: str) -> str:
    """The format of an output file from its extension: ``"npy"`` or ``"csv"``.

    Parameters
    ----------
    path : str
        ``.npy``; ``.csv``, ``.tsv`` or ``.txt`` (CSV); ``-`` is standard output (CSV).

    Returns
    -------
    str

    Raises
    ------
    DataError
        For any other extension.

    Examples
    --------
    >>> from online_gmm._io.writers import output_format
    >>> output_format("labels.npy"), output_format("scores.csv"), output_format("-")
    ('npy', 'csv', 'csv')
    """
    if path == "-":
        return "csv"
    ext = Path(path).suffix.lower()
    if ext == ".npy":
        return "npy"
    if ext in (".csv", ".tsv", ".txt"):
        return "csv"
    raise DataError(
        f"{path}: cannot tell the output format from the extension {ext or '(none)'!r}; "
        "use .npy or .csv (.tsv, .txt)"
    )


def link_target(path: str) -> str:
    """The file a write to ``path`` replaces: ``path``, or what the symbolic link ``path``
    points to (through every link), so that the link stays a link and its target is
    written, atomically, in the target's own directory."""
    return os.path.realpath(path) if os.path.islink(path) else path


def _temp_in(path: str) -> str:
    """Create an empty temporary file next to ``path`` (next to its target, for a symbolic
    link) whose name ends like ``path``'s (so extension-driven writers, e.g. joblib's
    compression, behave the same)."""
    path = link_target(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix="-" + os.path.basename(path), dir=directory)
    os.close(fd)
    return tmp


def _commit(tmp: str, path: str) -> None:
    """Flush ``tmp`` to disk, give it the mode ``path`` has (or the umask default) and rename
    it to ``path`` (then flush the directory entry, where the system allows it): after a
    crash or power loss the target is the old file or the complete new one. A symbolic
    link ``path`` stays: its target is replaced."""
    path = link_target(path)
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)  # a full disk or an I/O error surfaces here at the latest
    finally:
        os.close(fd)
    try:
        mode = os.stat(path).st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    with contextlib.suppress(OSError):
        os.chmod(tmp, mode)
    os.replace(tmp, path)
    _fsync_directory(os.path.dirname(os.path.abspath(path)))


def _fsync_directory(directory: str) -> None:
    """Flush a directory's entries (the rename); a no-op where directories cannot be opened."""
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
    try:
        fd = os.open(directory, flags)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_target(path: str) -> Iterator[str]:
    """Context manager yielding a temporary path that replaces ``path`` on success.

    The temporary file lives in ``path``'s directory, so the final :func:`os.replace` is
    atomic: readers see the old file or the new one, never a partial one; it is flushed to
    disk (``fsync``) before the rename. On an exception (``KeyboardInterrupt`` included) the
    temporary file is removed and ``path`` is untouched.

    Parameters
    ----------
    path : str
        The file to (re)place.

    Yields
    ------
    str
        The temporary path to write to.
    """
    tmp = _temp_in(path)
    try:
        yield tmp
        _commit(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _npy_header(dtype: np.dtype, shape: tuple[int, ...], length: int | None = None) -> bytes:
    """A version 1.0 ``.npy`` header, padded with spaces to ``length`` bytes if given."""
    d = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape}
    text = repr(d).encode("latin1")
    if length is None:
        length = -(-(len(text) + 11) // 64) * 64
    pad = length - 10 - len(text) - 1
    if pad < 0:
        raise ValueError("npy header does not fit")  # pragma: no cover
    text = text + b" " * pad + b"\n"
    return b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text


class ArrayWriter:
    """Write rows incrementally to a ``.npy`` or CSV file, or CSV to a text stream.

    A file is written under a temporary name in its directory and renamed into place by
    :meth:`close` (so a failed run never leaves a truncated file); :meth:`abort` removes
    it. ``.npy`` files get a header sized for any row count, rewritten with the final shape
    on :meth:`close`.

    Parameters
    ----------
    path : str
        Output file; ``-`` writes CSV to ``stream``.
    fmt : str, default=None
        ``"npy"`` or ``"csv"``; None takes it from the extension (:func:`output_format`).
    stream : text stream, default=None
        Where ``-`` writes to (default: ``sys.stdout`` at the time of writing).

    Examples
    --------
    >>> import io
    >>> import numpy as np
    >>> from online_gmm._io.writers import ArrayWriter
    >>> out = io.StringIO()
    >>> w = ArrayWriter("-", stream=out)
    >>> w.write(np.array([0, 2])); w.write(np.array([1]))
    >>> w.close()
    >>> out.getvalue()
    '0\\n2\\n1\\n'
    """

    _RESERVED_ROWS = 10**18  # the header is sized for a row count up to this

    def __init__(self, path: str, fmt: str | None = None, stream: IO[str] | None = None):
        self.path = path
        self.fmt = fmt or output_format(path)
        self._stream = stream
        self._file: IO[Any] | None = None
        self._tmp: str | None = None
        self._dtype: np.dtype | None = None
        self._tail: tuple[int, ...] | None = None
        self._rows = 0
        self._header_len = 0
        self._delimiter = "\t" if Path(path).suffix.lower() == ".tsv" else ","

    def _open(self, arr: np.ndarray) -> None:
        self._dtype, self._tail = arr.dtype, arr.shape[1:]
        if self.path == "-":
            return
        from .signals import deferred

        with deferred():  # (a signal now raises once the name is held, so abort removes it)
            self._tmp = _temp_in(self.path)
        if self.fmt == "npy":
            self._file = open(self._tmp, "wb")
            header = _npy_header(self._dtype, (self._RESERVED_ROWS, *self._tail))
            self._header_len = len(header)
            self._file.write(header)
        else:
            self._file = open(self._tmp, "w", encoding="utf-8", newline="")

    def write(self, arr: np.ndarray) -> None:
        """Append rows (a 1-D array: one value per row).

        Parameters
        ----------
        arr : ndarray of shape (n_rows,) or (n_rows, n_columns)
        """
        arr = np.asarray(arr)
        if self._dtype is None:
            self._open(arr)
        elif arr.shape[1:] != self._tail:
            raise ValueError(f"row shape {arr.shape[1:]} differs from {self._tail}")
        if self.fmt == "npy":
            assert self._file is not None
            self._file.write(np.ascontiguousarray(arr, dtype=self._dtype).tobytes())
        else:
            out = self._file if self._file is not None else (self._stream or sys.stdout)
            out.write(_to_csv(arr, self._delimiter))
        self._rows += arr.shape[0]

    def close(self, empty: np.ndarray | None = None) -> None:
        """Finish the file and move it into place.

        Parameters
        ----------
        empty : ndarray, default=None
            A zero-row array giving dtype and row shape, used if nothing was written.
        """
        if self._dtype is None:
            self.write(empty if empty is not None else np.empty(0))
        if self.path == "-":
            out = self._stream or sys.stdout
            out.flush()
            return
        assert self._file is not None and self._tmp is not None
        if self.fmt == "npy":
            self._file.seek(0)
            self._file.write(_npy_header(self._dtype, (self._rows, *self._tail), self._header_len))
        self._file.close()
        _commit(self._tmp, self.path)
        self._tmp = None

    def abort(self) -> None:
        """Drop a partly written file."""
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
        if self._tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(self._tmp)
            self._tmp = None


@contextlib.contextmanager
def writing(*writers: ArrayWriter | None) -> Iterator[None]:
    """The block that writes ``writers``' rows: on any exception each drops its partial
    file (:meth:`ArrayWriter.abort`); on SIGTERM or SIGHUP too, then the process dies of the
    signal (:func:`online_gmm._io.signals.signals_clean_up`)."""
    from .signals import signals_clean_up

    with signals_clean_up() as guard:
        try:
            guard.arm()
            yield
        except BaseException:
            for writer in writers:
                if writer is not None:
                    writer.abort()
            raise


def _to_csv(arr: np.ndarray, delimiter: str) -> str:
    """Rows as CSV text: integers as such, float64 as the shortest text that reads back to
    the same number (Python's ``repr``), float32 with 9 significant digits (round-trip)."""
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.shape[0] == 0:
        return ""
    if arr.dtype == np.float32:
        buf = io.StringIO()
        np.savetxt(buf, arr, fmt="%.9g", delimiter=delimiter)
        return buf.getvalue()
    if arr.dtype.kind == "b":
        arr = arr.astype(np.int64)
    elif arr.dtype.kind not in "iu":
        arr = arr.astype(np.float64, copy=False)
    return "".join(delimiter.join(map(str, row)) + "\n" for row in arr.tolist())
