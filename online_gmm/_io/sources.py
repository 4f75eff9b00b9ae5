"""What the command line reads: its DATA arguments as *sources*, and how they are parsed.

A source is a ``.npy``, ``.npz`` or CSV file, or standard input (``-``); a directory or a
glob pattern expands to its ``.npy`` shards or matching files (:func:`expand_sources`).
:class:`ReadOptions` says how sources are parsed, and :class:`DataError` is the error of data
that cannot be read (or written). The streaming readers are in :mod:`online_gmm._io.readers`,
the writers in :mod:`online_gmm._io.writers`.
"""

from __future__ import annotations

import glob
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "DATA_FORMATS",
    "DataError",
    "ReadOptions",
    "Source",
    "expand_sources",
    "source_names",
]

#: Input formats, by name.
DATA_FORMATS: tuple[str, ...] = ("npy", "npz", "csv")

_EXTENSIONS = {".npy": "npy", ".npz": "npz", ".csv": "csv", ".tsv": "csv", ".txt": "csv"}
_GLOB_CHARS = frozenset("*?[")


class DataError(ValueError):
    """Data that cannot be read: missing, unreadable or of the wrong shape or type."""


@dataclass(frozen=True)
class Source:
    """One input: a file, or standard input.

    Parameters
    ----------
    name : str
        The path as the user wrote it (or as a directory or glob expanded to), ``-`` for
        standard input.
    fmt : {"npy", "npz", "csv"}
        The format it is read as.
    """

    name: str
    fmt: str

    @property
    def is_stdin(self) -> bool:
        """Whether this source is standard input."""
        return self.name == "-"

    @property
    def read_once(self) -> bool:
        """Whether its rows can be read only once and not memory-mapped: standard input, or
        a path that is not a regular file (a pipe, a FIFO, ``/dev/stdin``, a process
        substitution ``<(...)``). Asked with ``os.stat``, which opens nothing (opening a
        FIFO with no writer would block)."""
        if self.is_stdin:
            return True
        try:
            return not stat.S_ISREG(os.stat(self.name).st_mode)
        except OSError:
            return False


@dataclass(frozen=True)
class ReadOptions:
    """How sources are parsed.

    Parameters
    ----------
    key : str or None
        Name of the array of an ``.npz`` file; None takes its only array.
    delimiter : str or None
        CSV field separator; None detects it from the first data line (``,``, tab, else runs
        of whitespace). ``.tsv`` files default to tab.
    skip_header : bool
        Always skip the first line of CSV input. Without it a first line that does not parse
        as numbers is skipped as a header.
    dtype : {"auto", "float32", "float64"}
        ``auto`` keeps float32 and float64 ``.npy``/``.npz`` data as they are and reads
        everything else as float64.
    block_rows : int
        Rows parsed or read at once from CSV input and from ``.npy`` streams.
    """

    key: str | None = None
    delimiter: str | None = None
    skip_header: bool = False
    dtype: str = "auto"
    block_rows: int = 65536


def _format_of(path: str, fmt: str | None) -> str:
    if fmt is not None:
        return fmt
    ext = Path(path).suffix.lower()
    if ext not in _EXTENSIONS:
        raise DataError(
            f"{path}: cannot tell the data format from the extension {ext or '(none)'!r}; "
            "use .npy, .npz, .csv, .tsv or .txt, or pass --format"
        )
    return _EXTENSIONS[ext]


def expand_sources(specs: Sequence[str], fmt: str | None = None) -> list[Source]:
    """Expand the DATA arguments of the command line into sources, in order.

    Parameters
    ----------
    specs : sequence of str
        Each a file, a directory (its ``*.npy`` files in sorted order), a glob pattern
        (``*``, ``?``, ``[...]``; its matches in sorted order) or ``-`` (standard input; at
        most once, read as CSV unless ``fmt`` says otherwise).
    fmt : {"npy", "npz", "csv"} or None, default=None
        Read every file as this format instead of guessing from its extension.

    Returns
    -------
    list of Source

    Raises
    ------
    DataError
        If a path does not exist, a directory holds no ``.npy`` file, a pattern matches
        nothing, a format cannot be told, or ``-`` is given twice.

    Examples
    --------
    >>> from online_gmm._io.sources import expand_sources
    >>> expand_sources(["-"])
    [Source(name='-', fmt='csv')]
    """
    sources: list[Source] = []
    for spec in specs:
        if spec == "-":
            if any(s.is_stdin for s in sources):
                raise DataError("standard input ('-') can be read only once")
            sources.append(Source("-", fmt or "csv"))
            continue
        path = Path(spec)
        if path.is_dir():
            shards = sorted(str(p) for p in path.glob("*.npy") if p.is_file())
            if not shards:
                raise DataError(f"{spec}: directory holds no .npy file")
            sources.extend(Source(s, fmt or "npy") for s in shards)
        elif path.exists():
            sources.append(Source(spec, _format_of(spec, fmt)))
        elif _GLOB_CHARS & set(spec):
            matches = sorted(m for m in glob.glob(spec) if Path(m).is_file())
            if not matches:
                raise DataError(f"{spec}: no file matches the pattern")
            sources.extend(Source(m, _format_of(m, fmt)) for m in matches)
        else:
            raise DataError(f"{spec}: no such file or directory")
    return sources


def source_names(sources: Sequence[Source]) -> str:
    """The sources' names for a message: the first three, then how many more.

    Parameters
    ----------
    sources : sequence of Source

    Returns
    -------
    str
    """
    names = ["<stdin>" if s.is_stdin else s.name for s in sources]
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
