"""Saving and loading fitted models with a versioned header.

``save(model, path)`` writes a joblib file holding a small header (a magic string, the file
format version, the online-gmm, scikit-learn and NumPy versions that wrote it, the class
name) and the model, itself serialised with joblib *inside* the payload. ``load(path)``
reads the header first, with nothing of online-gmm's own classes involved, so a file written
by an incompatible version is refused with a clear message instead of an obscure unpickling
error; only then is the model itself unpickled.

Format versions:

- ``1`` (online-gmm 0.1.0): the header keys below and ``model``: ``joblib.dump`` bytes of an
  :class:`~online_gmm.OnlineGaussianMixture`.

Bump :data:`FORMAT_VERSION` whenever a saved model of the previous format would no longer
unpickle into a working model (a renamed or removed state field, a changed moment layout),
and teach :func:`load` to migrate the old format, or list it as unreadable.

Joblib files are pickles: load only files you trust.
"""

from __future__ import annotations

import io
import os
from typing import Any

import joblib

from ._version import __version__

#: Version of the file layout written by :func:`save`.
FORMAT_VERSION = 1
#: Formats :func:`load` can read.
READABLE_FORMATS = (1,)

_MAGIC = "online-gmm model"
# What a model's ``_state`` must hold to be usable by this version (MixtureState fields).
_STATE_FIELDS = (
    "weights", "means", "covariances", "precisions_cholesky", "mass", "nu", "moment",
    "tied_mass", "seeded",
)


def save(model: Any, path: str | os.PathLike, *, compress: int | bool = 3) -> str:
    """Write ``model`` (a fitted or unfitted :class:`~online_gmm.OnlineGaussianMixture`) to
    ``path`` with a versioned header; returns the path written.

    Parameters
    ----------
    model : OnlineGaussianMixture
    path : str or path-like
    compress : int or bool, default=3
        joblib's zlib compression level.
    """
    from ._estimator import OnlineGaussianMixture

    if not isinstance(model, OnlineGaussianMixture):
        raise TypeError(
            f"save() writes OnlineGaussianMixture models, got {type(model).__name__}."
        )
    import numpy as np
    import sklearn

    buf = io.BytesIO()
    joblib.dump(model, buf)
    payload = {
        "magic": _MAGIC,
        "format_version": FORMAT_VERSION,
        "online_gmm_version": __version__,
        "sklearn_version": sklearn.__version__,
        "numpy_version": np.__version__,
        "class": f"{type(model).__module__}.{type(model).__qualname__}",
        "model": buf.getvalue(),
    }
    joblib.dump(payload, path, compress=compress)
    return os.fspath(path)


def _refuse(path, saved_version, detail: str) -> ValueError:
    return ValueError(
        f"Cannot load {os.fspath(path)!r}: {detail} (saved by online-gmm {saved_version}; "
        f"this is online-gmm {__version__}, which reads file formats "
        f"{', '.join(map(str, READABLE_FORMATS))})."
    )


def read_header(path: str | os.PathLike) -> dict:
    """The header of a file written by :func:`save` (everything but the model), without
    unpickling the model; ``ValueError`` if the file is not such a file."""
    payload = _read_payload(path)
    return {k: v for k, v in payload.items() if k not in ("model", "model_object")}


def _read_payload(path) -> dict:
    try:
        payload = joblib.load(path)
    except FileNotFoundError:
        raise
    except Exception as exc:
        raise _refuse(
            path, "unknown", f"not a joblib file ({type(exc).__name__}: {exc})"
        ) from exc
    if not isinstance(payload, dict) or payload.get("magic") != _MAGIC:
        from ._estimator import OnlineGaussianMixture

        if isinstance(payload, OnlineGaussianMixture):
            # A bare joblib.dump / pickle of the estimator: no header to check.
            saved = getattr(payload, "_online_gmm_version", "unknown")
            return {"magic": None, "online_gmm_version": saved, "model_object": payload}
        raise _refuse(
            path, "unknown",
            f"it holds a {type(payload).__name__}, not an online-gmm model written by "
            "online_gmm.save()",
        )
    return payload


def load(path: str | os.PathLike) -> Any:
    """Read a model written by :func:`save` (or a bare ``joblib.dump`` of one).

    Raises
    ------
    ValueError
        If the file is not an online-gmm model, or was written in a file format this
        version cannot read (for instance by a newer online-gmm); the message names the
        file, the version that saved it and this version.
    """
    from ._estimator import OnlineGaussianMixture

    payload = _read_payload(path)
    saved = payload.get("online_gmm_version", "unknown")
    if "model_object" in payload:
        model = payload["model_object"]
    else:
        fmt = payload.get("format_version")
        if fmt not in READABLE_FORMATS:
            newer = isinstance(fmt, int) and fmt > FORMAT_VERSION
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
        missing = [f for f in _STATE_FIELDS if not hasattr(state, f)]
        if missing:
            raise _refuse(path, saved, f"the model's state lacks {missing}")
    return model
