"""Decoupled prototypes: the means of an online Gaussian mixture over teacher embeddings.

The mixture is updated by online EM *outside* the encoder's gradient and hands the encoder
its posterior as soft targets; the student is scored against the (fixed) prototypes. The math
is the core's: :func:`online_gmm._online_em.em_step` runs on the embeddings' own device (the
numba fast path for CPU tensors, the array-API code on CUDA).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import array_api_compat
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from online_gmm import _array_api
from online_gmm._estep import _finish, _quadratic_pieces, prepare, weighted_log_density
from online_gmm._gaussian import COVARIANCE_TYPES
from online_gmm._online_em import EMConfig, em_step, empty_state
from online_gmm._schedules import ANNEAL_SCHEDULES, forgetting_rate_at, temperature_at
from online_gmm._seeding import INIT_PARAMS
from online_gmm._stats import MixtureState
from online_gmm.diagnostics import collapse_report

from . import _distributed

__all__ = ["GMMPrototypes"]

_STATE_FIELDS = (
    "weights", "means", "covariances", "precisions_cholesky", "mass", "nu", "moment",
    "tied_mass", "seeded",
)
_RNG_WORDS = 624 + 3  # MT19937 key, position, has_gauss, cached gaussian (as int64 bits)


def _rng_to_tensor(rng: np.random.RandomState) -> Tensor:
    _, key, pos, has_gauss, gauss = rng.get_state(legacy=True)
    tail = np.array([pos, has_gauss, np.float64(gauss).view(np.int64)], dtype=np.int64)
    return torch.from_numpy(np.concatenate([key.astype(np.int64), tail]))


def _rng_from_tensor(t: Tensor) -> np.random.RandomState:
    a = t.detach().cpu().numpy().astype(np.int64)
    rng = np.random.RandomState()
    gauss = np.int64(a[626]).view(np.float64)
    rng.set_state(("MT19937", a[:624].astype(np.uint32), int(a[624]), int(a[625]), float(gauss)))
    return rng


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
    forgetting : {"responsibility", "uniform"}, default="responsibility"
    forgetting_rate : float or callable, default=1e-4
        eta: a prototype remembers about ``1 / eta`` of its own samples, and the mixing
        weights about ``1 / eta`` samples in all. SSL embeddings drift as the encoder learns,
        so the default forgets; but the weights need a memory of many samples per prototype,
        or prototypes that miss a few batches fall below ``dead_threshold`` and are reseeded
        (measured, K=1024, batches of 256: eta=1e-3 reseeds 11 prototypes per step, 1e-4
        0.3; see docs/ssl.md). Keep ``eta`` well below ``1 / K``-ish rates for large K.
    temperature_init, temperature_final, anneal_steps, anneal_schedule
        E-step temperature schedule, as :class:`online_gmm.OnlineGaussianMixture`.
    seed_mass, dead_threshold, max_reseed, reg_covar, init_params
        As :class:`online_gmm.OnlineGaussianMixture`.
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
    >>> head.logits(student).shape
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
        normalize: bool = True,
        nonfinite: str = "raise",
        distributed: bool | None = None,
        random_state: int = 0,
    ) -> None:
        super().__init__()
        _check_choice("covariance_type", covariance_type, COVARIANCE_TYPES)
        _check_choice("forgetting", forgetting, ("responsibility", "uniform"))
        _check_choice("init_params", init_params, INIT_PARAMS)
        _check_choice("nonfinite", nonfinite, ("raise", "skip"))
        if not callable(anneal_schedule):
            _check_choice("anneal_schedule", anneal_schedule, ANNEAL_SCHEDULES)
        if int(n_prototypes) < 1 or int(dim) < 1:
            raise ValueError(f"n_prototypes and dim must be >= 1, got {n_prototypes}, {dim}.")
        if not callable(forgetting_rate):
            forgetting_rate_at(0, forgetting_rate)  # validates the range
        for name, value in (("temperature_init", temperature_init),
                            ("temperature_final", temperature_final)):
            if not (np.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}.")
        self.n_prototypes, self.dim = int(n_prototypes), int(dim)
        self.config = EMConfig(
            n_components=self.n_prototypes,
            covariance_type=covariance_type,
            reg_covar=float(reg_covar),
            forgetting=forgetting,
            seed_mass=float(seed_mass),
            dead_threshold=float(dead_threshold),
            max_reseed=max_reseed,
            init_params=init_params,
        )
        self.forgetting_rate = forgetting_rate
        self.schedule = dict(
            schedule=anneal_schedule, temperature_init=float(temperature_init),
            temperature_final=float(temperature_final), anneal_steps=int(anneal_steps),
        )
        self.normalize = bool(normalize)
        self.nonfinite = nonfinite
        self.distributed = distributed
        state = empty_state(self.n_prototypes, self.dim, covariance_type, np, "cpu")
        for name in _STATE_FIELDS:
            self.register_buffer(name, torch.from_numpy(np.array(getattr(state, name))))
        self.register_buffer("step", torch.zeros((), dtype=torch.int64))
        self.register_buffer("n_samples_seen", torch.zeros((), dtype=torch.int64))
        self.register_buffer("n_reseeded", torch.zeros((), dtype=torch.int64))
        self.register_buffer("rng_state", _rng_to_tensor(np.random.RandomState(random_state)))

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

    def _use_distributed(self) -> bool:
        return _distributed.is_active() if self.distributed is None else bool(self.distributed)

    def _state(self, fast: bool) -> MixtureState:
        get = (lambda t: t.numpy()) if fast else (lambda t: t)
        return MixtureState(**{n: get(getattr(self, n)) for n in _STATE_FIELDS})

    def _commit(self, state: MixtureState) -> None:
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
        return F.normalize(x, dim=1) if self.normalize else x

    def _fast(self, x: Tensor) -> bool:
        return x.device.type == "cpu" and _array_api.FAST_PATH_ENABLED

    # ------------------------------------------------------------------ the three verbs
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
            ``forgetting_rate``, ``n_seeded``, ``n_reseeded``, ``n_skipped``.
        """
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
        x = self._prepare_input(x, "teacher_embeddings")
        fast = self._fast(x)
        step = int(self.step)
        temperature = temperature_at(step, **self.schedule)
        eta = forgetting_rate_at(step, self.forgetting_rate)
        rng = _rng_from_tensor(self.rng_state)
        if fast:
            X, xp = x.numpy(), array_api_compat.array_namespace(x.numpy())
        else:
            X, xp = x, array_api_compat.array_namespace(x)
        w = xp.ones(X.shape[0], dtype=X.dtype, device=_array_api.device(X))
        hooks = {}
        if dist_on:
            ct = self.config.covariance_type
            hooks = dict(
                gather=_distributed.gather_batch,
                reduce=lambda s: _distributed.reduce_stats(s, ct, xp),
            )
        new_state, info = em_step(
            self._state(fast), X, w, config=self.config, temperature=temperature,
            forgetting_rate=eta, rng=rng, xp=xp, fast=fast, **hooks,
        )
        self._commit(new_state)
        self.rng_state.copy_(_rng_to_tensor(rng))
        self.step += 1
        self.n_samples_seen += info.n_samples
        self.n_reseeded += info.n_reseeded
        return {
            "loglik": info.loglik / info.weight if info.weight > 0 else float("nan"),
            "temperature": temperature,
            "forgetting_rate": eta,
            "n_seeded": info.n_seeded,
            "n_reseeded": info.n_reseeded,
            "n_skipped": n_bad,
        }

    @torch.no_grad()
    def targets(self, teacher_embeddings: Tensor, temperature: float = 1.0) -> Tensor:
        """Soft assignment targets: the mixture's posterior, sharpened by ``temperature``.

        ``softmax((log pi_k + log N(x | mu_k, Sigma_k)) / temperature)``; ``temperature=1``
        is the plain posterior, smaller is sharper. Separate from the EM temperature.

        Parameters
        ----------
        teacher_embeddings : Tensor of shape (B, D)
        temperature : float, default=1.0

        Returns
        -------
        targets : Tensor of shape (B, K)
            Rows sum to 1; float32 (float64 for float64 input); no gradient.
        """
        if not (np.isfinite(temperature) and temperature > 0):
            raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}.")
        self._require_seeded()
        x = self._prepare_input(teacher_embeddings, "teacher_embeddings").detach()
        fast = self._fast(x)
        s = self._state(fast)
        X = x.numpy() if fast else x
        xp = array_api_compat.array_namespace(X)
        p = prepare(s.weights, s.means, s.precisions_cholesky, self.config.covariance_type,
                    X.dtype, xp)
        logp = weighted_log_density(X, p, xp, fast)
        logp = torch.from_numpy(logp) if fast else logp
        return torch.softmax(logp / temperature, dim=1)

    def logits(self, student_embeddings: Tensor, kind: str = "cosine") -> Tensor:
        """The student's scores against the fixed prototypes; gradients reach the student only.

        Parameters
        ----------
        student_embeddings : Tensor of shape (B, D)
        kind : {"cosine", "gaussian"}, default="cosine"
            ``cosine``: ``<z / |z|, mu_k / |mu_k|>``. ``gaussian``: the mixture's weighted
            log-density ``log pi_k + log N(z | mu_k, Sigma_k)``.

        Returns
        -------
        logits : Tensor of shape (B, K)
            In the student's dtype (float32 for float16/bfloat16).
        """
        _check_choice("kind", kind, ("cosine", "gaussian"))
        self._require_seeded()
        z = self._prepare_input(student_embeddings, "student_embeddings")
        if kind == "cosine":
            protos = F.normalize(self.means.to(z.dtype), dim=1)
            return z @ protos.T
        xp = array_api_compat.array_namespace(z)
        s = self._state(False)
        p = prepare(s.weights, s.means, s.precisions_cholesky, self.config.covariance_type,
                    z.dtype, xp)
        G, a = _quadratic_pieces(z - p.shift_dt, p, xp)
        return _finish(G, a, p, 1.0, xp, False, softmax=False)[0]

    def _require_seeded(self) -> None:
        if not bool(self.seeded.any()):
            raise RuntimeError("GMMPrototypes has no prototypes yet: call update() first.")

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


def _check_choice(name: str, value: Any, options: Sequence[str]) -> None:
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"{name} must be one of {list(options)}, got {value!r}.")
