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


def _reason(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


