"""Saving and loading fitted models: a pickle-free file format, and the pickle-based one.

``save(model, path)`` writes the **pickle-free format** (format version 2) by default: loading
it runs no code from the file, so a model file from anywhere can be opened. ``save(model,
path, format="pickle")`` writes the pickle-based format 1 of online-gmm 0.1.0, which stores
anything (a custom callable ``forgetting_rate`` or ``anneal_schedule``, a subclass) but whose
loading executes whatever code the file holds: :func:`load` reads it only when told
``trusted=True``. Which format a file holds is read from its first bytes, not from its name.

Writing is atomic whatever the format: the file is written under a temporary name in the
target's directory, flushed to disk and renamed over the target
(:func:`online_gmm._writers.atomic_target`), so an interrupted or failed save (Ctrl-C,
SIGTERM, a full disk) leaves the previous file as it was and no temporary file behind.

Format 2 (pickle-free, default)
-------------------------------
A zip archive in NumPy's ``.npz`` layout (what :func:`numpy.savez` writes; members deflated
at level ``compress``), read back with ``allow_pickle=False``: every member is a ``NAME.npy``
file of a numeric or boolean array; object arrays are never written nor read. Members, in
order:

- ``header``: uint8, the UTF-8 bytes of a JSON object:

  - ``magic`` (``"online-gmm model"``), ``format_version`` (2), ``online_gmm_version``,
    ``sklearn_version``, ``numpy_version``, ``class``
    (``"online_gmm._estimator.OnlineGaussianMixture"``);
  - ``params``: every constructor parameter (``get_params(deep=False)``) as tagged JSON
    (below);
  - ``fitted``: whether the model has a state; then ``attributes`` (the bookkeeping:
    ``n_steps_``, ``n_samples_seen_``, ``n_reseeded_``, ``n_iter_``, ``converged_``,
    ``lower_bound_``, ``temperature_``, ``n_features_in_``, ``feature_names_in_``,
    ``_user_init_pending``, ... as tagged JSON), ``rng`` (the ``RandomState`` of the
    stream, tagged; ``{"same_as": "random_state"}`` when it is the ``random_state``
    parameter itself) and ``state`` (``{"fields": [...]}``, the names of
    :data:`online_gmm.core.STATE_FIELDS`);
  - ``order``: the names of the estimator's attributes in their original order.

- ``state.<field>`` for every field of the :class:`~online_gmm.core.MixtureState`
  (``weights``, ``means``, ``covariances``, ``precisions_cholesky``, ``mass``, ``nu``,
  ``moment``, ``tied_mass``: float64; ``seeded``: bool), shapes as in the state;
- one member per array inside a parameter or attribute (``param.means_init``,
  ``rng.state.key`` for the Mersenne Twister's 624 words, ``attr.<name>``, ...), named where
  the JSON refers to it.

The fitted attributes ``weights_``, ``means_``, ``covariances_``, ``precisions_cholesky_``
(views of the state) and ``precisions_`` (computed from it) are not stored: :func:`load`
rebuilds them as the estimator does after every step. Tagged JSON: ``null``, booleans,
strings, integers, finite floats (Python's ``repr``, exact) and lists are themselves; other
values are one-key objects: ``{"float": "inf"}``, ``{"numpy": "<f8", "value": ...}`` (a NumPy
scalar), ``{"tuple": [...]}``, ``{"dict": {...}}``, ``{"array": MEMBER}``, ``{"strings":
[...]}`` (a 1-D object array of str, e.g. ``feature_names_in_``), ``{"PowerDecay": [eta0,
t0, alpha]}``, ``{"RandomState": {...}}`` (its ``get_state(legacy=False)``). Any other value
(a callable, an arbitrary object) cannot be stored in this format: :func:`save` refuses it
and names the parameter or attribute.

:func:`load` checks everything before it builds the model: the zip structure and every
member's CRC, each array's dtype and shape against ``n_components``, ``n_features_in_`` and
``covariance_type``, the state's finiteness, the parameters (the estimator's own validation),
the attribute types; anything else is a one-line ``ValueError`` naming the file.

Format 1 (pickle-based; online-gmm 0.1.0, and ``save(..., format="pickle")``)
------------------------------------------------------------------------------
A joblib file (zlib-compressed at level ``compress``) of a dict: the header keys above
(``magic`` ... ``class``, ``format_version`` 1) and ``model``: ``joblib.dump`` bytes of the
estimator. :func:`read_header` parses that dict's opcodes without unpickling anything
(:mod:`pickletools`); :func:`load` unpickles the model only with ``trusted=True``. A bare
``joblib.dump`` or ``pickle.dump`` of an estimator loads with ``trusted=True`` too.

Bump :data:`FORMAT_VERSION` whenever a file of the previous pickle-free format could no
longer be read into a working model (a renamed or removed state field, a changed moment
layout), and teach :func:`load` to migrate the old format, or list it as unreadable.
:data:`PICKLE_FORMAT_VERSION` is the same for the pickle-based layout.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import signal
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported where used: ``import online_gmm`` stays quick
    import zipfile

from ._version import __version__

__all__ = [
    "FORMAT_VERSION",
    "PICKLE_FORMAT_VERSION",
    "READABLE_FORMATS",
    "UntrustedFileError",
    "check_savable",
    "is_model_archive",
    "load",
    "read_header",
    "save",
]

#: Version of the pickle-free file layout written by :func:`save` (the default).
FORMAT_VERSION = 2
#: Version of the pickle-based layout written by ``save(..., format="pickle")``.
PICKLE_FORMAT_VERSION = 1
#: Formats :func:`load` can read (the pickle-based one only with ``trusted=True``).
READABLE_FORMATS = (1, 2)
# The versions of each layout this version reads.
_NPZ_FORMATS = (2,)
_PICKLE_FORMATS = (1,)
#: The values of ``save``'s ``format``.
FORMATS = ("npz", "pickle")

_MAGIC = "online-gmm model"
_CLASS = "online_gmm._estimator.OnlineGaussianMixture"
_HEADER = "header"
#: Most bytes the JSON header of a pickle-free file may have.
_MAX_HEADER_BYTES = 64 << 20
# The fitted attributes rebuilt from the state by the estimator's ``_publish``.
_PUBLISHED = {
    "weights_": "weights",
    "means_": "means",
    "covariances_": "covariances",
    "precisions_cholesky_": "precisions_cholesky",
    "precisions_": None,
}
_BIT_GENERATORS = ("MT19937", "PCG64", "PCG64DXSM", "Philox", "SFC64")
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")
# First bytes of what joblib.dump / pickle.dump write: a pickle (protocol 2+), or joblib's
# zlib, gzip, bz2, xz and lzma compressions.
_PICKLE_MAGICS = (b"\x80", b"\x78", b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00", b"\x5d\x00\x00")

#: The attributes of a fitted model and what they must hold (checked by :func:`load`).
_COUNTERS = ("n_steps_", "n_samples_seen_", "n_reseeded_", "n_iter_")
_FLAGS = ("converged_", "_user_init_pending")


class UntrustedFileError(ValueError):
    """A pickle-based model file given to :func:`load` without ``trusted=True``."""

    def __init__(self, path: Any, detail: str) -> None:
        self.path = os.fspath(path)
        self.detail = detail
        super().__init__(
            f"Cannot load {self.path!r}: {detail}, and unpickling runs whatever code the file "
            "holds. If you trust where it comes from, load it with "
            "online_gmm.load(path, trusted=True) (command line: --trusted), then save it "
            "again: online_gmm.save writes the pickle-free format by default."
        )


class _FileRefused(ValueError):
    pass


# ---------------------------------------------------------------------- save
def save(
    model: Any,
    path: str | os.PathLike,
    *,
    compress: int | bool = 3,
    format: str = "npz",  # noqa: A002 - the name users write
) -> str:
    """Write ``model`` (a fitted or unfitted :class:`~online_gmm.OnlineGaussianMixture`) to
    ``path``, atomically; returns the path written.

    The default format is pickle-free (arrays and a JSON header in an ``.npz`` archive, see
    :mod:`online_gmm._persistence`): :func:`load` reads it without running any code from the
    file. It stores every parameter that is JSON, an array or a
    :class:`~online_gmm.PowerDecay`; a model with a user callable (``forgetting_rate``,
    ``anneal_schedule``) or of a subclass must be saved with ``format="pickle"``, and
    loading that file then needs ``load(path, trusted=True)``.

    The file appears under ``path`` only once it is complete and flushed to disk: an
    interrupted or failed save (Ctrl-C, SIGTERM, a full disk) leaves the previous file as it
    was and no temporary file behind.

    Parameters
    ----------
    model : OnlineGaussianMixture
    path : str or path-like
        Any name; the format is recorded in the file, not in its extension (``.npz`` or
        ``.joblib`` are usual).
    compress : int or bool, default=3
        zlib compression level (0 or False: none; True: zlib's default).
    format : {"npz", "pickle"}, default="npz"
        ``"npz"``: the pickle-free format 2. ``"pickle"``: the pickle-based format 1 of
        online-gmm 0.1.0 (joblib), for models the pickle-free format cannot hold.

    Returns
    -------
    str

    Raises
    ------
    TypeError
        If ``model`` is not an ``OnlineGaussianMixture``, or (``format="npz"``) holds a
        value the pickle-free format cannot store; the message names it and suggests
        ``format="pickle"``. Nothing is written then.
    OSError
        If the file cannot be written (naming ``path``, not the temporary file); the
        previous file is untouched.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from online_gmm import OnlineGaussianMixture, load, save
    >>> model = OnlineGaussianMixture(2, random_state=0).partial_fit(
    ...     np.random.default_rng(0).normal(size=(50, 3)))
    >>> with tempfile.TemporaryDirectory() as d:
    ...     path = save(model, os.path.join(d, "model.npz"))
    ...     loaded = load(path)  # no code from the file runs
    >>> bool(np.array_equal(loaded.means_, model.means_)), loaded.n_steps_
    (True, 1)
    """
    from ._estimator import OnlineGaussianMixture

    if not isinstance(model, OnlineGaussianMixture):
        raise TypeError(
            f"save() writes OnlineGaussianMixture models, got {type(model).__name__}."
        )
    if format not in FORMATS:
        raise ValueError(f"format must be one of {list(FORMATS)}, got {format!r}.")
    if isinstance(compress, bool):
        level = -1 if compress else 0
    elif isinstance(compress, int) and 0 <= compress <= 9:
        level = compress
    else:
        raise ValueError(f"compress must be a bool or an int in [0, 9], got {compress!r}.")
    from ._locks import update_lock

    # Everything that can fail on the model fails here, before the disk is touched; under
    # the model's update lock, so a partial_fit in another thread cannot interleave (steps
    # replace the state's arrays, never write into them: the snapshot stays whole).
    with update_lock(model):
        if format == "npz":
            members = _encode(model)
        else:
            payload = _pickle_payload(model)

    if format == "npz":

        def write(tmp: str) -> None:
            _write_npz(tmp, members, level)
    else:

        def write(tmp: str) -> None:
            import joblib

            joblib.dump(payload, tmp, compress=compress)

    return _write_atomically(os.fspath(path), write)


def check_savable(model: Any, format: str = "npz") -> None:  # noqa: A002
    """Raise the ``TypeError`` :func:`save` would raise for ``model`` in ``format`` (for
    callers that must know before doing any work, e.g. the command line)."""
    if format == "npz":
        _encode(model)


def _write_atomically(path: str, write) -> str:
    from ._writers import atomic_target

    try:
        with _signals_clean_up() as guard, atomic_target(path) as tmp:
            guard.arm()  # from here on a signal removes the temporary file
            write(tmp)
    except OSError as exc:
        if exc.errno is None or exc.filename == path:
            raise
        # name the target, not the temporary file next to it
        raise OSError(exc.errno, exc.strerror, path) from exc
    return path


class _Terminated(BaseException):
    """Raised by the temporary signal handler of :func:`_signals_clean_up`."""


class _SignalGuard:
    """The handler :func:`_signals_clean_up` installs: it records the signal, and raises
    :class:`_Terminated` once :meth:`arm` has been called (the temporary file exists and is
    in the hands of ``atomic_target``, which removes it on an exception)."""

    def __init__(self) -> None:
        self.armed = False
        self.received: list[int] = []

    def handler(self, signum, frame) -> None:
        self.received.append(signum)
        if self.armed:
            raise _Terminated(signum)

    def arm(self) -> None:
        self.armed = True
        if self.received:  # arrived while the temporary file was being created
            raise _Terminated(self.received[0])


@contextlib.contextmanager
def _signals_clean_up() -> Iterator[_SignalGuard]:
    """While saving, SIGTERM (and SIGHUP) raise an exception instead of killing the process
    at once, so that the temporary file is removed; the process then dies of the signal, as
    it would have. Only where the signal's disposition is the default one (an application's
    own handler is left alone) and in the main thread (the only one Python lets install
    handlers)."""
    guard = _SignalGuard()
    if threading.current_thread() is not threading.main_thread():
        yield guard
        return
    signums = [
        getattr(signal, name) for name in ("SIGTERM", "SIGHUP")
        if hasattr(signal, name) and signal.getsignal(getattr(signal, name)) is signal.SIG_DFL
    ]
    for signum in signums:
        signal.signal(signum, guard.handler)
    try:
        yield guard
    except _Terminated:
        pass  # atomic_target has removed the temporary file
    finally:
        guard.armed = False  # a signal from now on is only recorded ...
        for signum in signums:
            signal.signal(signum, signal.SIG_DFL)  # (this runs pending handlers first)
        if guard.received:  # ... and kills the process as it would have without the handler
            signal.raise_signal(guard.received[0])


def _pickle_payload(model: Any) -> dict:
    import joblib
    import numpy as np
    import sklearn

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
                if field is not None and not _same_array(attrs[name], getattr(state, field)):
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


# ---------------------------------------------------------------------- reading
def _refuse(path, saved_version, detail: str) -> ValueError:
    return _FileRefused(
        f"Cannot load {os.fspath(path)!r}: {detail} (saved by online-gmm {saved_version}; "
        f"this is online-gmm {__version__}, which reads file formats "
        f"{', '.join(map(str, READABLE_FORMATS))})."
    )


def _kind(path) -> str:
    """``"npz"``, ``"pickle"`` or ``"other"``, from the file's first bytes."""
    with open(path, "rb") as fh:
        start = fh.read(8)
    if start.startswith(_ZIP_MAGICS):
        return "npz"
    if start.startswith(_PICKLE_MAGICS):
        return "pickle"
    return "other"


