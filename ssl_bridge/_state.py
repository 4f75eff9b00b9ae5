"""The bridge's state beyond the mixture, kept in module buffers: the warm-up's buffer
(exact through ``state_dict``; the seeding RNG's buffer is :mod:`ssl_bridge._random`'s).

The warm-up (the contract's "Warm-up", the core's :class:`online_gmm.core.Warmup`) is held
in three buffers of :class:`~ssl_bridge.GMMPrototypes`:

* ``warmup_rows`` (capacity, D), in the embeddings' dtype: the buffered (normalised) teacher
  rows, allocated at the first update and emptied to (0, D) once the warm-up is over;
* ``warmup_weights`` (capacity,): their weights;
* ``warmup_progress`` (5,) int64: ``[phase, size, limit, refining, n_rows]``, with phase
  :data:`NOT_STARTED`, :data:`BUFFERING` or :data:`DONE`.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from online_gmm import core

#: ``warmup_progress[0]``: before the first update, while rows are buffered, after.
NOT_STARTED, BUFFERING, DONE = 0, 1, 2
PROGRESS_FIELDS = ("phase", "size", "limit", "refining", "n_rows")
WARMUP_BUFFERS = ("warmup_rows", "warmup_weights")

def empty_warmup_buffers(dim: int) -> dict[str, Tensor]:
    """The warm-up buffers of a new module (nothing buffered, not started)."""
    return {
        "warmup_rows": torch.zeros((0, dim), dtype=torch.float32),
        "warmup_weights": torch.zeros((0,), dtype=torch.float32),
        "warmup_progress": torch.zeros(len(PROGRESS_FIELDS), dtype=torch.int64),
    }


def phase(progress: Tensor) -> int:
    return int(progress[0])


def warmup_of(module, x: Tensor, restarts: int, warmup_size) -> core.Warmup | None:
    """The warm-up to pass to :func:`online_gmm.core.advance` for the batch ``x`` (the
    prepared embeddings, on the module's device), or None when it is off or over. At the
    first update it starts (:func:`online_gmm.core.start_warmup`, sized for ``x``'s dtype);
    later it is read from the buffers, whose rows are views (the core writes new rows past
    ``n_rows`` only, so a failed step leaves the committed buffer as it was)."""
    progress = module.warmup_progress
    if phase(progress) == DONE:
        return None
    if phase(progress) == NOT_STARTED:
        # the restarts only: the refinement needs a stationary stream, and an encoder's
        # embeddings drift
        return core.start_warmup(warmup_size, restarts, module.n_prototypes, module.dim,
                                 x.element_size(), refine=False)
    _, size, limit, refining, n_rows = (int(v) for v in progress)
    return core.Warmup(size=size, restarts=restarts, X=core.host_view(module.warmup_rows),
                       w=core.host_view(module.warmup_weights), n_rows=n_rows, limit=limit,
                       refining=bool(refining))


def warmup_buffers_after(module, warmup: core.Warmup | None) -> dict[str, Tensor]:
    """The warm-up buffers after a step that had one (``info.warmup``), as new tensors for
    the commit: its buffer and marks, or an empty buffer and phase DONE once it is over."""
    dev = module.warmup_progress.device
    if warmup is None:
        return {
            "warmup_rows": torch.zeros((0, module.dim), dtype=module.warmup_rows.dtype,
                                       device=dev),
            "warmup_weights": torch.zeros((0,), dtype=module.warmup_weights.dtype, device=dev),
            "warmup_progress": torch.tensor([DONE, 0, 0, 0, 0], device=dev),
        }
    # (the core's arrays: views of these buffers, or new ones it allocated)
    rows, weights = (torch.from_numpy(a) if isinstance(a, np.ndarray) else a
                     for a in (warmup.X, warmup.w))
    progress = [BUFFERING, warmup.size, warmup.limit, int(warmup.refining), warmup.n_rows]
    return {"warmup_rows": rows, "warmup_weights": weights,
            "warmup_progress": torch.tensor(progress, device=dev)}


def discard_uncommitted(module) -> None:
    """After a failed step: zero the buffer's free space, where the step may have written
    rows (it is all zeros otherwise), so the module is bit-identical to before the step."""
    if phase(module.warmup_progress) == BUFFERING:
        n_rows = int(module.warmup_progress[4])
        module.warmup_rows[n_rows:] = 0
        module.warmup_weights[n_rows:] = 0
