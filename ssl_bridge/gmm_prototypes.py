"""Decoupled prototypes: the means of an online Gaussian mixture over teacher embeddings.

The mixture is updated by online EM *outside* the encoder's gradient and hands the encoder
its posterior as soft targets; the student is scored against the (fixed) prototypes. The math
is the core's: :func:`online_gmm.core.advance` runs on the embeddings' own device (the
numba backend for CPU tensors, the array-API reference backend on CUDA).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from numbers import Integral
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from online_gmm import core
from online_gmm.diagnostics import collapse_report

from . import _distributed, _state
from .balance import sinkhorn_knopp

__all__ = ["GMMPrototypes"]

_STATE_FIELDS = core.STATE_FIELDS
#: The bridge's own parameters (those it shares with the estimator are checked against the
#: core's table, :data:`online_gmm.core.PARAMETERS`).
_OWN_CONSTRAINTS = {
    "n_prototypes": [core.Interval(Integral, 1, None, closed="left")],
    "dim": [core.Interval(Integral, 1, None, closed="left")],
    "normalize": ["boolean"],
    "nonfinite": [core.StrOptions({"raise", "skip"})],
    "distributed": ["boolean", None],
    "random_state": [core.Interval(Integral, 0, 2**32 - 1, closed="both"), None],
}
_BALANCE = (None, "sinkhorn")


def _unit_rows(x: Tensor) -> Tensor:
    """Rows scaled to unit L2 norm without overflow: each row is first divided by its
    largest magnitude (exact up to rounding, and the direction is scale-free), so a float32
    row of 1e30 keeps its direction instead of becoming a zero vector (its norm, taken
    directly, overflows to inf). All-zero rows stay zero."""
    scale = x.detach().abs().amax(dim=1, keepdim=True)
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    return F.normalize(x / scale, dim=1)


class GMMPrototypes(nn.Module):
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
    nonfinite : {"raise", "skip"}, default="raise"
        Rows with NaN or inf: raise a ``ValueError`` (the state is untouched), or drop them
        with a warning. Under DDP every rank takes the same decision.
    distributed : bool or None, default=None
        Merge the batch statistics over ``torch.distributed`` ranks (None: when initialised).
    random_state : int, default=0
        Seeds the seeding; its state is a buffer, so resumes are exact.

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
        self.register_buffer("rng_state",
                             _state.rng_to_tensor(np.random.RandomState(random_state)))
        for name, value in _state.empty_warmup_buffers(self.dim).items():
            self.register_buffer(name, value)
        # whether ``seeded.any()``, kept on the host: the student path reads it without a
        # device sync and without a graph break under torch.compile
        self._has_prototypes = False
        # whether the warm-up is not over (``warmup_progress``'s phase), on the host: an
        # update reads it without a device sync
        self._warming = True

    # ------------------------------------------------------------------ plumbing
    def _apply(self, fn, *args, **kwargs):  # keep the float64 state through .to(dtype)
        before = {n: b for n, b in self._buffers.items() if b is not None}
        out = super()._apply(fn, *args, **kwargs)
        for n, b in list(self._buffers.items()):
            if b is not None and b.dtype != before[n].dtype:
                self._buffers[n] = before[n].to(device=b.device)
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

    def _state(self) -> core.MixtureState:
        """The buffers as a state: NumPy views of CPU buffers where the numba backend runs
        them (:func:`online_gmm.core.host_view`), the tensors themselves elsewhere."""
        return core.MixtureState(**{n: core.host_view(getattr(self, n)) for n in _STATE_FIELDS})

    def _commit(self, state: core.MixtureState) -> None:
        for name in _STATE_FIELDS:
            new = getattr(state, name)
            if isinstance(new, np.ndarray):
                new = torch.from_numpy(np.ascontiguousarray(new))
            getattr(self, name).copy_(new)

    def _prepare_input(self, x: Tensor, what: str) -> Tensor:
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
        return _unit_rows(x) if self.normalize else x

    # ------------------------------------------------------------------ the three verbs
    def _full_precision(self):
        """Autocast off on the module's device: the mixture's own arithmetic (``update``,
        ``targets``, ``logits(kind="gaussian")``) runs in float32 at least, whatever
        precision the surrounding training step autocasts to (bfloat16 log-densities of
        hundreds lose every digit of the posterior)."""
        return torch.autocast(device_type=self.device.type, enabled=False)

    @torch.no_grad()
    def update(self, teacher_embeddings: Tensor) -> dict[str, Any]:
        """One online-EM step on a batch of teacher embeddings (no gradient).

        Parameters
        ----------
        teacher_embeddings : Tensor of shape (B, D)
            Any floating dtype (float16/bfloat16 are computed in float32); on the module's
            device. Under DDP each rank passes its own batch.

        Returns
        -------
        info : dict
            ``loglik`` (mean log-likelihood of the batch before the step), ``temperature``,
            ``forgetting_rate``, ``n_seeded``, ``n_reseeded``, ``n_skipped``, ``updated``
            (False for an empty batch, or one whose every row was skipped: a no-op, the
            step counter included).

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
        >>> head = GMMPrototypes(n_prototypes=8, dim=4)
        >>> info = head.update(torch.randn(32, 4))  # once per training step
        >>> info["updated"], info["n_seeded"], int(head.step)
        (True, 8, 1)
        """
        with self._full_precision():
            return self._update(teacher_embeddings)

    def _update(self, teacher_embeddings: Tensor) -> dict[str, Any]:
        # (the step itself; its docstring is update's)
        if not isinstance(teacher_embeddings, Tensor):
            raise TypeError(
                "teacher_embeddings must be a torch.Tensor, got "
                f"{type(teacher_embeddings).__name__}."
            )
        x = teacher_embeddings.detach()
        if x.ndim == 2 and x.is_floating_point():
            bad = ~torch.isfinite(x).all(dim=1)
            n_bad = int(bad.sum())
        else:
            bad, n_bad = None, 0
        dist_on = self._use_distributed()
        any_bad = _distributed.any_rank(n_bad > 0) if dist_on else n_bad > 0
        if any_bad and self.nonfinite == "raise":
            raise ValueError(
                "teacher_embeddings contain NaN or inf"
                + (f" in {n_bad} rows" if n_bad else " on another rank")
                + "; the prototypes were not updated (pass nonfinite='skip' to drop such rows)."
            )
        if n_bad:
            warnings.warn(
                f"GMMPrototypes.update skipped {n_bad} of {x.shape[0]} rows with NaN or inf.",
                RuntimeWarning,
                stacklevel=2,
            )
            x = x[~bad]
        if x.ndim == 2 and x.shape[0] == 0 and not dist_on:
            return self._no_update(n_bad)
        x = self._prepare_input(x, "teacher_embeddings")
        X = core.host_view(x)
        backend = core.select_backend(X)
        xp = backend.xp
        rng = _state.rng_from_tensor(self.rng_state)
        w = xp.ones(X.shape[0], dtype=X.dtype, device=self.device if X is x else "cpu")
        hooks = core.NO_HOOKS
        if dist_on:
            ct = self.config.covariance_type
            hooks = core.Hooks(
                gather=_distributed.gather_batch,
                reduce=lambda s: _distributed.reduce_stats(s, ct, xp),
            )
        warming = self._warming
        warmup = (_state.warmup_of(self, x, self.warmup_restarts, self.warmup_size)
                  if warming else None)
        try:
            new_state, info = core.advance(
                self._state(), X, w, config=self.config, schedules=self._schedules(),
                step=int(self.step), rng=rng, backend=backend, hooks=hooks, warmup=warmup,
            )
        except BaseException:
            _state.discard_uncommitted(self)
            raise
        self._commit(new_state)
        if warming:
            _state.commit_warmup(self, info.warmup)
            self._warming = info.warmup is not None
        # seeded components stay seeded (reseeding re-seeds them): no read of the buffer
        self._has_prototypes = self._has_prototypes or info.n_seeded > 0
        self.rng_state.copy_(_state.rng_to_tensor(rng))
        self.step += 1
        self.n_samples_seen += info.n_samples
        self.n_reseeded += info.n_reseeded
        return {
            "loglik": info.loglik / info.weight if info.weight > 0 else float("nan"),
            "temperature": info.temperature,
            "forgetting_rate": info.forgetting_rate,
            "n_seeded": info.n_seeded,
            "n_reseeded": info.n_reseeded,
            "n_skipped": n_bad,
            "updated": True,
        }

    def _no_update(self, n_skipped: int) -> dict[str, Any]:
        """The answer to an empty (or all-skipped) batch: nothing changes, and it says so."""
        step = int(self.step)
        return {
            "loglik": float("nan"),
            "temperature": self._schedules().temperature_at(step),
            "forgetting_rate": self._schedules().forgetting_rate_at(step),
            "n_seeded": 0,
            "n_reseeded": 0,
            "n_skipped": n_skipped,
            "updated": False,
        }

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        """All or nothing: every buffer of the checkpoint is checked against this module's
        (shape, the float64 state) before any is copied, so a refused checkpoint (another K,
        D or covariance type) leaves the module exactly as it was."""
        problems = _state.check_warmup_checkpoint(state_dict, prefix, self.dim)
        for name, own in self._buffers.items():
            key = prefix + name
            if own is None or key not in state_dict or name in _state.WARMUP_BUFFERS:
                continue
            value = state_dict[key]
            if not isinstance(value, Tensor) or tuple(value.shape) != tuple(own.shape):
                shape = tuple(value.shape) if isinstance(value, Tensor) else type(value)
                problems.append(f"{key}: {shape} in the checkpoint, {tuple(own.shape)} here")
        if problems:
            error_msgs.append(
                "GMMPrototypes was not changed: the checkpoint does not fit (another "
                "n_prototypes, dim or covariance_type?): " + "; ".join(problems)
            )
            return
        _state.resize_warmup_buffers(self, state_dict, prefix)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict,
                                      missing_keys, unexpected_keys, error_msgs)
        self._has_prototypes = bool(self.seeded.any())
        self._warming = _state.phase(self.warmup_progress) != _state.DONE

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
        tensor([20.3023, 14.7508, 13.1766, 15.7702])
        >>> q = head.targets(teacher, balance="sinkhorn", sinkhorn_iterations=20)
        >>> q.shape, bool(torch.allclose(q.sum(dim=1), torch.ones(64)))
        (torch.Size([64, 4]), True)
        >>> q.sum(dim=0).round(decimals=2)  # balanced: B / K = 16 each
        tensor([16., 16., 16., 16.])
        """
        if not (np.isfinite(temperature) and temperature > 0):
            raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}.")
        if balance not in _BALANCE:
            raise ValueError(f"balance must be one of {list(_BALANCE)}, got {balance!r}.")
        if isinstance(sinkhorn_iterations, bool) or not isinstance(
            sinkhorn_iterations, Integral
        ) or sinkhorn_iterations < 0:
            raise ValueError(
                f"sinkhorn_iterations must be an integer >= 0, got {sinkhorn_iterations!r}."
            )
        self._require_seeded()
        x = self._prepare_input(teacher_embeddings, "teacher_embeddings").detach()
        X = core.host_view(x)
        backend = core.select_backend(X)
        with self._full_precision():
            p = core.state_prepared(self._state(), self.config.covariance_type, X.dtype,
                                    backend.xp)
            logp = core.weighted_log_density(X, p, backend)
            logp = torch.from_numpy(logp) if isinstance(logp, np.ndarray) else logp
            if balance is None:
                return torch.softmax(logp / temperature, dim=1)
            # from the (tempered) log-posterior, so every sample enters the first column
            # sums with mass 1, whatever its likelihood
            return sinkhorn_knopp(torch.log_softmax(logp / temperature, dim=1),
                                  int(sinkhorn_iterations),
                                  distributed=self._use_distributed())

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
        state = core.MixtureState(**{n: getattr(self, n) for n in _STATE_FIELDS})
        with self._full_precision():
            p = core.state_prepared(state, self.config.covariance_type, z.dtype, backend.xp)
            return core.weighted_log_density(z, p, backend)

    def _require_seeded(self) -> None:
        if self._has_prototypes:
            return
        if not bool(self.seeded.any()):  # (buffers written by hand: read them)
            raise RuntimeError("GMMPrototypes has no prototypes yet: call update() first.")
        self._has_prototypes = True

    # ------------------------------------------------------------------ views
    @property
    def prototypes(self) -> Tensor:
        """(K, D) the prototype vectors: the mixture means (float64, detached)."""
        return self.means.detach()

    def collapse_report(self, eps: Sequence[float] = (0.025, 0.1, 0.25, 0.5)) -> dict:
        """:func:`online_gmm.diagnostics.collapse_report` of the prototypes and weights."""
        return collapse_report(
            self.means.detach().cpu().numpy(), self.weights.detach().cpu().numpy(), eps=eps
        )

    def extra_repr(self) -> str:
        return (
            f"n_prototypes={self.n_prototypes}, dim={self.dim}, "
            f"covariance_type={self.config.covariance_type!r}, "
            f"forgetting_rate={self.forgetting_rate!r}"
        )


