# ruff: noqa: E402
"""Learnable (DINO) prototypes against decoupled GMM prototypes, on real self-supervised training.

A student/teacher run (EMA teacher, multi-crop augmentations) on scikit-learn's bundled 8x8
digits, done twice with the same encoder initialisation, data order, augmentations, optimiser
and budget; only the prototype layer differs:

* ``joint``: :class:`ssl_bridge.JointPrototypes`, learned by back-propagation with the encoder,
  the DINO recipe (teacher centring and sharpening, last layer frozen for the first epoch);
* ``gmm``: :class:`ssl_bridge.GMMPrototypes`, the means of a Gaussian mixture fitted by online
  EM to the teacher embeddings, apart from the loss; its posterior is the teacher target.

Every ``--log-every`` steps the prototypes are measured with
:func:`online_gmm.diagnostics.collapse_report` (unique prototypes at cosine distance eps in
{0.025, 0.1, 0.25, 0.5}); at the end the frozen teacher encoder is evaluated by weighted k-NN
(k = 20, cosine, temperature 0.07, as in DINO's evaluation) with the training digits as the
memory bank and the held-out digits as queries, next to a randomly initialised encoder and
raw pixels.

Outputs in ``--out-dir`` (default ``docs/img``): ``ssl_results.json`` and, with matplotlib,
``ssl_diversity.png``. Run from the repository root::

    python examples/ssl_digits.py                     # the recipe: about 5 minutes, 2 cores
    python examples/ssl_digits.py --config stressed   # the learnable head collapses
    python examples/ssl_digits.py --fast              # a smoke run of a few seconds

The contrast over 3 seeds, the ablations and ``--aggregate``: docs/ssl.md.

Requires ``torch`` (the ``torch`` extra) and, for the plot, ``matplotlib`` (``examples``).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

try:
    import online_gmm  # noqa: F401
except ImportError:  # run from a checkout without `pip install -e .`: use the checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits
from torch import Tensor, nn

from online_gmm.diagnostics import collapse_report
from ssl_bridge import GMMPrototypes, JointPrototypes, losses

EPS = (0.025, 0.1, 0.25, 0.5)
HEADS = ("joint", "gmm")
LABELS = {"joint": "learnable head (DINO)", "gmm": "decoupled GMM prototypes"}


@dataclass
class Config:
    """Everything a run depends on; the same for both heads."""

    config: str = "recipe"  # the preset the run started from (PRESETS)
    epochs: int = 200
    steps: int | None = None  # total optimiser steps; None: epochs x steps per epoch
    heads: tuple[str, ...] = ("joint", "gmm")  # which heads to train (same seeds and batches)
    batch_size: int = 128
    n_prototypes: int = 1024
    dim: int = 64  # projection (bottleneck) dimension, where the prototypes live
    width: int = 16  # channels of the first convolution
    n_local: int = 2  # local (zoomed-in) views, seen by the student only
    lr: float = 5e-4  # peak AdamW learning rate (after linear warm-up)
    min_lr: float = 1e-5
    warmup_epochs: int = 10
    weight_decay: float = 0.04
    # the learnable head's optimiser group: its learning rate is lr x head_lr_mult (same
    # schedule) and weight decay head_weight_decay on its direction parameter v (None: the
    # encoder's weight_decay); the recipe is 1 and None
    head_lr_mult: float = 1.0
    head_weight_decay: float | None = None
    clip_grad: float = 3.0
    momentum_teacher: float = 0.995  # EMA momentum, cosine schedule up to 1
    student_temp: float = 0.1
    teacher_temp: float = 0.04  # DINO teacher sharpening (joint head)
    center_momentum: float = 0.9
    freeze_last_layer_epochs: int = 1  # DINO: the learnable prototypes get no update at first
    gmm_target_temp: float = 1.0  # temperature of the GMM posterior used as target
    gmm_balance: str | None = None  # None: the plain posterior; "sinkhorn": balanced targets
    # keyword arguments of GMMPrototypes beyond n_prototypes, dim and random_state; empty:
    # the bridge's defaults (what the example measures)
    gmm_options: dict = field(default_factory=dict)
    knn_k: int = 20
    knn_temp: float = 0.07
    log_every: int = 50  # steps between two collapse measurements
    seed: int = 0
    threads: int = 2
    fast: bool = False
    save_state: bool = False  # also write <head>_state.pt (prototypes, embeddings, GMM state)
    n_train: int | None = None  # use only the first n_train training digits (--fast)
    eps: tuple[float, ...] = field(default=EPS)


# ----------------------------------------------------------------------------------- data


def load_data(seed: int) -> dict[str, Tensor]:
    """Digits as (N, 1, 8, 8) float tensors in [0, 1]; a stratified 75 / 25 split."""
    digits = load_digits()
    X = (digits.images / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    X_tr, X_te, y_tr, y_te = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=seed
    )
    return {
        "x_train": torch.from_numpy(X_tr).unsqueeze(1),
        "y_train": torch.from_numpy(y_tr),
        "x_test": torch.from_numpy(X_te).unsqueeze(1),
        "y_test": torch.from_numpy(y_te),
    }


def _uniform(n: int, low: float, high: float, gen: torch.Generator) -> Tensor:
    return low + (high - low) * torch.rand(n, generator=gen)


def augment(
    x: Tensor,
    gen: torch.Generator,
    *,
    out_size: int,
    zoom: tuple[float, float],
    max_shift: float,
    max_rot_deg: float = 15.0,
    noise_std: float = 0.05,
    erase_p: float = 0.0,
) -> Tensor:
    """One random view of every image of ``x`` (B, 1, 8, 8), all in one batched pass.

    A random affine map (rotation, isotropic scale ``zoom`` < 1 zooms in: a crop, shift in
    normalised coordinates) resampled bilinearly to ``out_size`` x ``out_size`` with zero
    (background) padding, then contrast jitter, Gaussian noise and random erasing of a small
    rectangle.
    """
    B = x.shape[0]
    angle = _uniform(B, -max_rot_deg, max_rot_deg, gen) * (math.pi / 180.0)
    scale = _uniform(B, *zoom, gen)
    shift = _uniform(2 * B, -max_shift, max_shift, gen).view(B, 2)
    cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
    theta = torch.stack(
        [torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1
    )
    grid = F.affine_grid(theta, [B, 1, out_size, out_size], align_corners=False)
    v = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    v = v * _uniform(B, 0.7, 1.3, gen).view(B, 1, 1, 1)
    v = v + noise_std * torch.randn(v.shape, generator=gen)
    if erase_p > 0:
        size = torch.randint(2, 4, (B, 2), generator=gen)  # 2x2 .. 3x3 pixels
        top = (torch.rand(B, generator=gen) * (out_size - size[:, 0] + 1)).long()
        left = (torch.rand(B, generator=gen) * (out_size - size[:, 1] + 1)).long()
        idx = torch.arange(out_size)
        rows = (idx >= top[:, None]) & (idx < (top + size[:, 0])[:, None])
        cols = (idx >= left[:, None]) & (idx < (left + size[:, 1])[:, None])
        hit = (torch.rand(B, generator=gen) < erase_p)[:, None, None]
        mask = rows[:, :, None] & cols[:, None, :] & hit
        v = v.masked_fill(mask[:, None], 0.0)
    return v.clamp_(0.0, 1.5)


def make_views(x: Tensor, gen: torch.Generator, n_local: int) -> tuple[list[Tensor], Tensor]:
    """Two global views (8x8) and ``n_local`` local zoomed-in views (6x6, stacked)."""
    globals_ = [
        augment(x, gen, out_size=8, zoom=(0.85, 1.2), max_shift=0.25, erase_p=0.3)
        for _ in range(2)
    ]
    locals_ = [
        augment(x, gen, out_size=6, zoom=(0.5, 0.7), max_shift=0.4) for _ in range(n_local)
    ]
    return globals_, (torch.cat(locals_) if locals_ else x.new_zeros(0, 1, 6, 6))


# ---------------------------------------------------------------------------------- model


def _conv(c_in: int, c_out: int) -> nn.Sequential:
    # GroupNorm rather than BatchNorm: no batch statistics, so the teacher computes the same
    # function in training and in evaluation, and views do not interact through the batch.
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.GroupNorm(8, c_out), nn.ReLU()
    )


class Encoder(nn.Module):
    """A small CNN backbone (the features k-NN evaluates) and a DINO-style MLP projector."""

    def __init__(self, width: int, dim: int) -> None:
        super().__init__()
        w = width
        self.backbone = nn.Sequential(
            _conv(1, w),
            nn.MaxPool2d(2),
            _conv(w, 2 * w),
            _conv(2 * w, 4 * w),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        # DINO's projection head with ``use_bn=True``. Batch statistics only (no running
        # averages), so training and evaluation compute the same function of a batch.
        self.projector = nn.Sequential(
            nn.Linear(4 * w, 256),
            nn.BatchNorm1d(256, track_running_stats=False),
            nn.GELU(),
            nn.Linear(256, 256),
            nn.BatchNorm1d(256, track_running_stats=False),
            nn.GELU(),
            nn.Linear(256, dim),
        )

    def features(self, x: Tensor) -> Tensor:
        return self.backbone(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.projector(self.backbone(x))


def n_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# ------------------------------------------------------------------------------- training


def cosine_schedule(start: float, end: float, total: int, warmup: int = 0) -> np.ndarray:
    """Linear warm-up from 0 to ``start`` then cosine from ``start`` to ``end`` (DINO)."""
    warm = np.linspace(0.0, start, warmup, endpoint=False)
    t = np.arange(total - warmup)
    cos = end + 0.5 * (start - end) * (1 + np.cos(np.pi * t / max(1, total - warmup)))
    return np.concatenate([warm, cos])


@torch.no_grad()
def ema_update(teacher: nn.Module, student: nn.Module, momentum: float) -> None:
    for p_t, p_s in zip(teacher.parameters(), student.parameters(), strict=True):
        p_t.mul_(momentum).add_(p_s.detach(), alpha=1.0 - momentum)


@torch.no_grad()
def embed(encoder: Encoder, x: Tensor, *, features: bool, batch: int = 512) -> Tensor:
    """Frozen (eval-mode) backbone features or projector outputs of ``x``."""
    was_training = encoder.training
    encoder.eval()
    out = [
        (encoder.features if features else encoder)(x[i : i + batch])
        for i in range(0, len(x), batch)
    ]
    encoder.train(was_training)
    return torch.cat(out)


def knn_accuracy(
    bank: Tensor, bank_y: Tensor, query: Tensor, query_y: Tensor, k: int, temp: float
) -> float:
    """DINO's weighted k-NN classifier on cosine similarity; returns the accuracy in %."""
    bank = F.normalize(bank.double(), dim=1)
    query = F.normalize(query.double(), dim=1)
    sims, idx = (query @ bank.T).topk(k, dim=1)
    n_classes = int(bank_y.max()) + 1
    votes = torch.zeros(len(query), n_classes, dtype=torch.float64)
    votes.scatter_add_(1, bank_y[idx], (sims / temp).exp())
    return 100.0 * float((votes.argmax(1) == query_y).double().mean())


