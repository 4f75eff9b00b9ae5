"""The pickle-free model file (format 2): an ``np.savez`` archive of numeric arrays and a
JSON header; written by :class:`_Encoder`, read by :class:`_Decoder` without unpickling
anything (see :mod:`online_gmm._io.persistence` for the layout)."""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported where used: ``import online_gmm`` stays quick
    import zipfile

from .._version import __version__
from .model_file import (
    _CLASS,
    _HEADER,
    _MAGIC,
    _MAX_HEADER_BYTES,
    _NPZ_FORMATS,
    _PUBLISHED,
    FORMAT_VERSION,
    READABLE_FORMATS,
    ModelFileError,
    NotStorableError,
    _reason,
    _refuse,
)
from .npz_decode import ATTRIBUTES, _Decoder, read_member

_NotStorable = NotStorableError  # (the private name of earlier versions)


# ---------------------------------------------------------------------- encoding
def _not_storable(where: str, value: Any, why: str = "") -> NotStorableError:
    text = repr(value)
    if len(text) > 80:
        text = text[:77] + "..."
    return NotStorableError(
        f"Cannot save {where}={text} in the pickle-free format{why}: it stores JSON values "
        "(numbers, strings, lists), NumPy arrays and scalars, PowerDecay and RandomState. "
        "Save with online_gmm.save(model, path, format=\"pickle\") instead (loading that "
        "file then needs online_gmm.load(path, trusted=True), as it can run code), or use "
        "a PowerDecay (forgetting_rate) or a schedule's name (anneal_schedule).",
        f"{where}={text}",
    )


class _Encoder:
    """Tagged JSON for values, the arrays inside them as members of the archive."""

    def __init__(self) -> None:
        self.members: dict[str, Any] = {}

    def array(self, arr: Any, key: str, where: str) -> str:
        import numpy as np

        if type(arr) is not np.ndarray or arr.dtype.kind not in "biufc" or arr.dtype.fields:
            raise _not_storable(where, arr, " (an array of another kind than numbers)")
        if key in self.members:  # pragma: no cover - keys are unique by construction
            raise AssertionError(key)
        self.members[key] = arr
        return key

    def value(self, v: Any, key: str, where: str) -> Any:
        import numpy as np

        from .._em.warmup import Warmup
        from .._math.schedules import PowerDecay

        if v is None or isinstance(v, bool | str):
            return v
        if type(v) is int:
            return v
        if type(v) is float:
            return v if math.isfinite(v) else {"float": repr(v)}
        if isinstance(v, np.generic):
            if v.dtype.kind not in "biuf" or v.dtype.itemsize > 8:
                raise _not_storable(where, v)
            return {"numpy": v.dtype.str, "value": self.value(v.item(), key, where)}
        if isinstance(v, np.ndarray):
            if (type(v) is np.ndarray and v.dtype == object and v.ndim == 1
                    and all(type(s) is str for s in v)):
                return {"strings": v.tolist()}
            return {"array": self.array(v, key, where)}
        if type(v) is PowerDecay:
            return {"PowerDecay": [v.eta0, v.t0, v.alpha]}
        if type(v) is Warmup:  # the rows held, not the buffer's free space (on request)
            n = v.n_rows
            rows = (None if v.X is None else self.value(v.X[:n, ...], f"{key}.X", where),
                    None if v.w is None else self.value(v.w[:n], f"{key}.w", where))
            return {"Warmup": {"size": v.size, "restarts": v.restarts, "n_rows": n,
                               "limit": v.limit, "refining": v.refining,
                               "X": rows[0], "w": rows[1]}}
        if type(v) is np.random.RandomState:
            state = v.get_state(legacy=False)
            return {"RandomState": self.value(state, key, where)}
        if type(v) is list:
            return [self.value(x, f"{key}.{i}", f"{where}[{i}]") for i, x in enumerate(v)]
        if type(v) is tuple:
            return {"tuple": [self.value(x, f"{key}.{i}", f"{where}[{i}]")
                              for i, x in enumerate(v)]}
        if type(v) is dict and all(type(k) is str for k in v):
            return {"dict": {k: self.value(x, f"{key}.{k}", f"{where}[{k!r}]")
                             for k, x in v.items()}}
        why = " (a callable)" if callable(v) else ""
        raise _not_storable(where, v, why)


