"""Streaming readers of the command line's sources.

:func:`iter_batches` turns a list of sources (:mod:`online_gmm._io.sources`) into mini-batches
of at most ``batch_size`` rows while holding at most one batch plus one block of one source
in memory: a ``.npy`` file is memory-mapped (``mmap_mode="r"``) and sliced, a CSV file is
parsed ``block_rows`` lines at a time (delimiter sniffed, a UTF-8 byte-order mark dropped, a
bad line reported by number), a ``.npy`` stream on standard input is read ``block_rows`` rows
at a time. Only an ``.npz`` member is loaded whole (the zip format cannot be memory-mapped),
one member at a time. Every block is checked to be finite: a NaN or infinity is reported with
its source and line (CSV) or row and column (arrays).
"""

from __future__ import annotations

import io
import itertools
import os
import sys
import warnings
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np

from .sources import DataError, ReadOptions, Source, source_names

__all__ = [
    "count_rows",
    "iter_batches",
    "iter_blocks",
    "load_matrix",
]


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
    except (ValueError, EOFError) as exc:  # object arrays, a corrupt header, an empty file
        detail = "the file is empty" if _is_empty(path) else " ".join(str(exc).split())
        raise DataError(f"{path}: not a readable numeric .npy file ({detail})") from None


def _is_empty(path: str) -> bool:
    try:
        return os.path.getsize(path) == 0
    except OSError:
        return False


def _load_npz(path: str | IO[bytes], key: str | None, name: str) -> np.ndarray:
    try:
        npz = np.load(path, allow_pickle=False)
        if not isinstance(npz, np.lib.npyio.NpzFile):  # a .npy read as --format npz
            raise DataError(f"{name}: not an .npz archive (a single .npy array; drop "
                            "--format npz or use --format npy)")
        with npz:
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


def _check_finite(block: np.ndarray, name: str, first_row: int) -> None:
    """A :class:`DataError` naming the row and column of the first NaN or infinity."""
    if block.dtype.kind != "f" or np.isfinite(block).all():
        return
    r, c = np.argwhere(~np.isfinite(block))[0]
    raise DataError(
        f"{name}: row {first_row + int(r)}, column {int(c)} (0-based) is "
        f"{block[r, c]}: the data must be finite numbers (no NaN or infinity)"
    )


def _locate_nonfinite(
    chunk: list[str], start: int, delimiter: str | None, block: np.ndarray, name: str
) -> str | None:
    """The line and field of the first NaN or infinity of a parsed chunk; a one-line message
    (None if the block is finite)."""
    bad = ~np.isfinite(block)
    if not bad.any():
        return None
    r, c = (int(i) for i in np.argwhere(bad)[0])
    row = -1
    for offset, line in enumerate(chunk):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        row += 1
        if row == r:
            fields = text.split(delimiter) if delimiter is not None else text.split()
            field = fields[c].strip() if c < len(fields) else str(block[r, c])
            return (
                f"{name}: line {start + offset}, field {c + 1}: not a finite number: "
                f"{field!r} (the data must be finite: no NaN or infinity)"
            )
    return f"{name}: lines {start}-{start + len(chunk) - 1}: NaN or infinity in the data"


def _strip_bom(lines: Iterable[str]) -> Iterator[str]:
    """The lines, the first without a UTF-8 byte-order mark (as decoded by UTF-8, or kept as
    surrogate escapes by a non-UTF-8 standard input)."""
    it = iter(lines)
    for line in it:
        for bom in _BOMS:
            if line.startswith(bom):
                line = line[len(bom) :]
                break
        yield line
        break
    yield from it


_BOMS = ("\ufeff", "\udcef\udcbb\udcbf")


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


class HeaderSkipped(UserWarning):
    """A CSV's first line was not numbers and was skipped as a header (said on stderr, so
    that a first *data* row with a bad field is not dropped silently)."""


