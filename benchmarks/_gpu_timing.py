"""Section "timing" of ``python -m benchmarks.gpu``: one training step of the decoupled head
(:class:`ssl_bridge.GMMPrototypes`) against one of the learnable DINO-style head
(:class:`ssl_bridge.JointPrototypes`), and one plain ``(B, D) @ (D, K)`` product as the unit.

Decoupled step: ``head.update(teacher)``, ``q = head.targets(teacher)``, the student's
``head.logits(proj(x))``, cross-entropy against ``q``, backward, AdamW step on the
projection ``proj`` (a ``D x D`` linear layer standing in for the student's last layer).
Learnable step: the teacher's softmax over ``head(teacher)`` (no gradient), the student's
log-softmax over ``head(proj(x))``, cross-entropy, backward, AdamW step on ``proj`` and the
head's ``K x D`` prototypes. The encoders are left out of both (the same cost on both sides).

Each precision, ``f32`` (float32 products in TF32) and ``bf16`` (the whole step under
``torch.autocast(..., dtype=torch.bfloat16)``, ``update`` and ``targets`` included, as a
wrapped training step calls them), times the three cases interleaved, each repetition between
two ``torch.cuda.synchronize()`` calls, after untimed warm-up steps (and, for the decoupled
head, after every prototype is seeded). Peak memory: ``torch.cuda.max_memory_allocated``
over one step, after ``reset_peak_memory_stats``, less what was allocated before the step
(the step's transient memory), and what the case keeps between steps (its state).
"""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ._gpu_util import Budget, matmul_precision, synchronize

STUDENT_TEMPERATURE = 0.1
TEACHER_TEMPERATURE = 0.04  # DINO's teacher temperature (learnable head)
TARGETS_TEMPERATURE = 0.1  # sharpening of the mixture's posterior (decoupled head)
RATIO_TARGET = 0.5  # decoupled step <= 0.5 x learnable step
LR = 1e-4


def teacher_pool(K: int, D: int, B: int, n: int, device: str, seed: int = 0) -> list:
    """``n`` distinct ``(teacher, student_input)`` float32 batches on ``device``: K unit
    directions plus noise (as benchmarks.bridge_forgetting), drawn outside every timer."""
    import torch
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(seed)
    dirs = F.normalize(torch.randn(K, D, generator=g), dim=1)
    out = []
    for _ in range(n):
        lab = torch.randint(0, K, (B,), generator=g)
        t = dirs[lab] + 0.05 * torch.randn(B, D, generator=g)
        s = t + 0.05 * torch.randn(B, D, generator=g)
        out.append((t.to(device), s.to(device)))
    return out


class _Cycle:
    def __init__(self, pool: list) -> None:
        self.pool, self.i = pool, 0

    def next(self):
        item = self.pool[self.i % len(self.pool)]
        self.i += 1
        return item


def _amp(device: str, precision: str):
    import contextlib

    import torch

    if precision == "bf16":
        return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _cross_entropy(q, logits):
    import torch.nn.functional as F

    return -(q * F.log_softmax(logits / STUDENT_TEMPERATURE, dim=1)).sum(dim=1).mean()


def make_matmul(K: int, D: int, B: int, device: str, precision: str, **_: Any) -> Callable:
    import torch

    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    a = torch.randn(B, D, device=device).to(dtype)
    b = torch.randn(D, K, device=device).to(dtype)
    return lambda phases=None: a @ b