def _encode(model: Any, include_warmup_buffer: bool = False) -> dict[str, Any]:
    """The members of the pickle-free file of ``model``: ``header`` first; a ``TypeError``
    naming what cannot be stored, a ``ValueError`` for a model :func:`load` would refuse.
    The warm-up's buffer (training rows) only with ``include_warmup_buffer``; without it
    the file's warm-up is over (``_warmup`` None)."""
    import numpy as np
    import sklearn

    from .._em.consistency import check_fitted_parameters
    from .._estimators.gaussian import OnlineGaussianMixture
    from .._math.state import STATE_FIELDS, MixtureState

    if type(model) is not OnlineGaussianMixture:
        name = type(model).__name__
        article = "an" if name[:1].lower() in "aeiou" else "a"
        raise NotStorableError(
            f"Cannot save {article} {name} in the pickle-free format, which holds "
            "OnlineGaussianMixture models only (not an OnlineBayesianGaussianMixture, nor a "
            "subclass): save it with online_gmm.save(model, path, format=\"pickle\") "
            "(loading that file then needs online_gmm.load(path, trusted=True)).",
            f"{article} {name}",
        )
    check_fitted_parameters(model, "save")
    enc = _Encoder()
    params = model.get_params(deep=False)
    header: dict[str, Any] = {
        "magic": _MAGIC,
        "format_version": FORMAT_VERSION,
        "online_gmm_version": __version__,
        "sklearn_version": sklearn.__version__,
        "numpy_version": np.__version__,
        "class": _CLASS,
        "params": {k: enc.value(v, f"param.{k}", k) for k, v in params.items()},
    }
    attrs = {k: v for k, v in model.__dict__.items() if k not in params}
    for k in attrs:
        if k not in ATTRIBUTES and k not in ("_state", "_rng") and k not in _PUBLISHED:
            raise NotStorableError(
                f"Cannot save the attribute {k!r} in the pickle-free format, which holds the "
                "estimator's own attributes only (load() refuses any other): delete it "
                f"(del model.{k}), or save with online_gmm.save(model, path, "
                "format=\"pickle\") (loading that file then needs "
                "online_gmm.load(path, trusted=True)).",
                k,
            )
    if not include_warmup_buffer and "_warmup" in attrs:
        attrs["_warmup"] = None  # no training rows in the file: the warm-up is over
    state = attrs.pop("_state", None)
    header["fitted"] = state is not None
    if state is not None:
        if type(state) is not MixtureState:
            raise _not_storable("_state", state, " (not a MixtureState)")
        for f in STATE_FIELDS:
            arr = getattr(state, f)
            if type(arr) is not np.ndarray:
                raise NotStorableError(
                    f"Cannot save a model whose state lives in {type(arr).__module__} arrays "
                    "in the pickle-free format, which holds NumPy (host) arrays: save it with "
                    "online_gmm.save(model, path, format=\"pickle\").",
                    f"a state in {type(arr).__module__} arrays",
                )
            enc.array(arr, f"state.{f}", f"_state.{f}")
        header["state"] = {"fields": list(STATE_FIELDS)}
        for name, field in _PUBLISHED.items():
            if name in attrs:
                if field is not None and not _same_array(
                        attrs[name], _as_published(getattr(state, field), attrs)):
                    raise _not_storable(name, attrs[name], " (it differs from the state's "
                                                           f"{field})")
                del attrs[name]  # rebuilt from the state by load, as after every step
    rng = attrs.pop("_rng", None)
    if rng is not None:
        if rng is params.get("random_state"):
            header["rng"] = {"same_as": "random_state"}
        elif type(rng) is np.random.RandomState:
            header["rng"] = enc.value(rng, "rng", "_rng")
        else:
            raise _not_storable("_rng", rng)
    header["attributes"] = {k: enc.value(v, f"attr.{k}", k) for k, v in attrs.items()}
    header["order"] = list(model.__dict__)
    text = json.dumps(header, allow_nan=False, ensure_ascii=False, separators=(",", ":"))
    data = text.encode("utf-8")
    if len(data) > _MAX_HEADER_BYTES:
        raise ValueError(f"Cannot save this model: its header would take {len(data)} bytes, "
                         f"more than load() reads ({_MAX_HEADER_BYTES}).")
    _check_loads(json.loads(text), enc.members)
    return {_HEADER: np.frombuffer(data, dtype=np.uint8), **enc.members}


def _as_published(arr: Any, attrs: dict) -> Any:
    """A state's array as the model publishes it (in the dtype of the data it was fitted
    on, ``_published_dtype``)."""
    from .._math.array_api import astype_all

    return astype_all({"a": arr}, attrs.get("_published_dtype"))["a"]


