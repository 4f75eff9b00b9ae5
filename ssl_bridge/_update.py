"""The pieces of one :meth:`GMMPrototypes.update <ssl_bridge.GMMPrototypes.update>`: the
rows screened, the core's step, the step's flags read once, the new buffers built.

A steady update (every prototype seeded, the warm-up over, no process group) reads the
device once: one small tensor ``[bad rows, state not finite, seed next step]``
(:func:`read_flags`). Everything the update needs on the host otherwise (the step number,
whether the warm-up runs, whether the next step seeds) is mirrored in :class:`HostState`,
valid for the ``step`` tensor it was made for, so that no update reads the device to know
it. The other updates (seeding, warm-up, ``torch.distributed``) read what they need.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from numbers import Integral, Real
from typing import Any

import numpy as np
import torch
from torch import Tensor

from online_gmm import core

from . import _random, _state

BALANCE = (None, "sinkhorn")


def check_target_options(temperature: Any, balance: Any, sinkhorn_iterations: Any) -> None:
    """The targets' options, checked on the host (no tensor is read)."""
    if not (isinstance(temperature, Real) and math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}.")
    if balance not in BALANCE:
        raise ValueError(f"balance must be one of {list(BALANCE)}, got {balance!r}.")
    if isinstance(sinkhorn_iterations, bool) or not isinstance(
        sinkhorn_iterations, Integral
    ) or sinkhorn_iterations < 0:
        raise ValueError(
            f"sinkhorn_iterations must be an integer >= 0, got {sinkhorn_iterations!r}."
        )


class DeferredFlag:
    """A 0-d device flag the host needs only at the next update (whether that step
    seeds), brought over without stalling the device: copied as soon as it is enqueued
    (``non_blocking``, into pinned memory on a GPU, an event recorded after the copy) and
    taken by :meth:`value` when the host needs it, by then normally long computed (a
    training step ran in between); :meth:`value` waits on the event only if the device is
    still behind. On CPU the copy is done at once. One per module, reused from step to
    step (its value is taken before the next step writes it)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self._host = torch.zeros((), dtype=torch.int64, pin_memory=device.type == "cuda")
        self._view = self._host.numpy()  # (the host memory, read without a tensor op)
        self._event = None

    def set(self, flag: Tensor) -> DeferredFlag:
        """Start bringing ``flag`` (0-d, on :attr:`device`) to the host."""
        self._host.copy_(flag, non_blocking=True)
        if flag.device.type == "cuda":
            self._event = torch.cuda.Event()
            self._event.record()
        return self

    def value(self) -> bool:
        """The flag (waits for its copy if the device has not reached it yet)."""
        if self._event is not None:
            if not self._event.query():  # (done already, normally: no wait at all)
                self._event.synchronize()
            self._event = None
        return bool(self._view[()])


@dataclass(frozen=True)
class HostState:
    """The module's state the host needs before a step, as of one ``step`` tensor."""

    step: int
    warming: bool  # the warm-up is not over
    # the next step seeds or reseeds (unseeded, dead or redundant prototypes): known from
    # the last step's flags (a DeferredFlag after a step under ``nonfinite="ignore"``, until
    # the host needs it), or None: not known (after a read of the buffers), the core asks
    seeding: bool | DeferredFlag | None
    has_prototypes: bool  # some prototype is seeded
    rng: Tensor  # the generator's state (host bytes, for the module's device)

    def after(self, *, warming: bool, seeding: bool | DeferredFlag | None, seeded_some: bool,
              rng: Tensor | None = None) -> HostState:
        return replace(self, step=self.step + 1, warming=warming, seeding=seeding,
                       has_prototypes=self.has_prototypes or seeded_some,
                       rng=self.rng if rng is None else rng)


#: The buffers whose in-place writes change what the host must know before a step.
_WATCHED = ("step", "seeded", "weights", "nu", "warmup_progress", "rng_state")


def buffers_key(module) -> tuple:
    """What :class:`HostState` is valid for: the watched buffers themselves and their
    version counters (host-side: reading them reads no device), so that a replaced buffer
    (a load, a move) or one written in place by hand is noticed. Compare with
    :func:`same_buffers`."""
    return tuple((b, b._version) for b in (module._buffers[n] for n in _WATCHED))


def same_buffers(key: tuple | None, module) -> bool:
    """Whether ``key`` (:func:`buffers_key`) still describes the module's buffers."""
    if key is None:
        return False
    return all(b is module._buffers[n] and b._version == v
               for n, (b, v) in zip(_WATCHED, key, strict=True))


def host_state_of(module) -> HostState:
    """Read the module's buffers (host reads: after a load, a move or a hand-written
    buffer, not per step)."""
    seeded = module.seeded
    return HostState(
        step=int(module.step),
        warming=_state.phase(module.warmup_progress) != _state.DONE,
        seeding=None,  # (not known: the first step after a read asks the core)
        has_prototypes=bool(seeded.any()),
        rng=_random.state_for(module.device, module.rng_state),
    )