class JointRun:
    """DINO: learnable prototypes (student) and their EMA copy (teacher), centring."""

    name = "joint"

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.student = JointPrototypes(cfg.dim, cfg.n_prototypes)
        self.teacher = copy.deepcopy(self.student).requires_grad_(False)
        self.center = torch.zeros(1, cfg.n_prototypes)
        self.initial_prototypes = self.student.prototypes.clone()

    def parameters(self) -> list[nn.Parameter]:
        return [p for p in self.student.parameters() if p.requires_grad]

    def targets(self, teacher_emb: list[Tensor]) -> list[Tensor]:
        logits = [self.teacher(t) for t in teacher_emb]
        out = [F.softmax((t - self.center) / self.cfg.teacher_temp, dim=1) for t in logits]
        batch_center = torch.cat(logits).mean(0, keepdim=True)
        m = self.cfg.center_momentum
        self.center.mul_(m).add_(batch_center, alpha=1 - m)
        return out

    def probe_targets(self, emb: Tensor) -> Tensor:
        return F.softmax((self.teacher(emb) - self.center) / self.cfg.teacher_temp, dim=1)

    def logits(self, student_emb: Tensor) -> Tensor:
        return self.student(student_emb)

    def after_step(self, step: int, momentum: float, steps_per_epoch: int) -> None:
        ema_update(self.teacher, self.student, momentum)

    def before_optimizer(self, step: int, steps_per_epoch: int) -> None:
        if step < self.cfg.freeze_last_layer_epochs * steps_per_epoch:
            for p in self.student.parameters():
                p.grad = None

    @property
    def prototypes(self) -> Tensor:
        return self.student.prototypes

    def extra_report(self) -> dict:
        rep = collapse_report(self.teacher.prototypes, eps=self.cfg.eps)
        # how far the learnable prototypes have moved from their random initialisation
        drift = (self.student.prototypes * self.initial_prototypes).sum(1)
        return {
            "teacher_unique_fraction": _str_keys(rep["unique_fraction"]),
            "mean_cos_to_init": float(drift.mean()),
            "min_cos_to_init": float(drift.min()),
        }


