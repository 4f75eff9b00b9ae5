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

    python examples/ssl_digits.py            # about 10 minutes on 2 CPU cores
    python examples/ssl_digits.py --fast     # a smoke run of a few seconds

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

    epochs: int = 200
    batch_size: int = 128
    n_prototypes: int = 1024
    dim: int = 64  # projection (bottleneck) dimension, where the prototypes live
    width: int = 16  # channels of the first convolution
    n_local: int = 2  # local (zoomed-in) views, seen by the student only
    lr: float = 5e-4  # peak AdamW learning rate (after linear warm-up)
    min_lr: float = 1e-5
    warmup_epochs: int = 10
    weight_decay: float = 0.04
    clip_grad: float = 3.0
    momentum_teacher: float = 0.995  # EMA momentum, cosine schedule up to 1
    student_temp: float = 0.1
    teacher_temp: float = 0.04  # DINO teacher sharpening (joint head)
    center_momentum: float = 0.9
    freeze_last_layer_epochs: int = 1  # DINO: the learnable prototypes get no update at first
    gmm_target_temp: float = 1.0  # temperature of the GMM posterior used as target
    gmm_forgetting_rate: float = 1e-3
    gmm_covariance_type: str = "spherical"
    knn_k: int = 20
    knn_temp: float = 0.07
    log_every: int = 50  # steps between two collapse measurements
    seed: int = 0
    threads: int = 2
    fast: bool = False
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
            cfg.n_prototypes,
            cfg.dim,
            covariance_type=cfg.gmm_covariance_type,
            forgetting_rate=cfg.gmm_forgetting_rate,
            random_state=cfg.seed,
        )

    def parameters(self) -> list[nn.Parameter]:
        return []

    def targets(self, teacher_emb: list[Tensor]) -> list[Tensor]:
        self.head.update(torch.cat(teacher_emb))
        return [self.head.targets(t, temperature=self.cfg.gmm_target_temp) for t in teacher_emb]

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
        return {
            "gmm_weight_effective_components": rep["effective_components"],
            "n_reseeded": _maybe_int(getattr(self.head, "n_reseeded", None)),
        }


def _str_keys(d: dict) -> dict:
    return {str(k): v for k, v in d.items()}


def _maybe_int(v: object) -> int | None:
    try:
        return int(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


@torch.no_grad()
def measure(run: JointRun | GMMRun, teacher: Encoder, x_probe: Tensor, cfg: Config) -> dict:
    """Collapse diagnostics of the prototypes, and how the teacher uses them on ``x_probe``."""
    emb = embed(teacher, x_probe, features=False)
    q = run.probe_targets(emb)
    usage = q.mean(0)
    rep = collapse_report(run.prototypes, weights=usage.clamp_min(0), eps=cfg.eps)
    z = F.normalize(emb, dim=1)
    return {
        "unique": _str_keys(rep["unique"]),
        "unique_fraction": _str_keys(rep["unique_fraction"]),
        # exp(entropy of the mean teacher target): how many prototypes the data really uses
        "effective_usage": rep["effective_components"],
        "argmax_used": int(q.argmax(1).unique().numel()),
        "target_entropy": float(-(q * q.clamp_min(1e-30).log()).sum(1).mean()),
        # std of the normalised teacher embeddings x sqrt(D): ~1 spread out, 0 collapsed
        "embedding_std": float(z.std(0).mean() * math.sqrt(z.shape[1])),
        **run.extra_report(),
    }


def train(kind: str, data: dict[str, Tensor], cfg: Config, init_state: dict) -> dict:
    """One self-supervised run with the given head; returns its history and evaluation."""
    torch.manual_seed(cfg.seed + 1)
    student = Encoder(cfg.width, cfg.dim)
    student.load_state_dict(init_state)
    teacher = copy.deepcopy(student).requires_grad_(False)
    run: JointRun | GMMRun = JointRun(cfg) if kind == "joint" else GMMRun(cfg)

    params = list(student.parameters()) + run.parameters()
    decay = [p for p in params if p.ndim > 1]
    no_decay = [p for p in params if p.ndim <= 1]
    optimizer = torch.optim.AdamW(
        [{"params": decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr,
        weight_decay=cfg.weight_decay,
    )

    x_train = data["x_train"]
    n = len(x_train)
    steps_per_epoch = n // cfg.batch_size
    total = cfg.epochs * steps_per_epoch
    lr_sched = cosine_schedule(cfg.lr, cfg.min_lr, total, cfg.warmup_epochs * steps_per_epoch)
    mom_sched = cosine_schedule(cfg.momentum_teacher, 1.0, total)
    gen = torch.Generator().manual_seed(cfg.seed)  # same batches and views for both heads

    history: list[dict] = []
    losses_log: list[float] = []
    t0 = time.perf_counter()
    step = 0
    for _epoch in range(cfg.epochs):
        order = torch.randperm(n, generator=gen)
        for b in range(steps_per_epoch):
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

            for g in optimizer.param_groups:
                g["lr"] = float(lr_sched[step])
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
    return {
        "head": LABELS[kind],
        "steps": total,
        "seconds": seconds,
        "knn_accuracy": knn,
        "final": history[-1],
        "history": history,
    }


# ---------------------------------------------------------------------------------- output


def plot(results: dict, path: Path) -> bool:
    """Unique-% over training, one panel per eps, both heads; False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (pip install matplotlib): no plot.", file=sys.stderr)
        return False
    eps = results["config"]["eps"]
    K = results["config"]["n_prototypes"]
    fig, axes = plt.subplots(1, len(eps), figsize=(4 * len(eps), 3.6), sharey=True)
    for ax, e in zip(np.atleast_1d(axes), eps, strict=True):
        for kind, style, lw in (("joint", "C3-", 3.0), ("gmm", "C0--", 1.6)):
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


def parse_args(argv: list[str] | None) -> tuple[Config, Path]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=None, help="training epochs (default 200)")
    p.add_argument("--n-prototypes", type=int, default=None, help="K (default 1024)")
    p.add_argument("--out-dir", type=Path, default=Path("docs/img"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    p.add_argument("--gmm-forgetting-rate", type=float, default=None)
    p.add_argument("--gmm-target-temp", type=float, default=None)
    p.add_argument("--teacher-temp", type=float, default=None)
    p.add_argument("--fast", action="store_true", help="a tiny smoke run (seconds)")
    a = p.parse_args(argv)
    cfg = Config(seed=a.seed, threads=a.threads, fast=a.fast)
    if a.fast:
        cfg.epochs, cfg.n_prototypes, cfg.batch_size, cfg.width = 2, 32, 64, 8
        cfg.n_local, cfg.warmup_epochs, cfg.log_every, cfg.n_train = 1, 1, 4, 384
    for name in ("epochs", "n_prototypes", "gmm_forgetting_rate", "gmm_target_temp",
                 "teacher_temp"):
        if getattr(a, name) is not None:
            setattr(cfg, name, getattr(a, name))
    return cfg, a.out_dir


def main(argv: list[str] | None = None) -> dict:
    cfg, out_dir = parse_args(argv)
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
    runs = {kind: train(kind, data, cfg, init_state) for kind in HEADS}
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
    (out_dir / "ssl_results.json").write_text(json.dumps(results, indent=1))
    plot(results, out_dir / "ssl_diversity.png")
    print(summary(results))
    print(f"total {results['total_seconds']:.0f} s; results in {out_dir}", flush=True)
    return results


if __name__ == "__main__":
    main()