def host_view(x: Tensor) -> Any:
    """:func:`online_gmm.core.host_view` (a CPU tensor as a NumPy view where the numba
    backend runs it), but the tensor itself while ``torch.compile`` traces: a graph runs
    the reference backend on tensors."""
    if torch.compiler.is_compiling():
        return x
    return core.host_view(x)


def finite_rows(x: Tensor) -> Tensor:
    """(B,) bool: the rows of ``x`` (B, D) without NaN or inf (on its device, nothing read)."""
    return torch.isfinite(x).all(dim=1)


def masked_rows(x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``(x, w, n_bad)`` without a host read: rows with NaN or inf replaced by zeros with
    weight 0 (the step ignores them), and their count as a 0-d device tensor."""
    bad = ~finite_rows(x)
    x = torch.where(bad[:, None], torch.zeros_like(x), x)
    return x, (~bad).to(x.dtype), bad.sum()


def read_flags(*flags: Any) -> list[int]:
    """The step's flags (0-d tensors or arrays, Python numbers) as host ints, in one read:
    the tensors are stacked on their device and brought to the host together."""
    tensors = [f for f in flags if isinstance(f, Tensor)]
    if not tensors:
        return [int(f) for f in flags]
    dev = tensors[0].device
    stacked = torch.stack([
        f.to(torch.int64) if isinstance(f, Tensor)
        else torch.tensor(int(np.asarray(f)), dtype=torch.int64, device=dev)
        for f in flags
    ])
    return stacked.tolist()


def as_tensor(a: Any, like: Tensor) -> Tensor:
    """A core array as a tensor on the buffers' device (NumPy results of the numba backend
    are wrapped, not copied)."""
    if isinstance(a, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(a))
    if isinstance(a, Tensor):
        return a
    return torch.as_tensor(a, device=like.device)


def new_buffers(module, state: core.MixtureState, *, n_rows: int, n_reseeded: int,
                rng: Tensor | None) -> dict[str, Tensor]:
    """Every buffer an update changes, as new tensors (none written in place): the commit
    swaps them in at once. ``rng``: the generator's new state (host bytes), copied to the
    device without blocking (from pinned memory on a GPU)."""
    new = {name: as_tensor(getattr(state, name), module.means)
           for name in core.STATE_FIELDS}
    new["step"] = module.step + 1
    new["n_samples_seen"] = module.n_samples_seen + n_rows
    new["n_reseeded"] = module.n_reseeded + n_reseeded
    if rng is not None:
        dev = module.rng_state.device
        if dev.type == "cuda":
            rng = rng.pin_memory()
        new["rng_state"] = rng.to(dev, non_blocking=True)
    return new


def targets_from(log_density: Tensor, temperature: float, balance: str | None,
                 sinkhorn_iterations: int, distributed: bool,
                 excluded: Tensor | None = None) -> Tensor:
    """Soft targets (B, K) from the weighted log-densities (B, K): ``softmax(l / T)``, or
    its Sinkhorn-Knopp balancing over the batch (the rule of ``GMMPrototypes.targets``).
    ``log_density`` is the caller's own and is consumed (divided in place: one (B, K)
    temporary fewer), unless it requires a gradient. ``excluded`` (B,) bool: rows left
    out of the balancing's column sums (their own rows are meaningless)."""
    from .balance import balanced

    if log_density.requires_grad:
        scaled = log_density / temperature
    elif balance is None and isinstance(L := host_view(log_density), np.ndarray):
        # on the host: the E-step's row kernel, in place (no denormal: torch's softmax
        # of log-densities that span thousands of nats makes many, and slows down)
        out = core.select_backend(L).soften(L, 1.0 / temperature)[0]
        return log_density if out is L else torch.from_numpy(out)
    else:
        scaled = log_density.div_(temperature)
    if balance is None:
        return torch.softmax(scaled, dim=1)
    # from the (tempered) log-posterior, so every sample enters the first column sums
    # with mass 1, whatever its likelihood (finite or -inf, a finite entry in every row:
    # no check needed)
    return balanced(torch.log_softmax(scaled, dim=1), int(sinkhorn_iterations), distributed,
                    excluded)


class LogDensityCapture:
    """The ``on_log_density`` of the core's E-step: keeps each chunk's weighted
    log-densities (B, K) for the targets of the same E-step."""

    def __init__(self, n_rows: int, n_components: int, out: Tensor | None = None) -> None:
        self.shape = (n_rows, n_components)
        self.out = out  # (allocated at the first chunk when not given)

    @property
    def array(self) -> Any:
        """``out`` as the array the core's E-step may write into directly (a NumPy view of
        a CPU tensor where the numba backend runs; ``core.Hooks``)."""
        return None if self.out is None else host_view(self.out)

    def __call__(self, rows: slice, logp: Any) -> None:
        if isinstance(logp, np.ndarray):
            if (self.out is not None and self.out.device.type == "cpu"
                    and logp.ctypes.data == self.out[rows].data_ptr()):
                return  # (written in place already)
            logp = torch.from_numpy(logp)
        if self.out is None:
            self.out = torch.empty(self.shape, dtype=logp.dtype, device=logp.device)
        self.out[rows] = logp


