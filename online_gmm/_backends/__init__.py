"""The backend choice: the one place, and the one rule, that decide which implementation of
the backend operations runs.

The rule: host NumPy arrays run on :class:`~online_gmm._backends.numba_backend.NumbaBackend` (numba
kernels and BLAS); every other namespace (PyTorch on CPU or CUDA, CuPy, array-api-strict)
on :class:`~online_gmm._backends.reference.ReferenceBackend`, the array-API code on the data's own
device. :func:`use_backend` overrides the rule (tests run NumPy through the reference to
compare the two), and :func:`host_view` applies it to the bridge's tensors: a CPU tensor is
viewed as a NumPy array (no copy) exactly when that array would run on the numba backend.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

import array_api_compat

from .numba_backend import NumbaBackend
from .protocol import Backend
from .reference import ReferenceBackend

BACKENDS = ("numba", "reference")
#: The backend :func:`use_backend` forces NumPy arrays onto (None: the rule). A context
#: variable: each thread (and each asyncio task) has its own.
_forced: ContextVar[str | None] = ContextVar("online_gmm_backend", default=None)
_numba = None


def select_backend(*arrays: Any, defer_checks: bool = False,
                   working_memory: float | None = None) -> Backend:
    """The backend for ``arrays`` (all of one namespace): numba for NumPy, else reference.

    Parameters
    ----------
    *arrays : array
        The data (and any state arrays) a computation will use.
    defer_checks : bool, default=False
        For the reference backend: check nothing that reads device data on the host (see
        :class:`~online_gmm._backends.reference.ReferenceBackend`); the numba backend, on
        the host already, checks as it goes.
    working_memory : float or None, default=None
        For the reference backend: MiB an E-step chunk may use (None: scikit-learn's
        ``working_memory``).

    Returns
    -------
    backend : Backend
        A :class:`~online_gmm._backends.reference.ReferenceBackend` or
        :class:`~online_gmm._backends.numba_backend.NumbaBackend`; its ``xp`` attribute is
        the arrays' namespace.

    Examples
    --------
    >>> import numpy as np
    >>> from online_gmm.core import select_backend
    >>> select_backend(np.zeros((2, 3))).name
    'numba'
    """
    xp = array_api_compat.array_namespace(*arrays)
    if array_api_compat.is_numpy_namespace(xp) and _numba_allowed():
        global _numba
        if _numba is None or _numba.xp is not xp:
            _numba = NumbaBackend(xp)
        return _numba
    return ReferenceBackend(xp, defer_checks=defer_checks, working_memory=working_memory)


def _numba_allowed() -> bool:
    return _forced.get() in (None, "numba")


def host_view(x: Any) -> Any:
    """A CPU torch tensor as a NumPy view when NumPy runs on the numba backend; else ``x``
    (a CUDA tensor stays on its device, for the reference backend)."""
    if _numba_allowed() and array_api_compat.is_torch_array(x) and x.device.type == "cpu":
        return x.numpy()
    return x


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[None]:
    """Within the block, NumPy arrays run on backend ``name`` ("numba" or "reference"), in
    this thread (or task) only: other threads keep theirs.

    Examples
    --------
    >>> import numpy as np
    >>> from online_gmm.core import select_backend, use_backend
    >>> with use_backend("reference"):
    ...     select_backend(np.zeros(3)).name
    'reference'
    """
    if name not in BACKENDS:
        raise ValueError(f"backend must be one of {list(BACKENDS)}, got {name!r}.")
    token = _forced.set(name)
    try:
        yield
    finally:
        _forced.reset(token)