class GMMRun:
    """Decoupled: prototypes = means of an online GMM on the teacher embeddings."""

    name = "gmm"

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.head = GMMPrototypes(
            cfg.n_prototypes, cfg.dim, random_state=cfg.seed, **cfg.gmm_options
        )
        self.initial_prototypes: Tensor | None = None  # the means once all are seeded

    def parameters(self) -> list[nn.Parameter]:
        return []

    def targets(self, teacher_emb: list[Tensor]) -> list[Tensor]:
        self.head.update(torch.cat(teacher_emb))
        if self.initial_prototypes is None and bool(self.head.seeded.all()):
            self.initial_prototypes = F.normalize(self.head.prototypes.clone(), dim=1)
        return [self.train_targets(t) for t in teacher_emb]

    def train_targets(self, emb: Tensor) -> Tensor:
        """The targets of one view's batch, as training uses them (balanced or not)."""
        return self.head.targets(emb, temperature=self.cfg.gmm_target_temp,
                                 balance=self.cfg.gmm_balance)

    def probe_targets(self, emb: Tensor) -> Tensor:
        return self.head.targets(emb, temperature=self.cfg.gmm_target_temp)

    def logits(self, student_emb: Tensor) -> Tensor:
        return self.head.logits(student_emb, kind="cosine")

    def after_step(self, step: int, momentum: float, steps_per_epoch: int) -> None:
        pass

    def before_optimizer(self, step: int, steps_per_epoch: int) -> None:
        pass

    @property
    def prototypes(self) -> Tensor:
        return self.head.prototypes

    def extra_report(self) -> dict:
        rep = self.head.collapse_report(eps=self.cfg.eps)
        out = {
            "gmm_weight_effective_components": rep["effective_components"],
            "n_reseeded": _maybe_int(getattr(self.head, "n_reseeded", None)),
        }
        for name in ("n_duplicates_reseeded",):  # counters of optional mechanisms
            if hasattr(self.head, name):
                out[name] = int(getattr(self.head, name))
        if self.initial_prototypes is not None:
            # how far the means have moved from the seeds they had once all were seeded
            # (a reseeded prototype is compared with its first seed too)
            drift = (F.normalize(self.head.prototypes, dim=1)
                     * self.initial_prototypes).sum(1)
            out.update(mean_cos_to_init=float(drift.mean()), min_cos_to_init=float(drift.min()))
        return out