def steady_step(
    state: core.MixtureState,
    x: Tensor,
    *,
    config: core.EMConfig,
    temperature: float,
    forgetting_rate: float,
    redundancy: bool,
    normalize: bool = True,
    working_memory: float | None = None,
    log_density_out: Tensor | None = None,
) -> tuple[core.MixtureState, Tensor, Tensor]:
    """One steady online-EM step of :class:`~ssl_bridge.GMMPrototypes` on a batch, as a
    pure function of tensors that reads nothing on the host: the unit that
    :meth:`GMMPrototypes.compile_step <ssl_bridge.GMMPrototypes.compile_step>` compiles
    (one graph, ``torch.compile(fullgraph=True)``) and that ``update`` calls when every
    prototype is seeded and the warm-up is over.

    Rows with NaN or inf get weight 0 (counted in the flags: ``update`` then raises or
    warns as ``nonfinite`` says); the rows are L2-normalised with ``normalize``; the
    core's step (:func:`online_gmm.core.advance`, its checks deferred) runs without
    seeding; the new state's finiteness and whether the next step must seed are returned
    as flags, for the caller to read at once.

    Parameters
    ----------
    state : MixtureState
        The mixture (float64 tensors on one device), every component seeded.
    x : Tensor of shape (B, D)
        Teacher embeddings, float32 or float64, on the state's device.
    config : EMConfig
    temperature, forgetting_rate : float
        The step's EM temperature and forgetting rate (``torch.compile`` specialises on
        them: a schedule that changes them at every step recompiles until dynamo's
        limit, then runs eagerly).
    redundancy : bool
        Whether the *next* step checks for duplicate prototypes
        (:func:`online_gmm.core.redundancy_due`).
    normalize : bool, default=True
    working_memory : float or None
        MiB an E-step chunk may use (None: scikit-learn's ``working_memory``, which
        ``torch.compile`` cannot read inside the graph).
    log_density_out : Tensor of shape (B, K) or None
        Filled with the E-step's weighted log-densities (for the targets of this E-step).

    Returns
    -------
    new_state : MixtureState
    flags : Tensor of shape (3,), int64
        ``[rows with NaN or inf, new state not finite, next step seeds]``.
    mean_loglik : Tensor, 0-d float64
        The batch's mean log-likelihood before the step (NaN for no weight).
    """
    x, w, n_bad = masked_rows(x)
    if normalize:
        x = unit_rows(x)
    X, W = host_view(x), host_view(w)  # (NumPy views where numba runs them)
    backend = core.select_backend(X, defer_checks=True, working_memory=working_memory)
    hooks = core.NO_HOOKS
    if log_density_out is not None:
        capture = LogDensityCapture(*log_density_out.shape, out=log_density_out)
        hooks = core.Hooks(on_log_density=capture)
    schedules = core.Schedules(anneal_schedule="constant", temperature_init=temperature,
                               forgetting_rate=forgetting_rate)
    new_state, info = core.advance(state, X, W, config=config, schedules=schedules, step=0,
                                   rng=None, backend=backend, hooks=hooks, seeding=False)
    seed_next = core.seeding_flag(new_state, config, backend.xp, redundancy=redundancy)
    flags = torch.stack([n_bad.to(torch.int64), _flag(info.nonfinite, x),
                         _flag(seed_next, x)])
    return new_state, flags, mean_loglik(info.loglik, info.weight, x.device)


def _flag(value: Any, like: Tensor) -> Tensor:
    """A flag as a 0-d int64 tensor: a device flag as it is, a host one (the numba
    backend's, checked already) wrapped (a host value: no device read)."""
    if isinstance(value, Tensor):
        return value.to(torch.int64)
    return torch.tensor(int(bool(value)), dtype=torch.int64, device=like.device)


def mean_loglik(loglik: Any, weight: Any, device: torch.device) -> Tensor:
    """The mean log-likelihood ``loglik / weight`` as a 0-d float64 tensor on ``device``
    (NaN for no weight), computed where the sums are: no host read."""
    loglik, weight = (torch.as_tensor(v, dtype=torch.float64, device=device)
                      for v in (loglik, weight))
    return torch.where(weight > 0, loglik / torch.where(weight > 0, weight, 1.0),
                       torch.full_like(loglik, float("nan")))


def unit_rows(x: Tensor) -> Tensor:
    """Rows scaled to unit L2 norm without overflow: each row is first divided by its
    largest magnitude (exact up to rounding, and the direction is scale-free), so a float32
    row of 1e30 keeps its direction instead of becoming a zero vector (its norm, taken
    directly, overflows to inf). All-zero rows stay zero."""
    scale = x.detach().abs().amax(dim=1, keepdim=True)
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    return torch.nn.functional.normalize(x / scale, dim=1)
