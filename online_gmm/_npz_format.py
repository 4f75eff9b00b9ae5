"""The pickle-free model file (format 2): an ``np.savez`` archive of numeric arrays and a
JSON header; written by :class:`_Encoder`, read by :class:`_Decoder` without unpickling
anything (see :mod:`online_gmm._persistence` for the layout)."""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported where used: ``import online_gmm`` stays quick
    import zipfile

from ._model_file import (
    _BIT_GENERATORS,
    _CLASS,
    _COUNTERS,
    _FLAGS,
    _HEADER,
    _MAGIC,
    _MAX_HEADER_BYTES,
    _NPZ_FORMATS,
    _PUBLISHED,
    FORMAT_VERSION,
    READABLE_FORMATS,
    _FileRefused,
    _reason,
    _refuse,
)
from ._version import __version__


# ---------------------------------------------------------------------- encoding
class _NotStorable(TypeError):
    """What the pickle-free format cannot store; ``what`` names it (``"name=value"``)."""

    def __init__(self, message: str, what: str) -> None:
        super().__init__(message)
        self.what = what


def _not_storable(where: str, value: Any, why: str = "") -> _NotStorable:
    text = repr(value)
    if len(text) > 80:
        text = text[:77] + "..."
    return _NotStorable(
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

        from ._schedules import PowerDecay
        from ._warmup import Warmup

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
        if type(v) is Warmup:  # the rows held, not the buffer's free space
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


def _encode(model: Any) -> dict[str, Any]:
    """The members of the pickle-free file of ``model``: ``header`` first; a ``TypeError``
    naming what cannot be stored."""
    import numpy as np
    import sklearn

    from ._estimator import OnlineGaussianMixture
    from ._stats import STATE_FIELDS, MixtureState

    if type(model) is not OnlineGaussianMixture:
        raise _NotStorable(
            f"Cannot save a {type(model).__name__} in the pickle-free format, which holds "
            "OnlineGaussianMixture models only: save it with "
            "online_gmm.save(model, path, format=\"pickle\") (loading that file then needs "
            "online_gmm.load(path, trusted=True)).",
            f"a {type(model).__name__}",
        )
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
    state = attrs.pop("_state", None)
    header["fitted"] = state is not None
    if state is not None:
        if type(state) is not MixtureState:
            raise _not_storable("_state", state, " (not a MixtureState)")
        for f in STATE_FIELDS:
            arr = getattr(state, f)
            if type(arr) is not np.ndarray:
                raise _NotStorable(
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
    return {_HEADER: np.frombuffer(data, dtype=np.uint8), **enc.members}


def _as_published(arr: Any, attrs: dict) -> Any:
    """A state's array as the model publishes it (in the dtype of the data it was fitted
    on, ``_published_dtype``)."""
    from ._array_api import astype_all

    return astype_all({"a": arr}, attrs.get("_published_dtype"))["a"]


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


def _read_member(zf: zipfile.ZipFile, name: str, path, saved: str,
                 max_bytes: int | None = None) -> Any:
    """One array member, read with ``allow_pickle=False``: its ``.npy`` header is checked
    against the zip directory before any data is allocated, and the data is read to the end
    (which checks its CRC)."""
    import numpy as np

    fmt = np.lib.format
    try:
        info = zf.getinfo(f"{name}.npy")
    except KeyError:
        raise _refuse(path, saved, f"the file has no member {name!r}") from None
    if max_bytes is not None and info.file_size > max_bytes:
        raise _refuse(path, saved, f"member {name!r} is too large ({info.file_size} bytes)")
    try:
        with zf.open(info) as fh:
            version = fmt.read_magic(fh)
            if version == (1, 0):
                shape, fortran, dtype = fmt.read_array_header_1_0(fh)
            elif version in ((2, 0), (3, 0)):
                shape, fortran, dtype = fmt.read_array_header_2_0(fh)
            else:  # pragma: no cover - read_magic accepts only these
                raise ValueError(f"npy version {version}")
            if dtype.hasobject or dtype.fields or dtype.kind not in "biufc":
                raise ValueError(f"dtype {dtype} is not numbers")
            nbytes = math.prod(shape) * dtype.itemsize
            if nbytes != info.file_size - fh.tell():
                raise ValueError(
                    f"shape {shape} of {dtype} does not match the member's size "
                    f"({info.file_size} bytes)"
                )
            data = fh.read(nbytes)
            if len(data) != nbytes or fh.read(1):
                raise ValueError("the member's data ends early or runs on")
    except Exception as exc:  # BadZipFile, zlib.error, EOFError, ValueError, OSError, ...
        raise _refuse(path, saved, f"member {name!r} is damaged ({_reason(exc)})") from None
    arr = np.frombuffer(data, dtype=dtype)
    order = "F" if fortran else "C"
    return arr.reshape(shape, order=order).copy(order=order)  # writable, own memory


def _read_json_header(zf: zipfile.ZipFile, path) -> dict:
    import numpy as np

    names = zf.namelist()
    if not names or names[0] != f"{_HEADER}.npy":
        raise _refuse(path, "unknown", "an .npz archive that is not an online-gmm model file")
    raw = _read_member(zf, _HEADER, path, "unknown", max_bytes=_MAX_HEADER_BYTES)
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise _refuse(path, "unknown", "the header is not JSON bytes")
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
        try:
            return _Decoder(zf, path, saved).model(header)
        except _FileRefused:
            raise
        except Exception as exc:  # whatever a crafted value makes the checks raise
            raise _refuse(path, saved, f"the file does not hold a valid model "
                                       f"({type(exc).__name__}: {_reason(exc)})") from None


class _Decoder:
    """The inverse of :class:`_Encoder`, checking every value it builds."""

    def __init__(self, zf: zipfile.ZipFile, path, saved: str) -> None:
        self.zf, self.path, self.saved = zf, path, saved

    def fail(self, detail: str) -> ValueError:
        return _refuse(self.path, self.saved, detail)

    def value(self, v: Any, where: str) -> Any:
        import numpy as np

        from ._schedules import PowerDecay

        if v is None or isinstance(v, bool | str | int | float):
            return v
        if isinstance(v, list):
            return [self.value(x, where) for x in v]
        if not (isinstance(v, dict) and len(v) in (1, 2)):
            raise self.fail(f"{where}: unreadable value {v!r:.60}")
        tag = next(iter(v))
        body = v[tag]
        if tag == "float" and body in ("inf", "-inf", "nan"):
            return float(body)
        if tag == "numpy" and len(v) == 2 and isinstance(body, str):
            dtype = np.dtype(body)
            if dtype.kind not in "biuf" or dtype.itemsize > 8:
                raise self.fail(f"{where}: unreadable NumPy scalar type {body!r}")
            return dtype.type(self.value(v["value"], where))
        if len(v) != 1:
            raise self.fail(f"{where}: unreadable value {v!r:.60}")
        if tag == "tuple" and isinstance(body, list):
            return tuple(self.value(x, where) for x in body)
        if tag == "dict" and isinstance(body, dict):
            return {k: self.value(x, f"{where}[{k!r}]") for k, x in body.items()}
        if tag == "array" and isinstance(body, str):
            return _read_member(self.zf, body, self.path, self.saved)
        if tag == "strings" and isinstance(body, list) and all(type(s) is str for s in body):
            return np.array(body, dtype=object)
        if tag == "PowerDecay" and isinstance(body, list) and len(body) == 3:
            return PowerDecay(*body)
        if tag == "RandomState":
            return self.random_state(self.value(body, where), where)
        if tag == "Warmup" and isinstance(body, dict):
            return self.warmup(body, where)
        raise self.fail(f"{where}: unreadable value {v!r:.60}")

    def warmup(self, body: dict, where: str) -> Any:
        import numpy as np

        from ._warmup import Warmup

        size, restarts, n = body.get("size"), body.get("restarts"), body.get("n_rows")
        limit, refining = body.get("limit", 0), body.get("refining", False)
        if (not all(type(x) is int and x >= 0 for x in (size, restarts, n, limit))
                or type(refining) is not bool or n > max(size, limit)):
            raise self.fail(f"{where}: unreadable warm-up buffer")
        X = None if body.get("X") is None else self.value(body["X"], where)
        w = None if body.get("w") is None else self.value(body["w"], where)
        rows = (0 if X is None else X.shape[0], 0 if w is None else w.shape[0])
        if rows != (n, n) or (X is not None and (X.ndim != 2 or not np.isfinite(X).all())):
            raise self.fail(f"{where}: the warm-up buffer's rows do not match it")
        return Warmup(size=size, restarts=max(1, restarts), X=X, w=w, n_rows=n, limit=limit,
                      refining=refining)

    def random_state(self, state: Any, where: str) -> Any:
        import numpy as np

        name = state.get("bit_generator") if isinstance(state, dict) else None
        if name not in _BIT_GENERATORS:
            raise self.fail(f"{where}: unreadable random generator {name!r}")
        rng = np.random.RandomState(getattr(np.random, name)())
        rng.set_state(state)
        return rng

    def model(self, header: dict) -> Any:
        import numpy as np

        from ._estimator import OnlineGaussianMixture
        from ._stats import STATE_FIELDS, MixtureState

        if header.get("class") != _CLASS:
            raise self.fail(f"it holds a {header.get('class')!r:.80}, not an "
                            "OnlineGaussianMixture")
        names = OnlineGaussianMixture._get_param_names()
        params = header.get("params")
        if not isinstance(params, dict) or set(params) - set(names):
            unknown = sorted(set(params) - set(names)) if isinstance(params, dict) else params
            raise self.fail(f"unknown parameters {unknown!r:.80} (written by a newer "
                            "online-gmm?)")
        values = {k: self.value(v, k) for k, v in params.items()}
        probe = OnlineGaussianMixture(**values)
        probe._validate_hyperparameters()  # scikit-learn's messages, naming the parameter
        state_dict = dict(probe.__dict__)

        attrs = header.get("attributes", {})
        if not isinstance(attrs, dict):
            raise self.fail("unreadable attributes")
        for k, v in attrs.items():
            if not isinstance(k, str) or k.startswith("__") or hasattr(OnlineGaussianMixture, k):
                raise self.fail(f"attribute {k!r:.60} would shadow the class's")
            if k in names or k in ("_state", "_rng") or k in _PUBLISHED:
                raise self.fail(f"attribute {k!r:.60} stored twice")
            state_dict[k] = self.value(v, k)
        if "rng" in header:
            rng = header["rng"]
            if rng == {"same_as": "random_state"}:
                state_dict["_rng"] = state_dict["random_state"]
            else:
                state_dict["_rng"] = self.value(rng, "_rng")
            if type(state_dict["_rng"]) is not np.random.RandomState:
                raise self.fail("_rng is not a RandomState")
        fitted = header.get("fitted")
        if type(fitted) is not bool:
            raise self.fail("unreadable 'fitted'")
        if fitted:
            if header.get("state", {}).get("fields") != list(STATE_FIELDS):
                raise self.fail(f"the model's state has fields {header.get('state')!r:.100}, "
                                f"not {list(STATE_FIELDS)}")
            self.check_attributes(state_dict)
            arrays = {f: _read_member(self.zf, f"state.{f}", self.path, self.saved)
                      for f in STATE_FIELDS}
            self.check_state(arrays, probe, int(state_dict["n_features_in_"]))
            state_dict["_state"] = MixtureState(**arrays)
        expected = set(state_dict) | (set(_PUBLISHED) if fitted else set())
        order = header.get("order")
        if (not isinstance(order, list) or len(set(order)) != len(order)
                or not set(order) <= expected):
            raise self.fail("the attribute order lists other attributes than the file's")
        order = order + sorted(expected - set(order))
        ordered = {k: state_dict.get(k) for k in order}
        model = object.__new__(OnlineGaussianMixture)
        ordered["_online_gmm_version"] = __version__  # not an unpickle: no version warning
        model.__setstate__(ordered)
        if fitted:
            model._publish()  # weights_ ... precisions_, as after every step
        return model

    def check_attributes(self, attrs: dict) -> None:
        import numpy as np

        for k in (*_COUNTERS, "n_features_in_"):
            v = attrs.get(k)
            if not isinstance(v, int | np.integer) or isinstance(v, bool) or v < 0:
                raise self.fail(f"{k} must be a non-negative integer, got {v!r:.40}")
        if attrs["n_features_in_"] < 1:
            raise self.fail("n_features_in_ must be at least 1")
        for k in _FLAGS:
            if not isinstance(attrs.get(k), bool | np.bool_):
                raise self.fail(f"{k} must be a boolean, got {attrs.get(k)!r:.40}")
        for k in ("lower_bound_", "temperature_"):
            if not isinstance(attrs.get(k), float | np.floating):
                raise self.fail(f"{k} must be a float, got {attrs.get(k)!r:.40}")
        if "_rng" not in attrs:
            raise self.fail("a fitted model without its random generator")
        if attrs.get("_published_dtype") not in (None, "float32", "float64"):
            raise self.fail(f"unknown _published_dtype {attrs.get('_published_dtype')!r:.40}")
        names = attrs.get("feature_names_in_")
        if names is not None and (not isinstance(names, np.ndarray) or names.dtype != object
                                  or names.shape != (attrs["n_features_in_"],)):
            raise self.fail("feature_names_in_ does not match n_features_in_")

    def check_state(self, arrays: dict, probe: Any, n_features: int) -> None:
        import numpy as np

        from ._covariance import covariance

        K, D = int(probe.n_components), n_features
        cov = covariance(probe.covariance_type).shape(K, D)
        shapes = {
            "weights": (K,), "means": (K, D), "covariances": cov, "precisions_cholesky": cov,
            "mass": (K,), "nu": (K,), "moment": cov, "tied_mass": (1,), "seeded": (K,),
        }
        for f, arr in arrays.items():
            dtype = np.dtype(bool) if f == "seeded" else np.dtype(np.float64)
            if arr.dtype != dtype or arr.shape != tuple(shapes[f]):
                raise self.fail(
                    f"state.{f} is {arr.dtype}{list(arr.shape)}, but n_components={K}, "
                    f"n_features_in_={D} and covariance_type={probe.covariance_type!r} need "
                    f"{dtype}{list(shapes[f])}"
                )
            if f != "seeded" and not np.isfinite(arr).all():
                raise self.fail(f"state.{f} holds NaN or infinity")


