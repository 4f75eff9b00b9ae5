"""Decoupled prototypes: the means of an online Gaussian mixture over teacher embeddings.

The mixture is updated by online EM *outside* the encoder's gradient and hands the encoder
its posterior as soft targets; the student is scored against the (fixed) prototypes. The math
is the core's: :func:`online_gmm.core.advance` runs on the embeddings' own device (the
numba backend for CPU tensors, the array-API reference backend on CUDA).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Sequence
from numbers import Integral
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from online_gmm import core
from online_gmm.diagnostics import collapse_report

from . import _checkpoint, _distributed, _random, _state, _update
from ._update_paths import UpdatePaths

__all__ = ["GMMPrototypes"]

_STATE_FIELDS = core.STATE_FIELDS
#: The bridge's own parameters (those it shares with the estimator are checked against the
#: core's table, :data:`online_gmm.core.PARAMETERS`).
_OWN_CONSTRAINTS = {
    "n_prototypes": [core.Interval(Integral, 1, None, closed="left")],
    "dim": [core.Interval(Integral, 1, None, closed="left")],
    "normalize": ["boolean"],
    "nonfinite": [core.StrOptions({"raise", "skip", "ignore"})],
    "distributed": ["boolean", None],
    "random_state": [core.Interval(Integral, 0, 2**32 - 1, closed="both"), None],
}
class GMMPrototypes(UpdatePaths, nn.Module):
    """K prototypes fitted apart from the encoder loss, by online EM over teacher embeddings.

    The mixture state lives in buffers (so ``state_dict`` checkpoints it exactly and
    ``.to(device)`` moves it; it stays float64 whatever ``.to(dtype)`` asks) and never
    receives gradients.

    Parameters
    ----------
    n_prototypes : int
        Number of prototypes (mixture components) K.
    dim : int
        Embedding dimension D.
    covariance_type : {"spherical", "diag", "full", "tied"}, default="spherical"
        Covariance shape of the mixture, as :class:`online_gmm.OnlineGaussianMixture`'s
        (``spherical`` by default here: one variance per prototype).
    forgetting : {"responsibility", "uniform"}, default="responsibility"
        How old evidence is discounted, as :class:`online_gmm.OnlineGaussianMixture`'s.
    forgetting_rate : float or callable, default=1e-4
        eta: a prototype remembers about ``1 / eta`` of its own samples, and the mixing
        weights about ``1 / eta`` samples in all. SSL embeddings drift as the encoder learns,
        so the default forgets; but the weights need a memory of many samples per prototype,
        or prototypes that miss a few batches fall below ``dead_threshold`` and are reseeded
        (measured, K=1024, batches of 256: eta=1e-3 reseeds 11 prototypes per step, 1e-4
        0.3; see docs/ssl.md). Keep ``eta`` well below ``1 / K``-ish rates for large K.
    temperature_init : float, default=1.0
        E-step temperature at the first update, as :class:`online_gmm.OnlineGaussianMixture`'s.
    temperature_final : float, default=1.0
        E-step temperature after ``anneal_steps`` updates.
    anneal_steps : int, default=0
        Updates over which the temperature moves from ``temperature_init`` to
        ``temperature_final``.
    anneal_schedule : str or callable, default="exponential"
        Path of the temperature: ``"exponential"``, ``"constant"``, ``"linear"`` or
        ``"cosine"``, or a callable ``step -> temperature``.
    seed_mass : float, default=1.0
        Evidence (pseudo-count) a freshly seeded prototype starts with.
    dead_threshold : float, default=1e-3
        A prototype whose weight falls below ``dead_threshold / n_prototypes`` is reseeded.
    max_reseed : int or None, default=None
        At most this many dead prototypes are reseeded per update (None: as many as the
        batch has rows).
    reg_covar : float, default=1e-6
        Added to the diagonal of every covariance.
    init_params : {"k-means++", "kmeans", "random", "random_from_data"}, default="k-means++"
        How the first batch seeds the prototypes, as
        :class:`online_gmm.OnlineGaussianMixture`'s.
    warmup_size : int or "auto", default="auto"
        The warm-up, as :class:`online_gmm.OnlineGaussianMixture`'s: the first
        ``warmup_size`` teacher rows ("auto": 64 per prototype, at most 32,768) are buffered
        while the ordinary step runs; on the full buffer the mixture is replaced by the best
        of ``warmup_restarts`` restarts (k-means++, Lloyd, batch EM) on those rows, and the
        stream goes on from it (the restarts only: no refinement, which needs a stationary
        stream). 0: no warm-up (the earlier behaviour). Measured in docs/ssl.md
        ("Usage"): at K = 1024 on embeddings that do not move (a frozen encoder), the
        posterior uses 687 prototypes with it and 40 without; in SSL training, where the
        encoder moves the embeddings, it is neutral. One-off cost: the restarts on the
        buffer (about 19 s at K = 1024, D = 16 on 2 CPU cores). The buffer is part of
        ``state_dict`` until the warm-up is over (then emptied).
    warmup_restarts : int, default=3
        Restarts of the warm-up; the one of highest log-likelihood on the buffer is kept.
    normalize : bool, default=True
        L2-normalise embeddings (teacher and student) before use, as DINO-style heads do.
    nonfinite : {"raise", "skip", "ignore"}, default="raise"
        Rows with NaN or inf: raise a ``ValueError`` (the state is untouched), or drop them
        with a warning, or (``"ignore"``: the checks off) drop them silently, and discard
        silently a step whose state would not be finite (it still counts in ``step``):
        decided on the device, so a steady update reads nothing from it. Under DDP every
        rank takes the same decision.
    distributed : bool or None, default=None
        Merge the batch statistics over ``torch.distributed`` ranks (None: when initialised).
    random_state : int or None, default=0
        Seeds the seeding's ``torch.Generator``, which draws on the module's device; its
        state is a buffer (``rng_state``), so a resume on the same kind of device is exact.
        A move to another kind of device (or a checkpoint from one) seeds the new device's
        generator from the old state, deterministically (CPU and CUDA generators draw
        different streams from one seed). None: seeded from the system's entropy.

    Examples
    --------
    >>> import torch
    >>> from ssl_bridge import GMMPrototypes
    >>> head = GMMPrototypes(n_prototypes=8, dim=4)
    >>> teacher = torch.randn(32, 4)
    >>> _ = head.update(teacher)
    >>> q = head.targets(teacher, temperature=0.5)
    >>> q.shape, bool(torch.allclose(q.sum(dim=1), torch.ones(32)))
    (torch.Size([32, 8]), True)
    >>> student = torch.randn(32, 4, requires_grad=True)
    >>> head(student).shape  # the student's cosine logits, head.logits(student)
    torch.Size([32, 8])
    """

    def __init__(
        self,
        n_prototypes: int,
        dim: int,
        *,
        covariance_type: str = "spherical",
        forgetting: str = "responsibility",
        forgetting_rate: float | Callable[[int], float] = 1e-4,
        temperature_init: float = 1.0,
        temperature_final: float = 1.0,
        anneal_steps: int = 0,
        anneal_schedule: str | Callable[[int], float] = "exponential",
        seed_mass: float = 1.0,
        dead_threshold: float = 1e-3,
        max_reseed: int | None = None,
        reg_covar: float = 1e-6,
        init_params: str = "k-means++",
        warmup_size: int | str = "auto",
        warmup_restarts: int = 3,
        normalize: bool = True,
        nonfinite: str = "raise",
        distributed: bool | None = None,
        random_state: int = 0,
    ) -> None:
        super().__init__()
        given = locals()  # every argument, checked against the core's table and our own
        core.validate({name: given[name] for name in (*core.SHARED_WITH_BRIDGE,
                                                      *_OWN_CONSTRAINTS)},
                      type(self).__name__, extra=_OWN_CONSTRAINTS)
        self.n_prototypes, self.dim = int(n_prototypes), int(dim)
        self.config = core.EMConfig(
            n_components=self.n_prototypes,
            covariance_type=covariance_type,
            reg_covar=float(reg_covar),
            forgetting=forgetting,
            seed_mass=float(seed_mass),
            dead_threshold=float(dead_threshold),
            max_reseed=None if max_reseed is None else int(max_reseed),
            init_params=init_params,
        )
        self.forgetting_rate = forgetting_rate
        self.schedule = dict(
            schedule=anneal_schedule, temperature_init=float(temperature_init),
            temperature_final=float(temperature_final), anneal_steps=int(anneal_steps),
        )
        self.warmup_size = warmup_size if warmup_size == "auto" else int(warmup_size)
        self.warmup_restarts = int(warmup_restarts)
        self.normalize = bool(normalize)
        self.nonfinite = nonfinite
        self.distributed = distributed
        state = core.empty_state(self.n_prototypes, self.dim, covariance_type, np, "cpu")
        for name in _STATE_FIELDS:
            self.register_buffer(name, torch.from_numpy(np.array(getattr(state, name))))
        self.register_buffer("step", torch.zeros((), dtype=torch.int64))
        self.register_buffer("n_samples_seen", torch.zeros((), dtype=torch.int64))
        self.register_buffer("n_reseeded", torch.zeros((), dtype=torch.int64))
        rng = _random.generator_state(torch.device("cpu"), random_state)
        self.register_buffer("rng_state", rng)  # (the generator's state: see _random)
        for name, value in _state.empty_warmup_buffers(self.dim).items():
            self.register_buffer(name, value)
        # the host's view of the buffers (step, phases, whether any prototype is seeded),
        # valid for the ``step`` tensor it names: an update, the student path and
        # torch.compile read it without a device sync
        self._host_view = (None, _update.HostState(0, True, True, False, rng.clone()))
        self._lock = threading.RLock()  # one update, load or snapshot at a time
        self._compiled = None  # the compiled steady step (:meth:`compile_step`)
        self._seed_flag = _update.DeferredFlag(self.device)  # (nonfinite="ignore"'s)

    def __getstate__(self):  # (a lock is not picklable: copies get their own)
        state = super().__getstate__() if hasattr(super(), "__getstate__") else dict(
            self.__dict__)
        state = dict(state)
        state.pop("_lock", None)
        state.pop("_seed_flag", None)  # (pinned memory and an event: copies make their own)
        key, host = state["_host_view"]
        if isinstance(host.seeding, _update.DeferredFlag):
            state["_host_view"] = (key, dataclasses.replace(host, seeding=host.seeding.value()))
        state["_compiled"] = None  # (compile again after a copy)
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        self._lock = threading.RLock()
        self._seed_flag = _update.DeferredFlag(self.device)

    # ------------------------------------------------------------------ plumbing
    def _apply(self, fn, *args, **kwargs):  # keep the float64 state through .to(dtype)
        before = {n: b for n, b in self._buffers.items() if b is not None}
        out = super()._apply(fn, *args, **kwargs)
        for n, b in list(self._buffers.items()):
            if b is not None and b.dtype != before[n].dtype:
                self._buffers[n] = before[n].to(device=b.device)
        self._refresh_host()  # (new tensors: read them now, not in a compiled call)
        self._deferred_flag()  # (a new device's, now: not during an update)
        return out

    @property
    def device(self) -> torch.device:
        return self.means.device

    def _schedules(self) -> core.Schedules:
        """The step-dependent parameters, read at every step (``forgetting_rate`` and
        ``schedule`` may be changed between steps)."""
        s = self.schedule
        return core.Schedules(
            anneal_schedule=s["schedule"], temperature_init=s["temperature_init"],
            temperature_final=s["temperature_final"], anneal_steps=s["anneal_steps"],
            forgetting_rate=self.forgetting_rate,
        )

    def _use_distributed(self) -> bool:
        return _distributed.is_active() if self.distributed is None else bool(self.distributed)

    def _state(self, buffers: dict | None = None) -> core.MixtureState:
        """The buffers (or a snapshot of them, ``dict(self._buffers)``, taken at once) as a
        state: NumPy views of CPU buffers where the numba backend runs them
        (:func:`online_gmm.core.host_view`), the tensors themselves elsewhere."""
        buffers = self._buffers if buffers is None else buffers
        return core.MixtureState(**{n: _update.host_view(buffers[n]) for n in _STATE_FIELDS})

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        with self._lock:  # (every buffer of one step, not of two)
            super()._save_to_state_dict(destination, prefix, keep_vars)

    def _prepare_input(self, x: Tensor, what: str) -> Tensor:
        return self._normalized(self._checked_input(x, what))

    def _normalized(self, x: Tensor) -> Tensor:
        return _update.unit_rows(x) if self.normalize else x

    def _checked_input(self, x: Tensor, what: str) -> Tensor:
        if not isinstance(x, Tensor):
            raise TypeError(f"{what} must be a torch.Tensor, got {type(x).__name__}.")
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(
                f"{what} must have shape (batch, {self.dim}), got {tuple(x.shape)}."
            )
        if not x.is_floating_point():
            raise ValueError(f"{what} must be floating point, got {x.dtype}.")
        if x.device != self.device:
            raise ValueError(
                f"{what} is on {x.device} but the prototypes are on {self.device}; "
                "move the module with .to(device)."
            )
        if x.dtype in (torch.float16, torch.bfloat16):
            x = x.float()  # the mixture's arithmetic needs float32 at least
        return x

    # ------------------------------------------------------------------ the three verbs
    def _full_precision(self):
        """Autocast off on the module's device: the mixture's own arithmetic (``update``,
        ``targets``, ``logits(kind="gaussian")``) runs in float32 at least, whatever
        precision the surrounding training step autocasts to (bfloat16 log-densities of
        hundreds lose every digit of the posterior)."""
        return torch.autocast(device_type=self.device.type, enabled=False)

    @torch.no_grad()
    def update(
        self,
        teacher_embeddings: Tensor,
        *,
        return_targets: bool = False,
        temperature: float = 1.0,
        balance: str | None = None,
        sinkhorn_iterations: int = 3,
    ) -> dict[str, Any] | tuple[dict[str, Any], Tensor]:
        """One online-EM step on a batch of teacher embeddings (no gradient).

        Seeds the prototypes at the first call (and reseeds dead or duplicate ones later),
        runs the E-step at the step's EM temperature and folds the batch into the state
        with forgetting: the same step as
        :meth:`online_gmm.OnlineGaussianMixture.partial_fit`. Thread-safe (a lock per
        module) and all or nothing: if it raises, or is interrupted (Ctrl-C), the module
        is exactly as before the call; otherwise every buffer is swapped for its new value
        at once.

        A steady update (every prototype seeded, the warm-up over, no process group)
        reads the device once, for its checks (bad rows, a non-finite state, whether the
        next step reseeds): on a GPU it synchronises once per call. Under
        ``nonfinite="ignore"`` it reads nothing: the checks act on the device, and whether
        the next step reseeds is copied without blocking and taken at the next call.

        Parameters
        ----------
        teacher_embeddings : Tensor of shape (B, D)
            Any floating dtype (float16/bfloat16 are computed in float32); on the module's
            device. Under DDP each rank passes its own batch.
        return_targets : bool, default=False
            Also return the soft targets of this batch from this step's own E-step (the
            posterior under the parameters before the step, as :meth:`targets` would give
            it if called just before): a training step then runs one E-step, not two.
        temperature, balance, sinkhorn_iterations
            As :meth:`targets`'s, for ``return_targets=True``.

        Returns
        -------
        info : dict
            ``loglik`` (mean log-likelihood of the batch before the step: a 0-d tensor on
            the module's device, so that returning it reads nothing; ``float(...)`` reads
            it), ``temperature``, ``forgetting_rate``, ``n_seeded``, ``n_reseeded``,
            ``n_skipped``, ``updated`` (False for an empty batch, or one whose every row
            was skipped: a no-op, the step counter included; under ``nonfinite="ignore"``
            also for a discarded step, which counts in ``step``). Under ``"ignore"`` a
            steady update's ``n_skipped`` and ``updated`` are 0-d device tensors (reading
            them is the caller's choice).
        targets : Tensor of shape (B, K)
            With ``return_targets=True`` only: ``(info, targets)``; as :meth:`targets`'s
            (skipped rows get NaN rows; an empty update gets ``targets(...)``'s answer or
            an error before the first update).

        Raises
        ------
        ValueError
            NaN or inf rows under ``nonfinite="raise"``; a bad shape, dtype or device.
        FloatingPointError
            The step would make the state non-finite (data whose scale overflows float
            arithmetic): nothing was changed.

        Examples
        --------
        >>> import torch
        >>> from ssl_bridge import GMMPrototypes
        >>> _ = torch.manual_seed(0)
        >>> head = GMMPrototypes(n_prototypes=4, dim=8, warmup_size=0)
        >>> info = head.update(torch.randn(64, 8))
        >>> info["n_seeded"], info["updated"], int(head.step)
        (4, True, 1)
        >>> teacher = torch.randn(64, 8)
        >>> info, q = head.update(teacher, return_targets=True, temperature=0.5)
        >>> q.shape, bool(torch.allclose(q.sum(dim=1), torch.ones(64)))
        (torch.Size([64, 4]), True)
        """
        if return_targets:
            _update.check_target_options(temperature, balance, sinkhorn_iterations)
        with self._lock, self._full_precision():
            return self._update(teacher_embeddings, return_targets, temperature, balance,
                                sinkhorn_iterations)

    def compile_step(self, **compile_options: Any) -> GMMPrototypes:
        """Compile the steady update with ``torch.compile(fullgraph=True)`` (not
        ``forward``: ``torch.compile(head)`` or torch's ``head.compile()`` do that): the unit is
        :func:`ssl_bridge.steady_step` (the E-step, the M-step, the checks and the
        reseeding test of an update with every prototype seeded and the warm-up over), one
        graph for every covariance type; :meth:`update` then calls it (its lock, its one
        read of the flags and its commit stay eager). Used where the reference backend runs
        (CUDA tensors; CPU tensors under ``online_gmm.core.use_backend("reference")``): on
        CPU the numba kernels run the step already. The values equal the eager step's to
        float rounding. ``torch.compile`` specialises on the step's temperature and
        forgetting rate: constant schedules compile once.

        Parameters
        ----------
        **compile_options
            Passed to :func:`torch.compile` (``mode``, ``dynamic``, ``backend``...);
            ``fullgraph=True`` is set.

        Returns
        -------
        self : GMMPrototypes

        Examples
        --------
        >>> import torch
        >>> from ssl_bridge import GMMPrototypes
        >>> head = GMMPrototypes(n_prototypes=8, dim=4).compile_step()
        >>> _ = head.update(torch.randn(32, 4))
        """
        self._compiled = torch.compile(_update.steady_step, fullgraph=True,
                                       **compile_options)
        return self

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        """All or nothing: every key, shape, range and value of the checkpoint is checked
        (:func:`ssl_bridge._checkpoint.checked_buffers`) before any buffer changes; then
        every buffer is swapped for its loaded value at once. A refused checkpoint (another
        K, D or covariance type, a missing or unexpected key under ``strict``, a warm-up
        progress beyond this module's, a NaN) leaves the module exactly as it was; so does
        one with a missing buffer under ``strict=False`` (the mixture is one unit: the
        missing keys are reported, nothing is loaded). A checkpoint from before the warm-up
        existed loads with the warm-up over (and one from before the generator, with it
        seeded from the NumPy state it holds)."""
        _checkpoint.load(self, state_dict, prefix, strict, missing_keys, unexpected_keys,
                         error_msgs)

    @torch.no_grad()
    def targets(
        self,
        teacher_embeddings: Tensor,
        temperature: float = 1.0,
        balance: str | None = None,
        *,
        sinkhorn_iterations: int = 3,
    ) -> Tensor:
        """Soft assignment targets: the mixture's posterior, sharpened and optionally balanced.

        With ``l[b, k] = log pi_k + log N(x_b | mu_k, Sigma_k)``: ``balance=None`` gives
        ``softmax(l / temperature)`` (``temperature=1`` is the plain posterior, smaller is
        sharper; separate from the EM temperature); ``balance="sinkhorn"`` gives
        :func:`ssl_bridge.balance.sinkhorn_knopp` of ``l / temperature``, the posterior
        rebalanced over the batch so that every prototype gets an equal share of it (what
        DINOv2 and SwAV do to their teacher instead of DINO's centring).

        The posterior is already sharp: for the default spherical mixture over normalised
        embeddings, ``l`` is ``cos(x, mu_k) * |mu_k| / sigma_k^2`` plus a per-prototype
        offset, so ``temperature=T`` acts like a DINO teacher temperature of
        ``T * sigma_k^2 / |mu_k|`` (about 0.03 at ``T=1`` on the synthetic example of
        docs/ssl.md, where ``T=0.04`` gives mean entropy 0.015 nats: nearly one-hot).
        ``temperature=1`` is the DINO-like choice; see docs/ssl.md, "Temperatures and
        balancing". To train an encoder, balance: with the plain posterior as its target
        the encoder gathers its embeddings on the prototypes that already have weight
        (docs/ssl.md, digits, K = 1024, 3 seeds: 106 prototypes used, 97.8 % unique;
        balanced, 286 and 99.2 %), as DINO's teacher would without its centring.

        Parameters
        ----------
        teacher_embeddings : Tensor of shape (B, D)
            Any floating dtype (float16/bfloat16 are computed in float32); on the module's
            device. Under DDP each rank passes its own batch.
        temperature : float, default=1.0
            Divides the log-posterior before the softmax (or the balancing); > 0.
        balance : {None, "sinkhorn"}, default=None
            ``"sinkhorn"``: balance the columns by Sinkhorn-Knopp over the batch, over every
            rank's batch under DDP (the module's ``distributed`` setting; every rank must
            then call ``targets``).
        sinkhorn_iterations : int, default=3
            Sinkhorn-Knopp iterations (DINOv2's default); used with ``balance="sinkhorn"``.

        Returns
        -------
        targets : Tensor of shape (B, K)
            Rows sum to 1; float32 (float64 for float64 input), under ``torch.autocast``
            too; no gradient.

        Raises
        ------
        ValueError
            A bad ``temperature``, ``balance`` or ``sinkhorn_iterations``; a bad shape,
            dtype or device of the embeddings.
        RuntimeError
            Before the first :meth:`update`.

        Examples
        --------
        >>> import torch
        >>> from ssl_bridge import GMMPrototypes
        >>> _ = torch.manual_seed(0)
        >>> head = GMMPrototypes(n_prototypes=4, dim=8)
        >>> teacher = torch.randn(64, 8)
        >>> _ = head.update(teacher)
        >>> head.targets(teacher).sum(dim=0)  # each prototype's share of the batch
        tensor([10.4998, 16.6476, 19.5866, 17.2659])
        >>> q = head.targets(teacher, balance="sinkhorn", sinkhorn_iterations=20)
        >>> q.shape, bool(torch.allclose(q.sum(dim=1), torch.ones(64)))
        (torch.Size([64, 4]), True)
        >>> q.sum(dim=0).round(decimals=2)  # balanced: B / K = 16 each
        tensor([16., 16., 16., 16.])
        """
        _update.check_target_options(temperature, balance, sinkhorn_iterations)
        self._require_seeded()
        x = self._prepare_input(teacher_embeddings, "teacher_embeddings").detach()
        X = _update.host_view(x)
        backend = core.select_backend(X, working_memory=self._working_memory(x))
        with self._full_precision():
            p = core.state_prepared(self._state(dict(self._buffers)),  # (one step's buffers)
                                    self.config.covariance_type, X.dtype,
                                    backend.xp)
            logp = core.weighted_log_density(X, p, backend)
            logp = torch.from_numpy(logp) if isinstance(logp, np.ndarray) else logp
            return _update.targets_from(logp, temperature, balance, sinkhorn_iterations,
                                        self._use_distributed())

    def forward(self, student_embeddings: Tensor) -> Tensor:
        """The student's cosine logits: ``head(student)`` as with DINO's ``DINOHead``.

        ``logits(student_embeddings)`` with the default ``kind="cosine"``:
        ``<z / |z|, mu_k / |mu_k|>``, what DINO's weight-normalised last layer computes
        (``norm_last_layer=True``), against prototypes that are the mixture's means and get
        no gradient. Feed them to the loss with DINO's student temperature, e.g.
        ``losses.cross_view_cross_entropy(logits, targets, student_temperature=0.1)``.

        Parameters
        ----------
        student_embeddings : Tensor of shape (B, D)

        Returns
        -------
        logits : Tensor of shape (B, K)
            As :meth:`logits` (its dtype rules, under ``torch.autocast`` too). Compiles
            with ``torch.compile`` in one graph (``fullgraph=True``), once the module has
            prototypes.

        Examples
        --------
        >>> import torch
        >>> from ssl_bridge import GMMPrototypes
        >>> head = GMMPrototypes(n_prototypes=8, dim=4)
        >>> _ = head.update(torch.randn(32, 4))
        >>> student = torch.randn(5, 4, requires_grad=True)
        >>> logits = head(student)
        >>> logits.shape, bool(torch.equal(logits, head.logits(student)))
        (torch.Size([5, 8]), True)
        >>> logits.sum().backward()  # the gradient reaches the student, not the prototypes
        >>> student.grad.shape, head.means.grad
        (torch.Size([5, 4]), None)
        """
        return self.logits(student_embeddings)

    def logits(self, student_embeddings: Tensor, kind: str = "cosine") -> Tensor:
        """The student's scores against the fixed prototypes; gradients reach the student only.

        Parameters
        ----------
        student_embeddings : Tensor of shape (B, D)
        kind : {"cosine", "gaussian"}, default="cosine"
            ``cosine``: ``<z / |z|, mu_k / |mu_k|>`` (what :meth:`forward` returns).
            ``gaussian``: the mixture's weighted log-density
            ``log pi_k + log N(z | mu_k, Sigma_k)``.

        Returns
        -------
        logits : Tensor of shape (B, K)
            In the student's dtype (float32 for float16/bfloat16). Under ``torch.autocast``
            the ``cosine`` product follows the autocast dtype, as a linear layer's would
            (bfloat16 under ``torch.autocast("cpu", dtype=torch.bfloat16)``; a float64
            student stays float64, which autocast does not cast); ``gaussian`` logits are
            computed with autocast off (float32 at least). Both compile with
            ``torch.compile``: ``cosine`` in one graph, ``gaussian`` with graph breaks in
            the core's array-API code.

        Examples
        --------
        >>> import torch
        >>> from ssl_bridge import GMMPrototypes
        >>> head = GMMPrototypes(n_prototypes=8, dim=4)
        >>> _ = head.update(torch.randn(32, 4))
        >>> student = torch.randn(5, 4)
        >>> with torch.autocast("cpu", dtype=torch.bfloat16):
        ...     cos, gauss = head.logits(student), head.logits(student, kind="gaussian")
        >>> cos.dtype, gauss.dtype
        (torch.bfloat16, torch.float32)
        """
        if kind not in ("cosine", "gaussian"):
            raise ValueError(f"kind must be one of ['cosine', 'gaussian'], got {kind!r}.")
        self._require_seeded()
        z = self._prepare_input(student_embeddings, "student_embeddings")
        if kind == "cosine":
            protos = F.normalize(self.means.to(z.dtype), dim=1)
            return z @ protos.T
        # the reference backend on the tensors themselves, so gradients reach the student
        backend = core.select_backend(z)
        buffers = dict(self._buffers)  # (one step's buffers, not two)
        state = core.MixtureState(**{n: buffers[n] for n in _STATE_FIELDS})
        with self._full_precision():
            p = core.state_prepared(state, self.config.covariance_type, z.dtype, backend.xp)
            return core.weighted_log_density(z, p, backend)

    def _require_seeded(self) -> None:
        if not self._host().has_prototypes:
            raise RuntimeError("GMMPrototypes has no prototypes yet: call update() first.")

    # ------------------------------------------------------------------ views
    @property
    def prototypes(self) -> Tensor:
        """(K, D) the prototype vectors: the mixture means (float64, detached)."""
        return self.means.detach()

    def collapse_report(self, eps: Sequence[float] = (0.025, 0.1, 0.25, 0.5)) -> dict:
        """How collapsed the prototypes are: :func:`online_gmm.diagnostics.collapse_report`
        of the means and weights (a read of the state to the host).

        Parameters
        ----------
        eps : sequence of float, default=(0.025, 0.1, 0.25, 0.5)
            Distances (between unit-normalised prototypes) under which two count as one.

        Returns
        -------
        report : dict
            As :func:`online_gmm.diagnostics.collapse_report`'s.

        Examples
        --------
        >>> import torch
        >>> from ssl_bridge import GMMPrototypes
        >>> _ = torch.manual_seed(0)
        >>> head = GMMPrototypes(n_prototypes=8, dim=4, warmup_size=0)
        >>> _ = head.update(torch.randn(256, 4))
        >>> report = head.collapse_report()
        >>> unique = report["unique"]  # prototypes apart, at each distance
        >>> report["n_prototypes"], unique[0.025]
        (8, 8)
        """
        return collapse_report(
            self.means.detach().cpu().numpy(), self.weights.detach().cpu().numpy(), eps=eps
        )

    def extra_repr(self) -> str:
        return (
            f"n_prototypes={self.n_prototypes}, dim={self.dim}, "
            f"covariance_type={self.config.covariance_type!r}, "
            f"forgetting_rate={self.forgetting_rate!r}"
        )


