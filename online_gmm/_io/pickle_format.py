"""The pickle-based model file (format 1): its payload, its loading (``trusted=True``
only), and its header read from the pickle's opcodes without unpickling anything."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported where used: ``import online_gmm`` stays quick
    pass

from .._version import __version__
from .model_file import (
    _MAGIC,
    _PICKLE_FORMATS,
    PICKLE_FORMAT_VERSION,
    READABLE_FORMATS,
    _reason,
    _refuse,
)


def _pickle_payload(model: Any, include_warmup_buffer: bool = False) -> dict:
    import joblib
    import numpy as np
    import sklearn

    from .._em.consistency import check_fitted_parameters

    check_fitted_parameters(model, "save")
    if not include_warmup_buffer and model.__dict__.get("_warmup") is not None:
        # no training rows in the file: the warm-up is over (the model itself keeps it)
        copy = object.__new__(type(model))
        copy.__dict__.update(model.__dict__)
        copy.__dict__["_warmup"] = None
        model = copy
    buf = io.BytesIO()
    joblib.dump(model, buf)
    return {
        "magic": _MAGIC,
        "format_version": PICKLE_FORMAT_VERSION,
        "online_gmm_version": __version__,
        "sklearn_version": sklearn.__version__,
        "numpy_version": np.__version__,
        "class": f"{type(model).__module__}.{type(model).__qualname__}",
        "model": buf.getvalue(),
    }


# ---------------------------------------------------------------------- format 1
def _load_pickle(path) -> Any:
    """The pickle-based formats (unpickles: only for trusted files)."""
    import joblib

    from .._estimators.gaussian import OnlineGaussianMixture
    from .._math.state import STATE_FIELDS

    try:
        payload = joblib.load(path)
    except FileNotFoundError:
        raise
    except Exception as exc:
        raise _refuse(
            path, "unknown", f"not a joblib file ({type(exc).__name__}: {exc})"
        ) from exc
    if not isinstance(payload, dict) or payload.get("magic") != _MAGIC:
        if isinstance(payload, OnlineGaussianMixture):
            # A bare joblib.dump / pickle of the estimator: no header to check.
            model = payload
            saved = getattr(payload, "_online_gmm_version", "unknown")
        else:
            raise _refuse(
                path, "unknown",
                f"it holds a {type(payload).__name__}, not an online-gmm model written by "
                "online_gmm.save()",
            )
    else:
        saved = payload.get("online_gmm_version", "unknown")
        fmt = payload.get("format_version")
        if type(fmt) is not int or fmt not in _PICKLE_FORMATS:
            newer = type(fmt) is int and fmt > max(READABLE_FORMATS)
            hint = "; upgrade online-gmm to read it" if newer else ""
            raise _refuse(path, saved, f"unknown file format version {fmt!r}{hint}")
        blob = payload.get("model")
        if not isinstance(blob, bytes | bytearray):
            raise _refuse(path, saved, "the file holds no model")
        try:
            model = joblib.load(io.BytesIO(blob))
        except Exception as exc:
            raise _refuse(
                path, saved, f"the model does not unpickle here ({type(exc).__name__}: {exc})"
            ) from exc
    if not isinstance(model, OnlineGaussianMixture):
        raise _refuse(
            path, saved, f"it holds a {type(model).__name__}, not an OnlineGaussianMixture"
        )
    state = model.__dict__.get("_state")
    if state is not None:
        missing = [f for f in STATE_FIELDS if not hasattr(state, f)]
        if missing:
            raise _refuse(path, saved, f"the model's state lacks {missing}")
    return model


class _Decompressed:
    """The pickle of a joblib file (zlib, gzip, bz2, xz or lzma compressed, or not), as a
    stream decompressed as far as it is read (at most 1 MiB ahead): what
    :func:`pickletools.genops` reads opcodes from."""

    _STEP = 1 << 20

    def __init__(self, fh) -> None:
        import bz2
        import lzma
        import zlib

        self.fh = fh
        start = fh.read(6)
        fh.seek(0)
        self.zlib = start.startswith((b"\x78", b"\x1f\x8b"))
        if start.startswith(b"\x78"):
            self.dec: Any = zlib.decompressobj()
        elif start.startswith(b"\x1f\x8b"):
            self.dec = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif start.startswith(b"BZh"):
            self.dec = bz2.BZ2Decompressor()
        elif start.startswith((b"\xfd7zXZ\x00", b"\x5d\x00\x00")):
            self.dec = lzma.LZMADecompressor()
        else:
            self.dec = None
        self.buf = bytearray()
        self.pos = 0
        self.eof = False

    def _more(self) -> None:
        dec = self.dec
        if dec is None:
            chunk = data = self.fh.read(self._STEP)
        elif dec.eof:
            chunk = data = b""
        elif self.zlib:
            chunk = dec.unconsumed_tail or self.fh.read(1 << 16)
            data = dec.decompress(chunk, self._STEP) if chunk else b""
        else:
            chunk = self.fh.read(1 << 16) if dec.needs_input else b"-"
            data = dec.decompress(chunk if chunk != b"-" else b"", self._STEP) if chunk else b""
        if not chunk:  # the end of the file, or of the compressed stream
            self.eof = True
        self.buf += data

    def read(self, n: int = -1) -> bytes:
        while not self.eof and (n < 0 or len(self.buf) - self.pos < n):
            self._more()
        end = len(self.buf) if n < 0 else min(len(self.buf), self.pos + n)
        out = bytes(self.buf[self.pos : end])
        self.pos = end
        if self.pos > self._STEP:
            del self.buf[: self.pos]
            self.pos = 0
        return out

    def readline(self) -> bytes:  # the text opcodes of protocol 0
        out = bytearray()
        while not out.endswith(b"\n"):
            c = self.read(1)
            if not c:
                break
            out += c
        return bytes(out)


class _NotAHeader(Exception):
    pass


def _pickle_header(path) -> dict:
    """The header dict of a format-1 file, from its pickle opcodes, executing none of them
    (a tiny stack machine over :func:`pickletools.genops` that knows dicts, strings,
    numbers and bytes, and stops at the model's bytes)."""
    try:
        header = _parse_header_opcodes(path)
    except _NotAHeader as exc:
        raise _refuse(path, "unknown", f"not an online-gmm model file written by "
                                       f"online_gmm.save() ({exc})") from None
    except (FileNotFoundError, PermissionError, IsADirectoryError):
        raise
    except Exception as exc:  # zlib.error, lzma.LZMAError, pickletools' ValueError, ...
        raise _refuse(path, "unknown", f"a damaged pickle ({_reason(exc)})") from None
    if header.get("magic") != _MAGIC:
        raise _refuse(path, "unknown", "not an online-gmm model file (no magic in its header)")
    return header


_SIMPLE_VALUE_OPS = {
    "SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "BININT", "BININT1",
    "BININT2", "INT", "LONG", "LONG1", "LONG4", "BINFLOAT", "FLOAT", "SHORT_BINBYTES",
    "BINBYTES", "BINBYTES8", "NONE", "NEWTRUE", "NEWFALSE",
}


def _parse_header_opcodes(path) -> dict:
    import pickletools

    with open(path, "rb") as raw:
        stream = _Decompressed(raw)
        stack: list[Any] = []
        memo: dict[int, Any] = {}
        marks: list[int] = []
        top: dict | None = None
        for op, arg, _ in pickletools.genops(stream):
            name = op.name
            if name in ("PROTO", "FRAME"):
                continue
            if name == "EMPTY_DICT" and top is None and not stack:
                top = {}
                stack.append(top)
            elif name == "MARK":
                marks.append(len(stack))
            elif name in _SIMPLE_VALUE_OPS:
                value = {"NONE": None, "NEWTRUE": True, "NEWFALSE": False}.get(name, arg)
                stack.append(value)
                if value == "model" and marks and (len(stack) - marks[-1]) % 2 == 1:
                    # the model's bytes follow: the header is complete
                    stack.pop()
                    _set_items(stack, marks.pop(), top)
                    break
            elif name in ("MEMOIZE", "BINPUT", "LONG_BINPUT", "PUT"):
                if not stack:
                    raise _NotAHeader("an empty stack")
                memo[len(memo) if name == "MEMOIZE" else arg] = stack[-1]
            elif name in ("BINGET", "LONG_BINGET", "GET") and arg in memo:
                stack.append(memo[arg])
            elif name == "SETITEMS" and marks:
                _set_items(stack, marks.pop(), top)
            elif name == "SETITEM" and len(stack) >= 3:
                _set_items(stack, len(stack) - 2, top)
            elif name == "STOP":
                break
            else:
                if name in ("STACK_GLOBAL", "GLOBAL", "INST"):
                    raise _NotAHeader("a pickle of an object, e.g. a bare joblib.dump")
                raise _NotAHeader(f"unexpected pickle opcode {name}")
        if top is None:
            raise _NotAHeader("no header")
        return top


def _set_items(stack: list, start: int, top: dict | None) -> None:
    items = stack[start:]
    del stack[start:]
    if not stack or stack[-1] is not top or top is None or len(items) % 2:
        raise _NotAHeader("not a dict of values")
    for k, v in zip(items[::2], items[1::2], strict=True):
        if k != "model":
            top[k] = v


def _describe_pickle(path) -> str:
    """What a pickle-based file is, read without unpickling, for :class:`UntrustedFileError`."""
    try:
        header = _pickle_header(path)
    except ValueError:
        return "it is a pickle (e.g. a bare joblib.dump or pickle.dump), not a pickle-free " \
               "online-gmm model file"
    return (
        f"it is a pickle-based model file (format {header.get('format_version')!r}, saved by "
        f"online-gmm {header.get('online_gmm_version', 'unknown')})"
    )

