"""One lock per model: updates (``partial_fit``, ``fit``, the Dask steps) of one estimator
serialise, so two threads feeding one model lose no batch; predictions take no lock (each
step publishes its attributes in one ``dict.update``).

The locks live outside the estimators (a ``WeakKeyDictionary``), so ``__dict__``, pickles,
``clone`` and ``copy.deepcopy`` see nothing of them. An unhashable estimator (a subclass
defining ``__eq__``) shares one lock with every other such estimator.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

_locks: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_guard = threading.Lock()
_unhashable = threading.RLock()


def update_lock(model: Any) -> Any:
    """The re-entrant lock that serialises ``model``'s updates."""
    try:
        lock = _locks.get(model)
    except TypeError:
        return _unhashable
    if lock is None:
        with _guard:
            lock = _locks.setdefault(model, threading.RLock())
    return lock