def _exp_entropy(p: Tensor) -> float:
    p = p.double().clamp_min(0)
    p = p / p.sum()
    return math.exp(float(-(p * p.clamp_min(1e-300).log()).sum()))


def _str_keys(d: dict) -> dict:
    return {str(k): v for k, v in d.items()}


def _maybe_int(v: object) -> int | None:
    try:
        return int(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def nearest_neighbour_distances(prototypes: Tensor) -> dict:
    """Each prototype's cosine distance to its nearest other prototype: quantiles, and how
    many lie closer than 1e-3 (40 times tighter than eps 0.025: duplicates, not tiling)."""
    c = F.normalize(prototypes.double(), dim=1)
    sim = c @ c.T
    sim.fill_diagonal_(-2.0)
    d = (1.0 - sim.max(1).values).clamp_min(0).numpy()
    q = np.quantile(d, [0.0, 0.01, 0.05, 0.5])
    return {"min": float(q[0]), "p01": float(q[1]), "p05": float(q[2]), "median": float(q[3]),
            "below_0.025": int((d < 0.025).sum()), "below_1e-3": int((d < 1e-3).sum())}


@torch.no_grad()
def measure(run: JointRun | GMMRun, teacher: Encoder, x_probe: Tensor, cfg: Config) -> dict:
    """Collapse diagnostics of the prototypes, and how the teacher uses them on ``x_probe``."""
    emb = embed(teacher, x_probe, features=False)
    q = run.probe_targets(emb)
    usage = q.mean(0)
    rep = collapse_report(run.prototypes, weights=usage.clamp_min(0), eps=cfg.eps)
    z = F.normalize(emb, dim=1)
    # the same on augmented views (one global view of each digit, the same views at every
    # measurement): the distribution the mixture is fitted to, where the clean digits are
    # its centres
    views = augment(x_probe, torch.Generator().manual_seed(cfg.seed + 2), out_size=8,
                    zoom=(0.85, 1.2), max_shift=0.25, erase_p=0.3)
    extra = {"view_usage": _exp_entropy(run.probe_targets(embed(teacher, views,
                                                                features=False)).mean(0))}
    if isinstance(run, GMMRun):
        # the targets as training computes them: per batch of batch_size rows (balanced
        # over that batch with gmm_balance="sinkhorn"), their mean over the probe
        qt = torch.cat([run.train_targets(emb[i : i + cfg.batch_size])
                        for i in range(0, len(emb), cfg.batch_size)])
        extra["target_usage"] = _exp_entropy(qt.mean(0))
    return {
        "unique": _str_keys(rep["unique"]),
        "unique_fraction": _str_keys(rep["unique_fraction"]),
        "nn_cos_distance": nearest_neighbour_distances(run.prototypes),
        # exp(entropy of the mean teacher target): how many prototypes the data really uses
        # (the GMM: its plain posterior, whatever the training targets)
        "effective_usage": rep["effective_components"],
        **extra,
        "argmax_used": int(q.argmax(1).unique().numel()),
        "target_entropy": float(-(q * q.clamp_min(1e-30).log()).sum(1).mean()),
        # std of the normalised teacher embeddings x sqrt(D): ~1 spread out, 0 collapsed
        "embedding_std": float(z.std(0).mean() * math.sqrt(z.shape[1])),
        **run.extra_report(),
    }


def make_optimizer(cfg: Config, encoder_params: list[nn.Parameter],
                   head_params: list[nn.Parameter]) -> torch.optim.AdamW:
    """AdamW: the encoder's matrices with weight decay, its biases and norms without, and
    the learnable head's direction v (its magnitude is frozen) in a group of its own, with
    ``lr_mult`` = ``head_lr_mult`` (the step sets ``lr = schedule x lr_mult``) and weight
    decay ``head_weight_decay`` (None: the encoder's)."""
    groups = [
        {"params": [p for p in encoder_params if p.ndim > 1]},
        {"params": [p for p in encoder_params if p.ndim <= 1], "weight_decay": 0.0},
    ]
    if head_params:
        head_wd = cfg.weight_decay if cfg.head_weight_decay is None else cfg.head_weight_decay
        groups.append({"params": head_params, "lr_mult": cfg.head_lr_mult,
                       "weight_decay": head_wd})
    return torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)


