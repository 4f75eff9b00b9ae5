"""Data readers and writers of the command line, all streaming.

Inputs are *sources*: a ``.npy``, ``.npz`` or CSV file, every ``.npy`` shard of a directory
or of a glob pattern, or standard input (``-``). :func:`iter_batches` turns a list of sources
into mini-batches of at most ``batch_size`` rows while holding at most one batch plus one
block of one source in memory: a ``.npy`` file is memory-mapped (``mmap_mode="r"``) and
sliced, a CSV file is parsed ``block_rows`` lines at a time, a ``.npy`` stream on standard
input is read ``block_rows`` rows at a time. Only an ``.npz`` member is loaded whole (the zip
format cannot be memory-mapped), one member at a time.

:class:`ArrayWriter` writes rows as they come to a ``.npy`` or CSV file (or CSV to a text
stream), atomically: the file appears under its name only once it is complete.
"""

from __future__ import annotations

import contextlib
import glob
import io
import itertools
import os
import sys
import tempfile
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

__all__ = [
    "DATA_FORMATS",
    "ArrayWriter",
    "DataError",
    "atomic_target",
    "ReadOptions",
    "Source",
    "count_rows",
    "expand_sources",
    "iter_batches",
    "iter_blocks",
    "load_matrix",
    "output_format",
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
    >>> from online_gmm._io import expand_sources
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


# ---------------------------------------------------------------------- readers
def _check_2d(arr: Any, name: str) -> None:
    if arr.ndim != 2:
        raise DataError(
            f"{name}: expected a 2-D array of shape (n_samples, n_features), "
            f"got shape {tuple(arr.shape)}"
        )
    kind = arr.dtype.kind
    if kind not in "biuf":
        raise DataError(f"{name}: expected real numbers, got dtype {arr.dtype}")


def _cast(block: np.ndarray, dtype: str) -> np.ndarray:
    """A float copy (never a view of a memory map) of ``block`` in the wanted dtype."""
    if dtype == "auto":
        target = block.dtype if block.dtype in (np.float32, np.float64) else np.float64
    else:
        target = np.dtype(dtype)
    return np.array(block, dtype=target, order="C", copy=True)


def _open_npy(path: str) -> np.ndarray:
    """Memory-map a ``.npy`` file (read-only): nothing is read until rows are sliced."""
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as exc:  # object arrays cannot be mapped, or a corrupt header
        raise DataError(f"{path}: not a readable numeric .npy file ({exc})") from None


def _load_npz(path: str | IO[bytes], key: str | None, name: str) -> np.ndarray:
    try:
        with np.load(path, allow_pickle=False) as npz:
            keys = list(npz.files)
            if key is None:
                if len(keys) != 1:
                    raise DataError(
                        f"{name}: the archive holds {len(keys)} arrays "
                        f"({', '.join(keys) or 'none'}); choose one with --key"
                    )
                key = keys[0]
            if key not in keys:
                raise DataError(
                    f"{name}: no array named {key!r} (it holds: {', '.join(keys) or 'none'})"
                )
            return npz[key]
    except DataError:
        raise
    except (ValueError, OSError, EOFError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise DataError(f"{name}: not a readable .npz file ({exc})") from None


def _npy_stream_blocks(fp: IO[bytes], name: str, block_rows: int) -> Iterator[np.ndarray]:
    """Read a ``.npy`` byte stream (e.g. a pipe, which cannot seek) block by block."""
    fmt = np.lib.format
    try:
        version = fmt.read_magic(fp)
        reader = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        shape, fortran, dtype = reader(fp)
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(f"{name}: not a .npy stream ({exc})") from None
    if dtype.hasobject:
        raise DataError(f"{name}: object arrays are not supported")
    _check_2d(np.empty((0,) * len(shape), dtype=dtype), name)
    n, d = shape
    if fortran:  # column-major: the rows are not contiguous, read it whole
        data = fp.read(n * d * dtype.itemsize)
        if len(data) != n * d * dtype.itemsize:
            raise DataError(f"{name}: the .npy stream ended early")
        yield np.frombuffer(data, dtype=dtype).reshape((n, d), order="F")
        return
    row_bytes = d * dtype.itemsize
    done = 0
    while done < n:
        m = min(block_rows, n - done)
        data = fp.read(m * row_bytes)
        if len(data) != m * row_bytes:
            got = done + len(data) // max(row_bytes, 1)
            raise DataError(f"{name}: the .npy stream ended early ({got} of {n} rows)")
        yield np.frombuffer(data, dtype=dtype).reshape(m, d)
        done += m


def _sniff_delimiter(line: str) -> str | None:
    if "," in line:
        return ","
    if "\t" in line:
        return "\t"
    if ";" in line:
        return ";"
    return None


def _is_numeric_row(line: str, delimiter: str | None) -> bool:
    fields = line.split(delimiter) if delimiter is not None else line.split()
    try:
        for f in fields:
            float(f)
    except ValueError:
        return False
    return True


def _locate_csv_error(
    chunk: list[str],
    start: int,
    delimiter: str | None,
    n_cols: int | None,
    name: str,
    exc: Exception,
) -> str:
    """Find the first bad line of a chunk :func:`numpy.loadtxt` refused; a one-line message."""
    for offset, line in enumerate(chunk):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        fields = text.split(delimiter) if delimiter is not None else text.split()
        where = f"{name}: line {start + offset}"
        if n_cols is not None and len(fields) != n_cols:
            return f"{where}: {len(fields)} fields where earlier lines have {n_cols}"
        n_cols = len(fields)
        for col, field in enumerate(fields, 1):
            try:
                float(field)
            except ValueError:
                return f"{where}, field {col}: not a number: {field.strip()!r}"
    msg = " ".join(str(exc).split()) or type(exc).__name__
    return f"{name}: bad CSV data in lines {start}-{start + len(chunk) - 1}: {msg}"


def _csv_blocks(
    lines: Iterable[str], name: str, opts: ReadOptions, tsv: bool
) -> Iterator[np.ndarray]:
    """Parse CSV text ``opts.block_rows`` lines at a time with :func:`numpy.loadtxt`."""
    it = iter(lines)
    lineno = 0
    delimiter = opts.delimiter
    first: list[str] = []
    header_done = False
    # The first line that is not blank or a comment decides the delimiter and whether
    # there is a header (a line that does not parse as numbers).
    for line in it:
        lineno += 1
        if lineno == 1 and opts.skip_header:
            header_done = True
            continue
        stripped = line.split("#", 1)[0].strip()
        if not stripped:
            continue
        if delimiter is None:
            delimiter = "\t" if tsv else _sniff_delimiter(stripped)
        if not header_done:
            header_done = True
            if not _is_numeric_row(stripped, delimiter):
                continue
        first = [line]
        break
    start = lineno
    chunk = first + list(itertools.islice(it, max(opts.block_rows - 1, 0)))
    dtype = np.float64 if opts.dtype == "auto" else np.dtype(opts.dtype)
    n_cols = None
    while chunk:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "input contained no data"
            try:
                block = np.loadtxt(chunk, delimiter=delimiter, dtype=dtype, ndmin=2)
            except ValueError as exc:
                raise DataError(
                    _locate_csv_error(chunk, start, delimiter, n_cols, name, exc)
                ) from None
        if block.shape[0]:
            if n_cols is not None and block.shape[1] != n_cols:
                exc = ValueError(f"{block.shape[1]} columns after rows of {n_cols}")
                raise DataError(_locate_csv_error(chunk, start, delimiter, n_cols, name, exc))
            n_cols = block.shape[1]
            yield block
        start += len(chunk)
        chunk = list(itertools.islice(it, opts.block_rows))


def iter_blocks(source: Source, opts: ReadOptions | None = None) -> Iterator[np.ndarray]:
    """Yield the rows of one source as consecutive 2-D float blocks.

    A ``.npy`` file is memory-mapped and sliced into blocks of ``opts.block_rows`` rows
    (each a copy, in memory only while it is used); CSV is parsed ``block_rows`` lines at a
    time; an ``.npz`` member is loaded whole and sliced.

    Parameters
    ----------
    source : Source
    opts : ReadOptions, default=None

    Yields
    ------
    ndarray of shape (n_rows, n_features)
        float32 or float64 (see :class:`ReadOptions`), C-contiguous, never a memory map.

    Raises
    ------
    DataError
        If the source cannot be parsed or is not a 2-D numeric array.
    OSError
        If a file cannot be opened.
    """
    opts = opts or ReadOptions()
    name = "<stdin>" if source.is_stdin else source.name
    if source.fmt == "csv":
        if source.is_stdin:
            yield from _csv_blocks(sys.stdin, name, opts, tsv=False)
        else:
            tsv = Path(source.name).suffix.lower() == ".tsv"
            with open(source.name, encoding="utf-8", newline="") as f:
                yield from _csv_blocks(f, name, opts, tsv=tsv)
        return
    if source.fmt == "npy" and source.is_stdin:
        for block in _npy_stream_blocks(sys.stdin.buffer, name, opts.block_rows):
            yield _cast(block, opts.dtype)
        return
    if source.fmt == "npy":
        arr = _open_npy(source.name)
    elif source.fmt == "npz":
        fp = io.BytesIO(sys.stdin.buffer.read()) if source.is_stdin else source.name
        arr = _load_npz(fp, opts.key, name)
    else:  # pragma: no cover - guarded by the parser
        raise DataError(f"unknown format {source.fmt!r}")
    _check_2d(arr, name)
    for start in range(0, arr.shape[0], opts.block_rows):
        yield _cast(arr[start : start + opts.block_rows], opts.dtype)


def iter_batches(
    sources: Sequence[Source], batch_size: int, opts: ReadOptions | None = None
) -> Iterator[np.ndarray]:
    """Stream the rows of all sources, in order, as batches of ``batch_size`` rows.

    Batches run across source boundaries (shards of any size give equal batches); only the
    last batch may be smaller. At most one batch and one block of one source are held in
    memory at a time.

    Parameters
    ----------
    sources : sequence of Source
    batch_size : int
        Rows per batch, at least 1.
    opts : ReadOptions, default=None

    Yields
    ------
    ndarray of shape (n_rows, n_features)
        ``1 <= n_rows <= batch_size``.

    Raises
    ------
    DataError
        If a source cannot be read, or two sources have different numbers of columns.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from online_gmm._io import Source, iter_batches
    >>> with tempfile.TemporaryDirectory() as d:
    ...     paths = [os.path.join(d, f"shard{i}.npy") for i in range(3)]
    ...     for p in paths:
    ...         np.save(p, np.zeros((5, 2)))
    ...     [len(b) for b in iter_batches([Source(p, "npy") for p in paths], batch_size=4)]
    [4, 4, 4, 3]
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1; got {batch_size}")
    opts = opts or ReadOptions()
    pending: list[np.ndarray] = []
    n_pending = 0
    n_features = None
    first_name = None
    for source in sources:
        for block in iter_blocks(source, opts):
            if n_features is None:
                n_features, first_name = block.shape[1], source.name
            elif block.shape[1] != n_features:
                raise DataError(
                    f"{source.name}: {block.shape[1]} columns, but {first_name} has {n_features}"
                )
            start = 0
            while start < block.shape[0]:
                take = min(batch_size - n_pending, block.shape[0] - start)
                pending.append(block[start : start + take])
                n_pending += take
                start += take
                if n_pending == batch_size:
                    yield pending[0] if len(pending) == 1 else _concat(pending)
                    pending, n_pending = [], 0
    if n_pending:
        yield pending[0] if len(pending) == 1 else _concat(pending)


def _concat(parts: list[np.ndarray]) -> np.ndarray:
    dtype = np.result_type(*parts)
    return np.concatenate([p.astype(dtype, copy=False) for p in parts])


def load_matrix(sources: Sequence[Source], opts: ReadOptions | None = None) -> np.ndarray:
    """Read all sources into one in-memory matrix (for data that fits in memory).

    Parameters
    ----------
    sources : sequence of Source
    opts : ReadOptions, default=None

    Returns
    -------
    ndarray of shape (n_samples, n_features)

    Raises
    ------
    DataError
        If a source cannot be read, the sources disagree on the number of columns, or there
        is no row at all.
    """
    opts = opts or ReadOptions()
    blocks = list(iter_batches(sources, batch_size=1 << 62, opts=opts))
    if not blocks:
        raise DataError(f"no data: {source_names(sources)} holds no row")
    return blocks[0]


def count_rows(sources: Sequence[Source], opts: ReadOptions | None = None) -> int | None:
    """Total number of rows if it is known without parsing the data (``.npy`` files only).

    Parameters
    ----------
    sources : sequence of Source
    opts : ReadOptions, default=None

    Returns
    -------
    int or None
        None when a source is CSV, ``.npz`` or standard input, or cannot be opened.
    """
    total = 0
    for s in sources:
        if s.fmt != "npy" or s.is_stdin:
            return None
        try:
            arr = np.load(s.name, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError):
            return None
        if arr.ndim != 2:
            return None
        total += arr.shape[0]
    return total


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


# ---------------------------------------------------------------------- writers
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
    >>> from online_gmm._io import output_format
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


def _temp_in(path: str) -> str:
    """Create an empty temporary file next to ``path`` whose name ends like ``path``'s (so
    extension-driven writers, e.g. joblib's compression, behave the same)."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix="-" + os.path.basename(path), dir=directory)
    os.close(fd)
    return tmp


def _commit(tmp: str, path: str) -> None:
    """Give ``tmp`` the mode ``path`` has (or the umask default) and rename it to ``path``."""
    try:
        mode = os.stat(path).st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    with contextlib.suppress(OSError):
        os.chmod(tmp, mode)
    os.replace(tmp, path)


@contextlib.contextmanager
def atomic_target(path: str) -> Iterator[str]:
    """Context manager yielding a temporary path that replaces ``path`` on success.

    The temporary file lives in ``path``'s directory, so the final :func:`os.replace` is
    atomic: readers see the old file or the new one, never a partial one. On an exception
    the temporary file is removed and ``path`` is untouched.

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
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _commit(tmp, path)


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
    >>> from online_gmm._io import ArrayWriter
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