def is_model_archive(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a pickle-free model file (a zip whose first member is the
    header), as opposed to e.g. an ``.npz`` of data; reads a few bytes, never raises."""
    import zipfile

    try:
        if _kind(path) != "npz":
            return False
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
        return bool(names) and names[0] == f"{_HEADER}.npy"
    except (OSError, zipfile.BadZipFile, ValueError, EOFError):
        return False


def read_header(path: str | os.PathLike) -> dict:
    """The header of a file written by :func:`save`, without unpickling or building the
    model: for the pickle-free format its JSON header (see :mod:`online_gmm._persistence`),
    for the pickle-based one the header keys (its opcodes are parsed, nothing is executed).

    Raises
    ------
    ValueError
        If the file is not such a file (a bare pickle of a model has no header).
    FileNotFoundError
        If there is no file.
    """
    kind = _kind(path)
    if kind == "npz":
        with _open_archive(path) as zf:
            return _read_json_header(zf, path)
    if kind == "pickle":
        return _pickle_header(path)
    raise _refuse(path, "unknown", "not an online-gmm model file")


def load(path: str | os.PathLike, *, trusted: bool = False) -> Any:
    """Read a model written by :func:`save`.

    A file in the pickle-free format (the default of :func:`save`) is read without running
    any code from it, and checked throughout before the model is built, so opening a model
    file of unknown origin is safe.

    .. warning::
       A pickle-based file (``save(..., format="pickle")``, every file of online-gmm 0.1.0,
       a bare ``joblib.dump`` or ``pickle.dump``) can execute arbitrary code when it is
       loaded. It is read only with ``trusted=True``: pass it only for files you trust
       (your own, or from a source you would run code from). Save such a model again to
       convert it to the pickle-free format.

    Parameters
    ----------
    path : str or path-like
    trusted : bool, default=False
        Also read pickle-based files (unpickling them).

    Returns
    -------
    OnlineGaussianMixture

    Raises
    ------
    UntrustedFileError
        (a ``ValueError``) If the file is pickle-based and ``trusted`` is False; nothing of
        it has been unpickled.
    ValueError
        If the file is not an online-gmm model, is damaged (truncated, altered), or was
        written in a file format this version cannot read (for instance by a newer
        online-gmm); the message names the file, the version that saved it and this version.
    FileNotFoundError
        If there is no file.
    """
    kind = _kind(path)
    if kind == "npz":
        return _load_npz(path)
    if not trusted:
        if kind == "pickle":
            raise UntrustedFileError(path, _describe_pickle(path))
        raise _refuse(path, "unknown", "not an online-gmm model file")
    return _load_pickle(path)


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


def _reason(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


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
        if not all(type(x) is int and x >= 0 for x in (size, restarts, n)) or n > size:
            raise self.fail(f"{where}: unreadable warm-up buffer")
        X = None if body.get("X") is None else self.value(body["X"], where)
        w = None if body.get("w") is None else self.value(body["w"], where)
        rows = (0 if X is None else X.shape[0], 0 if w is None else w.shape[0])
        if rows != (n, n) or (X is not None and (X.ndim != 2 or not np.isfinite(X).all())):
            raise self.fail(f"{where}: the warm-up buffer's rows do not match it")
        return Warmup(size=size, restarts=max(1, restarts), X=X, w=w, n_rows=n)

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


# ---------------------------------------------------------------------- format 1
def _load_pickle(path) -> Any:
    """The pickle-based formats (unpickles: only for trusted files)."""
    import joblib

    from ._estimator import OnlineGaussianMixture
    from ._stats import STATE_FIELDS

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