def set_learning_rate(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for g in optimizer.param_groups:
        g["lr"] = lr * g.get("lr_mult", 1.0)


def train(kind: str, data: dict[str, Tensor], cfg: Config, init_state: dict) -> dict:
    """One self-supervised run with the given head; returns its history and evaluation."""
    torch.manual_seed(cfg.seed + 1)
    student = Encoder(cfg.width, cfg.dim)
    student.load_state_dict(init_state)
    teacher = copy.deepcopy(student).requires_grad_(False)
    run: JointRun | GMMRun = JointRun(cfg) if kind == "joint" else GMMRun(cfg)

    params = list(student.parameters()) + run.parameters()
    optimizer = make_optimizer(cfg, list(student.parameters()), run.parameters())

    x_train = data["x_train"]
    n = len(x_train)
    steps_per_epoch = n // cfg.batch_size
    total = cfg.steps if cfg.steps is not None else cfg.epochs * steps_per_epoch
    lr_sched = cosine_schedule(cfg.lr, cfg.min_lr, total, cfg.warmup_epochs * steps_per_epoch)
    mom_sched = cosine_schedule(cfg.momentum_teacher, 1.0, total)
    gen = torch.Generator().manual_seed(cfg.seed)  # same batches and views for both heads

    history: list[dict] = []
    losses_log: list[float] = []
    t0 = time.perf_counter()
    step = 0
    while step < total:
        order = torch.randperm(n, generator=gen)
        for b in range(min(steps_per_epoch, total - step)):
            x = x_train[order[b * cfg.batch_size : (b + 1) * cfg.batch_size]]
            globals_, locals_ = make_views(x, gen, cfg.n_local)
            with torch.no_grad():
                t_emb = list(teacher(torch.cat(globals_)).chunk(2))
                targets = run.targets(t_emb)
            s_emb = list(student(torch.cat(globals_)).chunk(2))
            if cfg.n_local:
                s_emb += list(student(locals_).chunk(cfg.n_local))
            logits = [run.logits(s) for s in s_emb]
            loss = losses.cross_view_cross_entropy(logits, targets, cfg.student_temp)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"{kind}: non-finite loss at step {step}.")

            set_learning_rate(optimizer, float(lr_sched[step]))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(params, cfg.clip_grad)
            run.before_optimizer(step, steps_per_epoch)
            optimizer.step()
            ema_update(teacher, student, float(mom_sched[step]))
            run.after_step(step, float(mom_sched[step]), steps_per_epoch)
            losses_log.append(float(loss.detach()))
            step += 1

            if step % cfg.log_every == 0 or step == total:
                m = measure(run, teacher, x_train, cfg)
                m.update(step=step, epoch=step / steps_per_epoch, loss=float(np.mean(
                    losses_log[-cfg.log_every :])), seconds=time.perf_counter() - t0)
                history.append(m)
                print(
                    f"[{kind}] step {step:5d}/{total}  loss {m['loss']:.3f}  unique% "
                    + " ".join(f"{100 * m['unique_fraction'][str(e)]:6.2f}" for e in cfg.eps)
                    + f"  usage {m['effective_usage']:.1f}  emb-std {m['embedding_std']:.2f}"
                    + f"  ({m['seconds']:.0f} s)",
                    flush=True,
                )
    seconds = time.perf_counter() - t0

    knn = {}
    for name, features in (("backbone", True), ("projection", False)):
        bank = embed(teacher, x_train, features=features)
        query = embed(teacher, data["x_test"], features=features)
        knn[name] = knn_accuracy(
            bank, data["y_train"], query, data["y_test"], cfg.knn_k, cfg.knn_temp
        )
    state = None
    if cfg.save_state:  # for offline analysis: the head, and the teacher's embeddings
        state = {"prototypes": run.prototypes.clone(),
                 "train_embeddings": embed(teacher, x_train, features=False),
                 "train_labels": data["y_train"]}
        if isinstance(run, GMMRun):
            state["gmm"] = run.head.state_dict()
    return {
        "_state": state,
        "head": LABELS[kind],
        "steps": total,
        "seconds": seconds,
        "knn_accuracy": knn,
        "final": history[-1],
        "history": history,
    }


# ---------------------------------------------------------------------------------- output


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (pip install matplotlib): no plot.", file=sys.stderr)
        return None
    return plt


def plot(results: dict, path: Path) -> bool:
    """Unique-% over training, one panel per eps, both heads; False without matplotlib."""
    plt = _pyplot()
    if plt is None:
        return False
    eps = results["config"]["eps"]
    K = results["config"]["n_prototypes"]
    fig, axes = plt.subplots(1, len(eps), figsize=(4 * len(eps), 3.6), sharey=True)
    for ax, e in zip(np.atleast_1d(axes), eps, strict=True):
        for kind, style, lw in (("joint", "C3-", 3.0), ("gmm", "C0--", 1.6)):
            if kind not in results["runs"]:
                continue
            hist = results["runs"][kind]["history"]
            ep = [h["epoch"] for h in hist]
            u = [100 * h["unique_fraction"][str(e)] for h in hist]
            ax.plot(ep, u, style, lw=lw, label=LABELS[kind])
        ax.set_yscale("log")
        ax.set_ylim(100 / K / 1.5, 150)
        ax.set_title(f"eps = {e}")
        ax.set_xlabel("epoch")
        ax.grid(True, which="both", alpha=0.3)
    np.atleast_1d(axes)[0].set_ylabel(f"unique prototypes, % of K = {K}")
    np.atleast_1d(axes)[0].legend(loc="lower left", fontsize=8)
    fig.suptitle("Digits, student/teacher SSL: prototype diversity over training")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def summary(results: dict) -> str:
    """A Markdown summary table of the final figures."""
    eps = results["config"]["eps"]
    head = "| | " + " | ".join(f"unique @ {e}" for e in eps)
    head += " | effective usage | k-NN backbone | k-NN projection |"
    lines = [head, "|" + " --- |" * (len(eps) + 4)]
    for kind in HEADS:
        if kind not in results["runs"]:
            continue
        r = results["runs"][kind]
        f = r["final"]
        K = f["unique"]
        cells = [f"{K[str(e)]} ({100 * f['unique_fraction'][str(e)]:.1f}%)" for e in eps]
        lines.append(
            f"| {r['head']} | "
            + " | ".join(cells)
            + f" | {f['effective_usage']:.1f} | {r['knn_accuracy']['backbone']:.1f}%"
            + f" | {r['knn_accuracy']['projection']:.1f}% |"
        )
    b = results["baselines"]
    blank = " | ".join("" for _ in eps)
    lines.append(f"| random-init encoder | {blank} | | {b['random_encoder']:.1f}% | |")
    lines.append(f"| raw pixels | {blank} | | {b['raw_pixels']:.1f}% | |")
    return "\n".join(lines)


