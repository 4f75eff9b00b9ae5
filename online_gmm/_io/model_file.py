"""What every model-file format shares: the format versions, the magic string, the
errors, and the refusal message (:mod:`online_gmm._io.persistence`'s save and load, the
pickle-free format of :mod:`online_gmm._io.npz_format`, the pickle-based one of
:mod:`online_gmm._io.pickle_format`)."""

from __future__ import annotations

import os
from typing import Any

from .._version import __version__

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
#: The class a model file holds, as files name it (the module path of the first versions:
#: an identifier of the format, not where the class lives now).
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

class ModelFileError(ValueError):
    """A file that :func:`online_gmm.load` or :func:`online_gmm.read_header` refuses.

    The file is not an online-gmm model file, is damaged (truncated, altered, crafted), or
    was written in a file format this version cannot read (for instance by a newer
    online-gmm). The message is one line that names the file, the online-gmm version that
    saved it (when the file says) and this version. A ``ValueError``, so code that catches
    ``ValueError`` keeps working.

    Examples
    --------
    >>> import os, tempfile
    >>> import online_gmm
    >>> with tempfile.TemporaryDirectory() as d:
    ...     path = os.path.join(d, "notes.txt")
    ...     with open(path, "w") as fh:
    ...         _ = fh.write("not a model")
    ...     try:
    ...         online_gmm.load(path)
    ...     except online_gmm.ModelFileError as exc:
    ...         print(exc)
    Cannot load '...notes.txt': not an online-gmm model file (this is online-gmm ...).
    """


class UntrustedFileError(ModelFileError):
    """A pickle-based model file given to :func:`online_gmm.load` without ``trusted=True``.

    Unpickling runs whatever code the file holds, so :func:`online_gmm.load` reads such a
    file only when told ``trusted=True``; nothing of it has been unpickled when this is
    raised. ``path`` is the file, ``detail`` what it is (its format and the version that
    saved it, read without unpickling). A :class:`ModelFileError` (so a ``ValueError``).

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> import online_gmm
    >>> model = online_gmm.OnlineGaussianMixture(2, random_state=0).fit(
    ...     np.random.default_rng(0).normal(size=(40, 2)))
    >>> with tempfile.TemporaryDirectory() as d:
    ...     path = online_gmm.save(model, os.path.join(d, "model.joblib"), format="pickle")
    ...     try:
    ...         online_gmm.load(path)
    ...     except online_gmm.UntrustedFileError as exc:
    ...         print(exc.detail.split(",")[0])
    ...     loaded = online_gmm.load(path, trusted=True)  # your own file: trusted
    it is a pickle-based model file (format 1
    """

    def __init__(self, path: Any, detail: str) -> None:
        self.path = os.fspath(path)
        self.detail = detail
        super().__init__(
            f"Cannot load {self.path!r}: {detail}, and unpickling runs whatever code the file "
            "holds. If you trust where it comes from, load it with "
            "online_gmm.load(path, trusted=True) (command line: --trusted), then save it "
            "again: online_gmm.save writes the pickle-free format by default."
        )


class NotStorableError(TypeError):
    """What :func:`online_gmm.save`'s pickle-free format (the default) cannot store.

    Raised before anything is written, for a model that holds a value the format has no
    place for: a user callable ``forgetting_rate`` or ``anneal_schedule``, an attribute that
    is not the estimator's own, a state in another array library than NumPy, or a model of
    another class than :class:`~online_gmm.OnlineGaussianMixture` (an
    :class:`~online_gmm.OnlineBayesianGaussianMixture`, a subclass). ``what`` names the
    value. Such a model is saved with ``format="pickle"`` (and its file is then loaded with
    ``trusted=True``). A ``TypeError``.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> import online_gmm
    >>> X = np.random.default_rng(0).normal(size=(60, 2))
    >>> model = online_gmm.OnlineBayesianGaussianMixture(3, random_state=0).fit(X)
    >>> with tempfile.TemporaryDirectory() as d:
    ...     try:
    ...         online_gmm.save(model, os.path.join(d, "model.npz"))
    ...     except online_gmm.NotStorableError as exc:
    ...         print("not storable:", exc.what)
    ...     path = online_gmm.save(model, os.path.join(d, "model.joblib"), format="pickle")
    ...     print(type(online_gmm.load(path, trusted=True)).__name__)
    not storable: an OnlineBayesianGaussianMixture
    OnlineBayesianGaussianMixture
    """

    def __init__(self, message: str, what: str) -> None:
        super().__init__(message)
        self.what = what


#: The private names of earlier versions (kept: code that caught them still works).
_FileRefused = ModelFileError
_NotStorable = NotStorableError


# ---------------------------------------------------------------------- reading
def _refuse(path, saved_version, detail: str) -> ModelFileError:
    """The one-line refusal of ``path``; ``saved_version`` None (or "unknown") when the
    file does not say which online-gmm wrote it (then the message does not guess)."""
    saved = ("" if saved_version in (None, "unknown")
             else f"saved by online-gmm {saved_version}; ")
    return ModelFileError(
        f"Cannot load {os.fspath(path)!r}: {detail} ({saved}this is online-gmm {__version__}, "
        f"which reads model file formats {', '.join(map(str, READABLE_FORMATS))})."
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


def _reason(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


