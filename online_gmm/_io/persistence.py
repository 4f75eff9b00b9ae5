"""Saving and loading fitted models: a pickle-free file format, and the pickle-based one.

``save(model, path)`` writes the **pickle-free format** (format version 2) by default: loading
it runs no code from the file, so a model file from anywhere can be opened. ``save(model,
path, format="pickle")`` writes the pickle-based format 1 of online-gmm 0.1.0, which stores
anything (a custom callable ``forgetting_rate`` or ``anneal_schedule``, a subclass) but whose
loading executes whatever code the file holds: :func:`load` reads it only when told
``trusted=True``. Which format a file holds is read from its first bytes, not from its name.

Writing is atomic whatever the format: the file is written under a temporary name in the
target's directory, flushed to disk and renamed over the target
(:func:`online_gmm._io.writers.atomic_target`), so an interrupted or failed save (Ctrl-C,
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
member's CRC; each array member's ``.npy`` header (dtype and shape) against where it is
referenced, before any of its data is read (the state's fields by ``n_components``,
``n_features_in_`` and ``covariance_type``, the initial parameters likewise, the warm-up's
rows by its ``n_rows`` within :data:`online_gmm._em.warmup.MAX_BUFFER_BYTES`, a random
generator's words), so a file cannot make it allocate more than its declared parameters
need; each member referenced once; the attributes: only the estimator's own
(:data:`online_gmm._io.npz_decode.ATTRIBUTES`), each of its type; the parameters (the
estimator's own validation); the state: finite, weights a distribution (non-negative,
summing to 1), masses non-negative, variances and precision factors positive and the
factors those of the covariances; a warm-up buffer: restarts in ``[1, warmup_restarts]``,
its size within the cap, rows ``n_rows x n_features_in_`` of float32/float64, finite, and
weights 1-D, positive and finite; user initial parameters pending only with a valid
``means_init``. Anything else is a one-line ``ValueError`` naming the file. :func:`save`
runs the same checks on what it is about to write (a ``ValueError``, nothing written).

The warm-up's buffer (``attr._warmup.X``, ``attr._warmup.w``: raw training rows) is
written only with ``save(..., include_warmup_buffer=True)``; by default ``_warmup`` is
stored as ``null`` (the file's warm-up is over), in both formats.

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

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported where used: ``import online_gmm`` stays quick
    pass

from .model_file import (  # (FORMAT_VERSION ... are part of this module's API)
    _HEADER,
    FORMAT_VERSION,
    FORMATS,
    PICKLE_FORMAT_VERSION,
    READABLE_FORMATS,
    ModelFileError,
    NotStorableError,
    UntrustedFileError,
    _kind,
    _refuse,
)
from .npz_format import (
    _encode,
    _load_npz,
    _open_archive,
    _read_json_header,
    _write_npz,
)
from .pickle_format import _describe_pickle, _load_pickle, _pickle_header, _pickle_payload
from .signals import signals_clean_up

__all__ = [
    "FORMAT_VERSION",
    "PICKLE_FORMAT_VERSION",
    "READABLE_FORMATS",
    "ModelFileError",
    "NotStorableError",
    "UntrustedFileError",
    "check_savable",
    "is_model_archive",
    "load",
    "read_header",
    "save",
]

# ---------------------------------------------------------------------- save
def save(
    model: Any,
    path: str | os.PathLike,
    *,
    compress: int | bool = 3,
    format: str = "npz",  # noqa: A002 - the name users write
    include_warmup_buffer: bool = False,
) -> str:
    """Write ``model`` (a fitted or unfitted :class:`~online_gmm.OnlineGaussianMixture`) to
    ``path``, atomically; returns the path written.

    The default format is pickle-free (arrays and a JSON header in an ``.npz`` archive, see
    docs/user-guide.md, "Saving and loading models"): :func:`load` reads it without running
    any code from the file. It stores an :class:`~online_gmm.OnlineGaussianMixture` with every
    parameter that is JSON, an array or a :class:`~online_gmm.PowerDecay`. It does not store
    an :class:`~online_gmm.OnlineBayesianGaussianMixture`, a subclass, or a model with a user
    callable (``forgetting_rate``, ``anneal_schedule``): :func:`save` raises
    :class:`~online_gmm.NotStorableError` for those, and they are saved with
    ``format="pickle"`` (loading that file then needs ``load(path, trusted=True)``).

    **What the file contains**: the parameters, the bookkeeping, the random generator and
    the mixture's state (its parameters and sufficient statistics: a summary of the data),
    and **no training row** by default. While the warm-up buffers the start of a stream
    (``warmup_size``, up to 32,768 rows with "auto"), its buffer holds raw rows: it is
    written only with ``include_warmup_buffer=True``. Without it the file's warm-up is over:
    the loaded model predicts exactly as ``model`` does now, and its later
    :meth:`~online_gmm.OnlineGaussianMixture.partial_fit` calls are ordinary online-EM steps
    (no restarts or refinements on the buffer). ``model`` itself is not changed.

    The file appears under ``path`` only once it is complete and flushed to disk: an
    interrupted or failed save (Ctrl-C, SIGTERM, a full disk) leaves the previous file as it
    was and no temporary file behind.

    Parameters
    ----------
    model : OnlineGaussianMixture or OnlineBayesianGaussianMixture
        Fitted or not. An ``OnlineBayesianGaussianMixture`` needs ``format="pickle"``.
    path : str or os.PathLike
        Any name; the format is recorded in the file, not in its extension (``.npz`` or
        ``.joblib`` are usual).
    compress : int or bool, default=3
        zlib compression level (0 or False: none; True: zlib's default).
    format : {"npz", "pickle"}, default="npz"
        ``"npz"``: the pickle-free format 2. ``"pickle"``: the pickle-based format 1 of
        online-gmm 0.1.0 (joblib), for models the pickle-free format cannot hold.
    include_warmup_buffer : bool, default=False
        Also store the warm-up's buffer (raw training rows), so that the loaded model
        resumes the warm-up exactly (bit-identical to an uninterrupted stream). The file
        then contains training data. Same rule for both formats.

    Returns
    -------
    path : str
        The path written.

    Raises
    ------
    NotStorableError
        (a ``TypeError``) With ``format="npz"``, if ``model`` holds what the pickle-free
        format cannot store: it is an ``OnlineBayesianGaussianMixture`` or a subclass, or
        holds a callable or an attribute that is not the estimator's own. The message names
        it and suggests ``format="pickle"``. Nothing is written then.
    TypeError
        If ``model`` is not an online-gmm estimator.
    ValueError
        If the model is one :func:`load` would refuse (for instance ``n_components`` or
        ``covariance_type`` changed by ``set_params`` after fitting); nothing is written.
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
    from .._estimators.gaussian import OnlineGaussianMixture

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
    from .._estimators.locks import update_lock

    # Everything that can fail on the model fails here, before the disk is touched; under
    # the model's update lock, so a partial_fit in another thread cannot interleave (steps
    # replace the state's arrays, never write into them: the snapshot stays whole).
    with update_lock(model):
        if format == "npz":
            members = _encode(model, include_warmup_buffer)
        else:
            payload = _pickle_payload(model, include_warmup_buffer)

    if format == "npz":

        def write(tmp: str) -> None:
            _write_npz(tmp, members, level)
    else:

        def write(tmp: str) -> None:
            import joblib

            joblib.dump(payload, tmp, compress=compress)

    return _write_atomically(os.fspath(path), write)


def check_savable(model: Any, format: str = "npz") -> None:  # noqa: A002
    """Raise the :class:`NotStorableError` :func:`save` would raise for ``model`` in
    ``format`` (for callers that must know before doing any work, e.g. the command line)."""
    if format == "npz":
        _encode(model)


def _write_atomically(path: str, write) -> str:
    from .writers import atomic_target

    try:
        with signals_clean_up() as guard, atomic_target(path) as tmp:
            guard.arm()  # from here on a signal removes the temporary file
            write(tmp)
    except OSError as exc:
        if exc.errno is None or exc.filename == path:
            raise
        # name the target, not the temporary file next to it
        raise OSError(exc.errno, exc.strerror, path) from exc
    return path


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
    """The header of a file written by :func:`save`, without unpickling or building the model.

    For the pickle-free format its JSON header, for the pickle-based one the header keys
    (its opcodes are parsed, nothing is executed): ``magic``, ``format_version``,
    ``online_gmm_version``, ``sklearn_version``, ``numpy_version``, ``class``, and for the
    pickle-free format ``params``, ``fitted`` and the rest (docs/user-guide.md, "Saving and
    loading models").

    Parameters
    ----------
    path : str or os.PathLike
        A file written by :func:`save` (either format).

    Returns
    -------
    header : dict
        The header, as JSON types.

    Raises
    ------
    ModelFileError
        (a ``ValueError``) If the file is not such a file (a bare pickle of a model has no
        header) or is damaged.
    FileNotFoundError
        If there is no file.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from online_gmm import OnlineGaussianMixture, read_header, save
    >>> model = OnlineGaussianMixture(2, random_state=0).fit(
    ...     np.random.default_rng(0).normal(size=(40, 2)))
    >>> with tempfile.TemporaryDirectory() as d:
    ...     header = read_header(save(model, os.path.join(d, "model.npz")))
    >>> header["format_version"], header["params"]["n_components"], header["fitted"]
    (2, 2, True)
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
    file of unknown origin is safe: every array's header (shape, dtype) is checked against
    the declared parameters before its data is read (a small file cannot make ``load``
    allocate more than such a model needs), each array is read once, only the estimator's
    own attributes are accepted, each of its type, and the state must be one that predicts
    and samples (finite, weights a distribution, positive variances, precision factors
    consistent with the covariances); a stored warm-up buffer must fit the model
    (docs/user-guide.md, "Saving and loading models"). A file holds no training row unless
    it was saved with ``include_warmup_buffer=True``.

    Parameters
    ----------
    path : str or os.PathLike
        A file written by :func:`save`.
    trusted : bool, default=False
        Also read pickle-based files (unpickling them).

    Returns
    -------
    model : OnlineGaussianMixture
        The saved model, bit for bit (an ``OnlineBayesianGaussianMixture`` or a subclass
        from a trusted pickle-based file).

    Raises
    ------
    UntrustedFileError
        (a :class:`ModelFileError`) If the file is pickle-based and ``trusted`` is False;
        nothing of it has been unpickled.
    ModelFileError
        (a ``ValueError``) If the file is not an online-gmm model, is damaged (truncated,
        altered), or was written in a file format this version cannot read (for instance
        by a newer online-gmm); the message names the file, the version that saved it and
        this version.
    FileNotFoundError
        If there is no file.

    Warnings
    --------
    A pickle-based file (``save(..., format="pickle")``, every file of online-gmm 0.1.0, a
    bare ``joblib.dump`` or ``pickle.dump``) can execute arbitrary code when it is loaded.
    It is read only with ``trusted=True``: pass it only for files you trust (your own, or
    from a source you would run code from). Save such a model again to convert it to the
    pickle-free format.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from online_gmm import OnlineGaussianMixture, load, save
    >>> X = np.random.default_rng(0).normal(size=(40, 2))
    >>> model = OnlineGaussianMixture(2, random_state=0).fit(X)
    >>> with tempfile.TemporaryDirectory() as d:
    ...     loaded = load(save(model, os.path.join(d, "model.npz")))
    >>> bool((loaded.predict(X) == model.predict(X)).all())
    True
    """
    kind = _kind(path)
    if kind == "npz":
        return _load_npz(path)
    if not trusted:
        if kind == "pickle":
            raise UntrustedFileError(path, _describe_pickle(path))
        raise _refuse(path, "unknown", "not an online-gmm model file")
    return _load_pickle(path)