# -------------------------------------------------------------------- several runs at once

#: What one run's history keeps in the aggregate (the rest stays in its ssl_results.json).
_HISTORY_KEYS = ("step", "unique_fraction", "effective_usage", "target_usage",
                 "gmm_weight_effective_components", "mean_cos_to_init", "argmax_used",
                 "embedding_std")
#: The final figures summarised over seeds (mean, spread).
_FINAL_KEYS = ("unique_0.025", "unique_0.1", "effective_usage", "target_usage",
               "gmm_weight_effective_components", "argmax_used", "mean_cos_to_init",
               "min_cos_to_init", "n_reseeded", "n_duplicates_reseeded", "knn_backbone",
               "knn_projection", "embedding_std")


def variant(results: dict, kind: str) -> str:
    """The name a head's run goes by in an aggregate: the head, the GMM's targets and the
    GMMPrototypes arguments it changed from the bridge's defaults."""
    if kind == "joint":
        return "joint"
    balance = results["config"].get("gmm_balance")
    options = results["config"].get("gmm_options") or {}
    changed = "".join(f", {k}={v}" for k, v in sorted(options.items()))
    return f"gmm ({balance or 'posterior'}{changed})"


def _final(results: dict, kind: str) -> dict:
    r = results["runs"][kind]
    f = r["final"]
    out = {k: f.get(k) for k in _FINAL_KEYS if k in f}
    for e in ("0.025", "0.1"):
        out[f"unique_{e}"] = f["unique_fraction"][e]
    out["knn_backbone"] = r["knn_accuracy"]["backbone"]
    out["knn_projection"] = r["knn_accuracy"]["projection"]
    return out


def aggregate(paths: list[Path]) -> dict:
    """The runs in ``paths`` (their ``ssl_results.json``) as one compact record: per run
    its final figures and a short history, and per variant the mean, spread and range over
    its seeds."""
    runs = []
    for path in paths:
        file = path / "ssl_results.json" if path.is_dir() else path
        results = json.loads(file.read_text())
        for kind in results["runs"]:
            hist = [{k: h[k] for k in _HISTORY_KEYS if k in h}
                    for h in results["runs"][kind]["history"]]
            runs.append({"variant": variant(results, kind), "seed": results["config"]["seed"],
                         "source": str(file), "command": results["command"],
                         "final": _final(results, kind), "history": hist,
                         "baselines": results["baselines"]})
    summary_: dict[str, dict] = {}
    for name in dict.fromkeys(r["variant"] for r in runs):
        mine = [r for r in runs if r["variant"] == name]
        stats = {}
        for key in _FINAL_KEYS:
            values = [r["final"][key] for r in mine if r["final"].get(key) is not None]
            if values:
                a = np.asarray(values, dtype=float)
                stats[key] = {"mean": float(a.mean()), "std": float(a.std(ddof=1))
                              if len(a) > 1 else 0.0, "min": float(a.min()),
                              "max": float(a.max()), "values": [float(v) for v in a]}
        summary_[name] = {"seeds": [r["seed"] for r in mine], **stats}
    first = json.loads((paths[0] / "ssl_results.json" if paths[0].is_dir() else paths[0])
                       .read_text())
    return {"config": first["config"], "runs": runs, "summary": summary_}


_STYLE = {"joint": ("C3", "-"), "gmm (posterior)": ("C0", "--"), "gmm (sinkhorn)": ("C2", ":")}
_NAMES = {"joint": LABELS["joint"], "gmm (posterior)": "GMMPrototypes, posterior targets",
          "gmm (sinkhorn)": "GMMPrototypes, balanced targets"}