def _check_loads(header: dict, members: dict[str, Any]) -> None:
    """Run :func:`load`'s checks on what :func:`save` is about to write: a ``ValueError``
    (nothing written) instead of a file that would not load."""

    def member(name: str, expect: Any) -> Any:
        arr = members.get(name)
        problem = "it is missing" if arr is None else expect(arr.shape, arr.dtype)
        if problem:
            raise ValueError(f"Cannot save this model, load() would refuse it: {problem}.")
        return arr

    def fail(detail: str) -> ValueError:
        return ValueError(f"Cannot save this model, load() would refuse it: {detail}.")

    _Decoder(member, fail).model(header)


def _same_array(a: Any, b: Any) -> bool:
    """Whether ``a`` is ``b``, or holds the same values, dtype and shape (a pickle by joblib
    does not keep the fitted attributes the state's views)."""
    import numpy as np

    return a is b or (
        type(a) is np.ndarray and type(b) is np.ndarray and a.dtype == b.dtype
        and a.shape == b.shape and bool(np.array_equal(a, b))
    )


def _write_npz(path: str, members: dict[str, Any], level: int) -> None:
    """The members as ``NAME.npy`` in a zip archive: :func:`numpy.savez`'s layout, with
    ``allow_pickle=False`` and a chosen deflate level."""
    import zipfile

    import numpy as np

    compression = zipfile.ZIP_DEFLATED if level else zipfile.ZIP_STORED
    kw = {"compresslevel": level} if level > 0 else {}
    with open(path, "wb") as fh, zipfile.ZipFile(
        fh, "w", compression=compression, allowZip64=True, **kw
    ) as zf:
        for name, arr in members.items():
            with zf.open(f"{name}.npy", "w", force_zip64=True) as out:
                np.lib.format.write_array(out, np.asanyarray(arr), allow_pickle=False)



# ---------------------------------------------------------------------- format 2
@contextlib.contextmanager
def _open_archive(path) -> Iterator[zipfile.ZipFile]:
    import zipfile

    try:
        zf = zipfile.ZipFile(path)
    except (FileNotFoundError, PermissionError, IsADirectoryError):
        raise
    except Exception as exc:  # BadZipFile, LargeZipFile, ValueError, EOFError, ...
        raise _refuse(path, "unknown", f"a damaged zip archive ({_reason(exc)})") from None
    with zf:
        yield zf


def _read_json_header(zf: zipfile.ZipFile, path) -> dict:
    import numpy as np

    names = zf.namelist()
    if not names or names[0] != f"{_HEADER}.npy":
        raise _refuse(path, "unknown", "an .npz archive that is not an online-gmm model file")

    def expect(shape: tuple, dtype: Any) -> str | None:
        if dtype != np.uint8 or len(shape) != 1:
            return "the header is not JSON bytes"
        if shape[0] > _MAX_HEADER_BYTES:
            return f"the header is too large ({shape[0]} bytes)"
        return None

    raw = read_member(zf, _HEADER, path, "unknown", expect)
    try:
        header = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise _refuse(path, "unknown", f"the header is not JSON ({_reason(exc)})") from None
    if not isinstance(header, dict) or header.get("magic") != _MAGIC:
        raise _refuse(path, "unknown", "not an online-gmm model file (no magic in its header)")
    return header


def _load_npz(path) -> Any:
    with _open_archive(path) as zf:
        header = _read_json_header(zf, path)
        saved = header.get("online_gmm_version")
        saved = saved if isinstance(saved, str) else "unknown"
        fmt = header.get("format_version")
        if type(fmt) is not int or fmt not in _NPZ_FORMATS:
            newer = type(fmt) is int and fmt > max(READABLE_FORMATS)
            hint = "; upgrade online-gmm to read it" if newer else ""
            raise _refuse(path, saved, f"unknown file format version {fmt!r}{hint}")
        def member(name: str, expect: Any) -> Any:
            return read_member(zf, name, path, saved, expect)

        decoder = _Decoder(member, lambda detail: _refuse(path, saved, detail))
        decoder.read.add(_HEADER)
        try:
            return decoder.model(header)
        except ModelFileError:
            raise
        except Exception as exc:  # whatever a crafted value makes the checks raise
            raise _refuse(path, saved, f"the file does not hold a valid model "
                                       f"({type(exc).__name__}: {_reason(exc)})") from None