def make_decoupled(K: int, D: int, B: int, device: str, precision: str, *, data: _Cycle,
                   covariance_type: str, log: dict) -> Callable:
    """The decoupled step, steady: untimed updates first until every prototype is seeded
    and the warm-up (default size) is over, as in all but the first steps of a run (the
    warm-up's one-off cost: ``python -m benchmarks.warmup_cost``)."""
    import torch

    from ssl_bridge import GMMPrototypes
    from ssl_bridge._state import DONE, phase

    head = GMMPrototypes(K, D, covariance_type=covariance_type).to(device)
    proj = torch.nn.Linear(D, D).to(device)
    opt = torch.optim.AdamW(proj.parameters(), lr=LR)
    log.update(seeding_updates=0, reseeded=[])
    cap = -(-K // B) + 2 + -(-(64 * K) // B) + 8  # (seeding, then the largest warm-up)
    for _ in range(cap):
        if bool(head.seeded.all()) and phase(head.warmup_progress) == DONE:
            break
        with _amp(device, precision):
            head.update(data.next()[0])
        log["seeding_updates"] += 1

    def step(phases: dict | None = None):
        t, s = data.next()
        if phases is not None:
            synchronize(device)
        marks = [time.perf_counter()]

        def mark():
            if phases is not None:
                synchronize(device)
                marks.append(time.perf_counter())

        with _amp(device, precision):
            # one E-step: the update's targets (the posterior before the step)
            info, q = head.update(t, return_targets=True, temperature=TARGETS_TEMPERATURE)
            mark()
            loss = _cross_entropy(q, head.logits(proj(s)))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        mark()
        log["reseeded"].append(info["n_reseeded"])
        if phases is not None:
            names = ("update with targets", "student")
            for name, a, b in zip(names, marks[:-1], marks[1:], strict=True):
                phases.setdefault(name, []).append(b - a)

    return step


def make_learnable(K: int, D: int, B: int, device: str, precision: str, *, data: _Cycle,
                   **_: Any) -> Callable:
    import torch

    from ssl_bridge import JointPrototypes

    head = JointPrototypes(D, K).to(device)
    proj = torch.nn.Linear(D, D).to(device)
    params = list(proj.parameters()) + [p for p in head.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=LR)

    def step(phases=None):
        t, s = data.next()
        with _amp(device, precision):
            with torch.no_grad():
                q = torch.softmax(head(t) / TEACHER_TEMPERATURE, dim=1)
            loss = _cross_entropy(q, head(proj(s)))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


FACTORIES = {"matmul": make_matmul, "decoupled": make_decoupled, "learnable": make_learnable}


def _allocated(device: str) -> int | None:
    import torch

    if torch.device(device).type != "cuda":
        return None
    synchronize(device)
    return torch.cuda.memory_allocated(device)


def _peak_of_one(fn: Callable, device: str) -> int | None:
    import torch

    if torch.device(device).type != "cuda":
        return None
    synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    base = torch.cuda.memory_allocated(device)
    fn()
    synchronize(device)
    return torch.cuda.max_memory_allocated(device) - base


def _median(xs: list[float]) -> float:
    return float(np.median(xs)) if xs else math.nan


def time_precision(precision: str, *, K: int, D: int, B: int, device: str, repeats: int,
                   warmup: int, budget: Budget, reserve: float, covariance_type: str,
                   pool: list) -> dict[str, Any]:
    """The three cases at one precision: medians, transient and state memory, ratios."""
    import torch

    data = _Cycle(pool)
    logs: dict[str, dict] = {"decoupled": {}}
    fns, memory = {}, {}
    with matmul_precision(tf32=True):
        for name, factory in FACTORIES.items():
            before = _allocated(device)
            fn = factory(K, D, B, device, precision, data=data,
                         covariance_type=covariance_type, log=logs.setdefault(name, {}))
            for _ in range(warmup):
                fn()
            after = _allocated(device)
            transient = _peak_of_one(fn, device)
            memory[name] = {
                "state_bytes": None if before is None else after - before,
                "step_peak_bytes": transient,
                "peak_total_bytes": (None if transient is None
                                     else transient + after - before),
            }
            fns[name] = fn
        times: dict[str, list[float]] = {name: [] for name in fns}
        first_timed = len(logs["decoupled"].get("reseeded", []))
        for rnd in range(repeats):
            if rnd >= 1 and budget.expired(reserve):
                break
            for name, fn in fns.items():
                synchronize(device)
                t0 = time.perf_counter()
                fn()
                synchronize(device)
                times[name].append(time.perf_counter() - t0)
        reseeded = logs["decoupled"].get("reseeded", [])[first_timed:]
        phases: dict[str, list[float]] = {}
        for _ in range(min(3, repeats)):
            if budget.expired(reserve):
                break
            fns["decoupled"](phases)
    med = {name: _median(ts) for name, ts in times.items()}
    out = {
        "precision": precision,
        "median_s": med,
        "times_s": {name: [round(t, 6) for t in ts] for name, ts in times.items()},
        "memory": memory,
        "decoupled_phases_median_s": {k: _median(v) for k, v in phases.items()},
        "ratio_decoupled_over_learnable": med["decoupled"] / med["learnable"],
        "decoupled_in_matmuls": med["decoupled"] / med["matmul"],
        "learnable_in_matmuls": med["learnable"] / med["matmul"],
        "seeding_updates": logs["decoupled"].get("seeding_updates"),
        "reseeded_per_step": float(np.mean(reseeded)) if reseeded else 0.0,  # timed steps
        "repeats_done": min(len(ts) for ts in times.values()),
    }
    out["met"] = bool(math.isfinite(out["ratio_decoupled_over_learnable"])
                      and out["ratio_decoupled_over_learnable"] <= RATIO_TARGET)
    del fns
    gc.collect()
    if torch.device(device).type == "cuda":
        torch.cuda.empty_cache()
    return out


def run(*, K: int, D: int, B: int, device: str, repeats: int, warmup: int, budget: Budget,
        reserve: float, covariance_type: str, seed: int = 0) -> dict[str, Any]:
    import torch

    n_pool = -(-K // B) + 2 + 3 * (warmup + 2 + repeats + 3)
    pool = teacher_pool(K, D, B, min(n_pool, 64), device, seed)
    rows = []
    for precision in ("f32", "bf16"):
        if rows and budget.expired(reserve):
            break
        try:
            rows.append(time_precision(
                precision, K=K, D=D, B=B, device=device, repeats=repeats, warmup=warmup,
                budget=budget, reserve=reserve, covariance_type=covariance_type, pool=pool,
            ))
        except Exception as exc:  # keep the other precision's row
            rows.append({"precision": precision, "met": False,
                         "error": f"{type(exc).__name__}: {exc}"[:500]})
            gc.collect()
            if torch.device(device).type == "cuda":
                torch.cuda.empty_cache()
    return {
        "K": K, "D": D, "B": B,
        "covariance_type": covariance_type,
        "decoupled_path": ("the numba fast path (CPU tensors)" if device == "cpu"
                           else f"the array-API path on {device}"),
        "repeats": repeats, "warmup": warmup,
        "temperatures": {"student": STUDENT_TEMPERATURE, "teacher": TEACHER_TEMPERATURE,
                         "targets": TARGETS_TEMPERATURE},
        "target": f"decoupled / learnable <= {RATIO_TARGET}",
        "timer": "torch.cuda.synchronize() around each step" if device != "cpu"
                 else "time.perf_counter() around each step",
        "rows": rows,
    }