def plot_aggregate(agg: dict, path: Path, title: str) -> bool:
    """Unique prototypes at eps 0.025 and 0.1 and the effective usage over training, every
    run of every variant (one line per seed)."""
    plt = _pyplot()
    if plt is None:
        return False
    K = agg["config"]["n_prototypes"]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    seen = set()
    for r in agg["runs"]:
        colour, style = _STYLE.get(r["variant"], ("k", "-"))
        label = None if r["variant"] in seen else _NAMES.get(r["variant"], r["variant"])
        seen.add(r["variant"])
        steps = [h["step"] for h in r["history"]]
        for ax, e in zip(axes[:2], ("0.025", "0.1"), strict=True):
            ax.plot(steps, [100 * h["unique_fraction"][e] for h in r["history"]], color=colour,
                    ls=style, lw=1.6, label=label)
        axes[2].plot(steps, [h.get("target_usage", h["effective_usage"]) for h in r["history"]],
                     color=colour, ls=style, lw=1.6, label=label)
    for ax, e in zip(axes[:2], ("0.025", "0.1"), strict=True):
        ax.set_ylim(0, 102)
        ax.set_title(f"unique prototypes at eps = {e}")
        ax.set_ylabel(f"% of K = {K}")
    axes[2].axhline(K / 4, color="grey", lw=0.8, ls="-.", label="K / 4")
    axes[2].set_yscale("log")
    axes[2].set_title("usage of the targets, exp(H(mean target))")
    for ax in axes:
        ax.set_xlabel("step")
        ax.grid(True, alpha=0.3)
    axes[0].legend(loc="lower left", fontsize=8)
    axes[2].legend(loc="lower right", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def aggregate_table(agg: dict) -> str:
    """Markdown: one row per run, then mean +- std per variant."""
    cols = (("unique_0.025", "unique @ 0.025", 100, ".1f"), ("unique_0.1", "unique @ 0.1", 100,
            ".1f"), ("knn_backbone", "k-NN backbone", 1, ".1f"), ("effective_usage",
            "usage (posterior)", 1, ".0f"), ("target_usage", "usage (targets)", 1, ".0f"),
            ("gmm_weight_effective_components", "exp(H(pi))", 1, ".0f"),
            ("mean_cos_to_init", "cos to start", 1, ".2f"))
    lines = ["| head | seed | " + " | ".join(c[1] for c in cols) + " |",
             "|" + " --- |" * (len(cols) + 2)]

    def cell(v, scale, fmt):
        return "" if v is None else format(scale * v, fmt)

    for r in agg["runs"]:
        lines.append(f"| {r['variant']} | {r['seed']} | " + " | ".join(
            cell(r["final"].get(k), s, f) for k, _, s, f in cols) + " |")
    for name, st in agg["summary"].items():
        lines.append(f"| {name} | mean +- std | " + " | ".join(
            "" if k not in st else f"{format(s * st[k]['mean'], f)} +- "
            f"{format(s * st[k]['std'], f)}" for k, _, s, f in cols) + " |")
    return "\n".join(lines)


# ------------------------------------------------------------------------------ arguments

#: Named configurations. "recipe": DINO's recipe at this scale (the default). "stressed":
#: the learnable head's optimiser pushed until its prototypes collapse (learning rate 300x
#: the recipe's and weight decay 0.4 on its direction parameter, a 16-d bottleneck, 3,000
#: steps); the encoder, the data and the GMM head are as in the recipe.
PRESETS: dict[str, dict] = {
    "recipe": {},
    "stressed": {"dim": 16, "steps": 3000, "head_lr_mult": 300.0, "head_weight_decay": 0.4},
}


def _option(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    for kind in (int, float):
        try:
            return key, kind(value)
        except ValueError:
            pass
    return key, {"None": None, "True": True, "False": False}.get(value, value)


def parse_args(argv: list[str] | None) -> tuple[Config, argparse.Namespace]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", choices=sorted(PRESETS), default="recipe",
                   help="a named configuration (default recipe; stressed: D=16, 3,000 "
                        "steps, head lr x300, head weight decay 0.4)")
    p.add_argument("--epochs", type=int, default=None, help="training epochs (default 200)")
    p.add_argument("--steps", type=int, default=None,
                   help="optimiser steps (overrides --epochs; stressed: 3000)")
    p.add_argument("--dim", type=int, default=None, help="D, the bottleneck (default 64)")
    p.add_argument("--n-prototypes", type=int, default=None, help="K (default 1024)")
    p.add_argument("--heads", nargs="+", choices=HEADS, default=None,
                   help="train only these heads (default both)")
    p.add_argument("--head-lr-mult", type=float, default=None,
                   help="learnable head's learning rate / the encoder's (recipe 1)")
    p.add_argument("--head-weight-decay", type=float, default=None,
                   help="weight decay on the learnable head's direction parameter "
                        "(default: the encoder's, 0.04)")
    p.add_argument("--out-dir", type=Path, default=Path("docs/img"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    p.add_argument("--gmm-balance", choices=("none", "sinkhorn"), default=None,
                   help="the GMM head's targets: the plain posterior (none, default) or "
                        "balanced over the batch (sinkhorn)")
    p.add_argument("--gmm-forgetting-rate", type=float, default=None)
    p.add_argument("--gmm-covariance-type", default=None)
    p.add_argument("--gmm-option", type=_option, action="append", default=[],
                   metavar="KEY=VALUE", help="any other GMMPrototypes argument (repeatable)")
    p.add_argument("--gmm-target-temp", type=float, default=None)
    p.add_argument("--teacher-temp", type=float, default=None)
    p.add_argument("--fast", action="store_true", help="a tiny smoke run (seconds)")
    p.add_argument("--save-state", action="store_true",
                   help="also write <head>_state.pt: final prototypes, the teacher's "
                        "embeddings of the training digits, the GMM's state")
    p.add_argument("--aggregate", type=Path, nargs="+", default=None, metavar="DIR",
                   help="no training: summarise these runs' ssl_results.json into "
                        "--out-dir/<--name>.json and .png")
    p.add_argument("--name", default="ssl_aggregate", help="file name of --aggregate's output")
    a = p.parse_args(argv)
    cfg = Config(config=a.config, seed=a.seed, threads=a.threads, fast=a.fast,
                 save_state=a.save_state)
    for name, value in PRESETS[a.config].items():
        setattr(cfg, name, value)
    if a.fast:
        cfg.epochs, cfg.n_prototypes, cfg.batch_size, cfg.width = 2, 32, 64, 8
        cfg.n_local, cfg.warmup_epochs, cfg.log_every, cfg.n_train = 1, 1, 4, 384
        cfg.steps = None
    for name in ("epochs", "steps", "dim", "n_prototypes", "head_lr_mult",
                 "head_weight_decay", "gmm_target_temp", "teacher_temp"):
        if getattr(a, name) is not None:
            setattr(cfg, name, getattr(a, name))
    if a.heads is not None:
        cfg.heads = tuple(h for h in HEADS if h in a.heads)
    if a.gmm_balance is not None:
        cfg.gmm_balance = None if a.gmm_balance == "none" else a.gmm_balance
    options = dict(a.gmm_option)
    if a.gmm_forgetting_rate is not None:
        options["forgetting_rate"] = a.gmm_forgetting_rate
    if a.gmm_covariance_type is not None:
        options["covariance_type"] = a.gmm_covariance_type
    cfg.gmm_options = options
    return cfg, a


def main(argv: list[str] | None = None) -> dict:
    cfg, args = parse_args(argv)
    out_dir = args.out_dir
    if args.aggregate:
        agg = aggregate(args.aggregate)
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / f"{args.name}.json").write_text(json.dumps(agg, indent=1))
        title = (f"Digits SSL, '{agg['config']['config']}' configuration "
                 f"(D = {agg['config']['dim']}, K = {agg['config']['n_prototypes']}), "
                 f"{len({r['seed'] for r in agg['runs']})} seeds")
        plot_aggregate(agg, out_dir / f"{args.name}.png", title)
        print(aggregate_table(agg))
        return agg
    torch.set_num_threads(cfg.threads)
    # The mixture's E-step runs in numba (parallel) and NumPy's BLAS: give them the same
    # thread budget as torch. On a shared, oversubscribed machine spinning threads of three
    # pools fighting for the cores cost ten times the computation itself.
    try:
        import numba

        numba.set_num_threads(min(cfg.threads, numba.config.NUMBA_NUM_THREADS))
    except ImportError:  # pragma: no cover - numba is a dependency of online_gmm
        pass
    with threadpool_limits(cfg.threads):
        return _run(cfg, out_dir, argv)


def _run(cfg: Config, out_dir: Path, argv: list[str] | None) -> dict:
    t0 = time.perf_counter()
    data = load_data(cfg.seed)
    if cfg.n_train is not None:
        for key in ("x_train", "y_train"):
            data[key] = data[key][: cfg.n_train]
    torch.manual_seed(cfg.seed)
    init_state = copy.deepcopy(Encoder(cfg.width, cfg.dim).state_dict())

    random_encoder = Encoder(cfg.width, cfg.dim)
    random_encoder.load_state_dict(init_state)
    baselines = {
        "random_encoder": knn_accuracy(
            embed(random_encoder, data["x_train"], features=True),
            data["y_train"],
            embed(random_encoder, data["x_test"], features=True),
            data["y_test"],
            cfg.knn_k,
            cfg.knn_temp,
        ),
        "raw_pixels": knn_accuracy(
            data["x_train"].flatten(1),
            data["y_train"],
            data["x_test"].flatten(1),
            data["y_test"],
            cfg.knn_k,
            cfg.knn_temp,
        ),
    }
    print(
        f"digits: {len(data['x_train'])} train / {len(data['x_test'])} held out; encoder "
        f"{n_parameters(random_encoder):,} parameters; K = {cfg.n_prototypes}, D = {cfg.dim}; "
        f"k-NN random encoder {baselines['random_encoder']:.1f}%, "
        f"raw pixels {baselines['raw_pixels']:.1f}%",
        flush=True,
    )
    runs = {kind: train(kind, data, cfg, init_state) for kind in cfg.heads}
    results = {
        "command": "python examples/ssl_digits.py " + " ".join(sys.argv[1:] if argv is None
                                                               else argv),
        "config": {**asdict(cfg), "eps": list(cfg.eps)},
        "torch": torch.__version__,
        "encoder_parameters": n_parameters(random_encoder),
        "baselines": baselines,
        "runs": runs,
        "total_seconds": time.perf_counter() - t0,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    for kind, r in runs.items():
        state = r.pop("_state")
        if state is not None:
            torch.save(state, out_dir / f"{kind}_state.pt")
    (out_dir / "ssl_results.json").write_text(json.dumps(results, indent=1))
    plot(results, out_dir / "ssl_diversity.png")
    print(summary(results))
    print(f"total {results['total_seconds']:.0f} s; results in {out_dir}", flush=True)
    return results


if __name__ == "__main__":
    main()
