"""The files a command of ``online-gmm`` names: DATA, models, outputs.

DATA arguments become sources and read options (:mod:`online_gmm._io.sources`); models are
loaded (and checked to be a fitted ``OnlineGaussianMixture``) and saved atomically with
:mod:`online_gmm._io.persistence`; output files are checked before any work and opened as
:class:`online_gmm._io.writers.ArrayWriter`.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Sequence
from typing import Any

from .._io.sources import DataError, ReadOptions, Source, expand_sources
from .._io.writers import ArrayWriter, output_format
from .output import UsageError


def _check_writable(path: str) -> None:
    """Fail before any work if the output cannot be written: its directory does not exist,
    it is a directory, or a file cannot be created next to it (a read-only directory or
    file system; tried for real, with the temporary file an atomic write would use)."""
    if path == "-":
        return
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise DataError(f"{path}: cannot write there: no such directory {directory}")
    if os.path.isdir(path):
        raise DataError(f"{path}: is a directory")
    from .._io.writers import _temp_in

    try:
        probe = _temp_in(path)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        reason = reason[:1].lower() + reason[1:]
        raise DataError(f"{path}: cannot write there: {reason} (directory {directory})") from None
    os.unlink(probe)


def _same_file(a: str, b: str) -> bool:
    """Whether paths ``a`` and ``b`` name one file (through links, relative parts, hard
    links); a path that does not exist yet is compared by its resolved name."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def _check_outputs(outputs: dict[str, str | None], inputs: dict[str, Sequence[str]]) -> None:
    """A usage error, before any work, if an output (``{option: path}``) is one of the
    inputs (``{what: paths}``) or another output, under any path: writing it would
    replace what is being read (or the other output)."""
    named = [(opt, path) for opt, path in outputs.items() if path not in (None, "-")]
    for i, (opt, path) in enumerate(named):
        for what, paths in inputs.items():
            for other in paths:
                if other != "-" and _same_file(path, other):
                    raise UsageError(
                        f"{opt} {path} is the {what} {other}: an output must not be one of "
                        "the inputs (it would be replaced); write it elsewhere"
                    )
        for opt2, path2 in named[i + 1:]:
            if _same_file(path, path2):
                raise UsageError(f"{opt} {path} and {opt2} {path2} are the same file: "
                                 "each output needs its own")


def _check_rereadable(sources: Sequence[Source], epochs: int) -> None:
    """A usage error if DATA read ``epochs`` > 1 times holds a source that can be read once
    (standard input, a pipe, a FIFO: checked without opening it)."""
    if epochs <= 1:
        return
    for s in sources:
        if s.read_once:
            what = "standard input ('-')" if s.is_stdin else f"{s.name} (not a regular file)"
            raise UsageError(f"{what} can be read only once: --epochs must be 1 with it "
                             f"(got {epochs}); save it to a file first")


def _read_options(args: argparse.Namespace, batch_size: int) -> ReadOptions:
    return ReadOptions(
        key=args.key,
        delimiter=args.delimiter,
        skip_header=args.skip_header,
        dtype=args.dtype,
        block_rows=max(batch_size, 256),
    )


def _sources(args: argparse.Namespace, specs: Sequence[str], *,
             data: bool = True) -> list[Source]:
    """The sources of ``specs``; for a command's DATA (``data``), ``--key`` with no .npz
    among them is a usage error (it would be ignored)."""
    if list(specs).count("-") > 1:
        raise UsageError("standard input ('-') can be read only once")
    sources = expand_sources(specs, args.format)
    if (data and getattr(args, "key", None) is not None
            and not any(s.fmt == "npz" for s in sources)):
        formats = ", ".join(sorted({s.fmt for s in sources}))
        raise UsageError(f"--key names an array of an .npz file, and no DATA is one "
                         f"(read as: {formats})")
    return sources


def _persistence() -> tuple[Callable[..., Any], Callable[..., Any]]:
    from .._io.persistence import load, save

    return save, load


def _load_model(path: str, trusted: bool = False) -> Any:
    """Load a saved model and check that it is a fitted ``OnlineGaussianMixture``; a
    pickle-based file only with ``trusted`` (``--trusted``)."""
    from .. import OnlineGaussianMixture
    from .._io.persistence import UntrustedFileError

    if not os.path.exists(path):
        raise FileNotFoundError(2, "no such file or directory", path)
    _, load = _persistence()
    try:
        model = load(path, trusted=trusted)
    except UntrustedFileError as exc:
        raise DataError(
            f"{path}: {exc.detail}; loading it can run code from the file: rerun with "
            "--trusted only if you trust where it comes from"
        ) from None
    if not isinstance(model, OnlineGaussianMixture):
        raise DataError(f"{path}: holds a {type(model).__name__}, not an OnlineGaussianMixture")
    if not model.__sklearn_is_fitted__():
        raise DataError(f"{path}: the model is not fitted")
    return model


def _save_format(model: Any, path: str) -> str:
    """The format a command saves ``model`` in: the pickle-free one, unless the model holds
    what only a pickle can (a model loaded with --trusted from a pickle-based file: a custom
    callable schedule); then the pickle-based one, with a warning. Decided before any work."""
    import warnings

    from .._io.persistence import check_savable

    try:
        check_savable(model, "npz")
    except TypeError as exc:
        what = getattr(exc, "what", "the model")
        warnings.warn(
            f"{path}: written in the pickle-based format (loading it needs --trusted), as "
            f"{what} cannot be stored without pickle",
            UserWarning,
            stacklevel=2,
        )
        return "pickle"
    return "npz"


def _save_model(model: Any, path: str, format: str = "npz",  # noqa: A002
                include_warmup_buffer: bool = False) -> None:
    """Save atomically (``save`` writes a temporary file next to ``path``, then renames it
    over ``path``); an error names ``path``. The warm-up's buffer (training rows) only with
    ``include_warmup_buffer`` (``--include-warmup-buffer``)."""
    save, _ = _persistence()
    save(model, path, format=format, include_warmup_buffer=include_warmup_buffer)


def _writer(path: str | None) -> ArrayWriter:
    path = path or "-"
    try:
        fmt = output_format(path)
    except DataError as exc:
        raise UsageError(str(exc)) from None
    _check_writable(path)
    return ArrayWriter(path, fmt)