def _header_notice(name: str, lineno: int, line: str, delimiter: str | None) -> str:
    fields = line.split(delimiter) if delimiter is not None else line.split()
    numbers = [f for f in fields if _is_numeric_row(f.strip(), None) and f.strip()]
    text = line if len(line) <= 60 else line[:57] + "..."
    notice = f"{name}: line {lineno} ({text!r}) is not all numbers: skipped as a header"
    if numbers:  # some fields are numbers: more likely a data row with a bad field
        bad = next(i for i, f in enumerate(fields, 1)
                   if not _is_numeric_row(f.strip(), None) or not f.strip())
        notice += (f"; but {len(numbers)} of its {len(fields)} fields are numbers: if it is "
                   f"data, field {bad} is not a number")
    return notice + " (--skip-header skips it without this notice)"


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
    it = _strip_bom(lines)
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
                warnings.warn(_header_notice(name, lineno, stripped, delimiter),
                              HeaderSkipped, stacklevel=2)
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
            bad = _locate_nonfinite(chunk, start, delimiter, block, name)
            if bad is not None:
                raise DataError(bad)
            yield block
        start += len(chunk)
        chunk = list(itertools.islice(it, opts.block_rows))


def _npy_stream(fh: IO[bytes], name: str, opts: ReadOptions) -> Iterator[np.ndarray]:
    done = 0
    for block in _npy_stream_blocks(fh, name, opts.block_rows):
        block = _cast(block, opts.dtype)
        _check_finite(block, name, done)
        done += block.shape[0]
        yield block


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
        If the source cannot be parsed, is not a 2-D numeric array, or holds NaN or
        infinity (the message names the line of CSV, the row and column of an array).
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
    if source.fmt == "npy" and source.read_once:  # a pipe cannot be memory-mapped
        if source.is_stdin:
            yield from _npy_stream(sys.stdin.buffer, name, opts)
        else:
            with open(source.name, "rb") as fh:
                yield from _npy_stream(fh, name, opts)
        return
    if source.fmt == "npy":
        arr = _open_npy(source.name)
    elif source.fmt == "npz":
        if source.is_stdin:
            fp: Any = io.BytesIO(sys.stdin.buffer.read())
        elif source.read_once:  # a zip needs seeking: a pipe is read whole
            with open(source.name, "rb") as fh:
                fp = io.BytesIO(fh.read())
        else:
            fp = source.name
        arr = _load_npz(fp, opts.key, name)
    else:  # pragma: no cover - guarded by the parser
        raise DataError(f"unknown format {source.fmt!r}")
    _check_2d(arr, name)
    for start in range(0, arr.shape[0], opts.block_rows):
        block = _cast(arr[start : start + opts.block_rows], opts.dtype)
        _check_finite(block, name, start)
        yield block


def iter_batches(
    sources: Sequence[Source],
    batch_size: int,
    opts: ReadOptions | None = None,
    n_features: int | None = None,
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
    n_features : int, default=None
        The number of columns every source must have (a saved model's ``n_features_in_``);
        None: the first source's.

    Yields
    ------
    ndarray of shape (n_rows, n_features)
        ``1 <= n_rows <= batch_size``.

    Raises
    ------
    DataError
        If a source cannot be read, holds NaN or infinity, or has a number of columns other
        than ``n_features`` or the first source's; the message names the source.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from online_gmm._io.readers import iter_batches
    >>> from online_gmm._io.sources import Source
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
    expected, n_features = n_features, None
    first_name = None
    for source in sources:
        name = "<stdin>" if source.is_stdin else source.name
        for block in iter_blocks(source, opts):
            if expected is not None and block.shape[1] != expected:
                raise DataError(
                    f"{name}: {block.shape[1]} columns, but the model has {expected} features"
                )
            if n_features is None:
                n_features, first_name = block.shape[1], name
            elif block.shape[1] != n_features:
                raise DataError(
                    f"{name}: {block.shape[1]} columns, but {first_name} has {n_features}"
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
        if s.fmt != "npy" or s.read_once:  # (a pipe's header must stay unread)
            return None
        try:
            arr = np.load(s.name, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError, EOFError):
            return None
        if arr.ndim != 2:
            return None
        total += arr.shape[0]
    return total
