"""Section "agreement" of ``python -m benchmarks.gpu``: one stream through
:class:`ssl_bridge.GMMPrototypes` on the device and on CPU (the numba fast path), every
covariance type, float32 and bfloat16 embeddings.

The device side starts from the CPU side's state after the first (seeding) step, and
again after the step that ends the warm-up (its restarts), so the figures measure the EM
arithmetic: k-means++ keeps the better of a few candidate seeds, and two candidates can tie
exactly (a pair of outlying points, each seeding the other), the tie then broken by
rounding, so two correct implementations may seed different points; the restarts then keep
the one of lowest inertia, which such a seed can change. ``seeding_rows_differ`` reports,
separately, how many seeds a fresh device module chose differently from a fresh CPU one on
the same first batch, and ``restart_rows_differ`` how many means differed after the
restarts, before the second copy (means more than 1e-4 apart, relative; not measured under
autocast, whose first M-step differs). Both sides draw from CPU generators
(``ssl_bridge._random.draws_on_cpu``).

In smoke mode (``--device cpu``) the device side is the generic array-API path on CPU
tensors (:func:`benchmarks._gpu_util.generic_path`): the code CUDA runs, against the numba
path.
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np

from ._common import embedding_clusters
from ._gpu_util import Budget, generic_path, matmul_precision, rel_diff

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
#: the largest relative difference allowed (means, weights, targets); both sides see the same
#: bfloat16 values, which the bridge computes in float32, so float32-sized differences are
#: expected for both; the bfloat16 bound is bfloat16's unit roundoff, room for an E-step that
#: would run in bfloat16
TOLERANCE = {"float32": 1e-5, "bfloat16": 2.0**-8}
TARGETS_TEMPERATURE = 1.0  # the posterior itself; sharpening multiplies logit errors by 1/T
#: float32 targets carry the rounding of the log-densities they are the softmax of: about
#: ``eps |l|`` of the row's largest ``l`` (a sum of D products), twice through the softmax,
#: divided by T. Their bound is the larger of the tolerance and this many times that.
TARGETS_ROUNDING = 4.0
SEED_ROW_RTOL = 1e-4  # float32 M-step differences are ~1e-7; another seed, O(1)


def sizes(smoke: bool) -> dict[str, tuple[int, int, int, int]]:
    """``(K, D, B, n_batches)`` per covariance type: small for the D x D types."""
    if smoke:
        small, large = (16, 8, 256, 4), (64, 16, 256, 4)
    else:
        # (the large case's warm-up holds 8 batches: 4 steps more after its restarts)
        small, large = (64, 32, 1024, 8), (1024, 128, 4096, 12)
    return {"full": small, "tied": small, "diag": large, "spherical": large}


def _batches(K: int, D: int, B: int, n: int, seed: int) -> list:
    import torch

    clusters = embedding_clusters(K, D, seed=seed)
    rng = np.random.default_rng(seed + 1)
    return [torch.from_numpy(clusters.sample(B, rng, np.float64)) for _ in range(n)]


def _seeds_differ(a, b) -> int:
    """Components whose means differ by more than SEED_ROW_RTOL (relative to the largest
    entry), or seeded in one module only."""
    ma, mb = a.means.detach().cpu(), b.means.detach().cpu()
    scale = float(mb.abs().max()) or 1.0
    rows = (ma - mb).abs().amax(dim=1) > SEED_ROW_RTOL * scale
    rows |= a.seeded.cpu() != b.seeded.cpu()
    return int(rows.sum())


def compare(
    covariance_type: str,
    dtype_name: str,
    size: tuple[int, int, int, int],
    device: str,
    *,
    seed: int = 0,
    autocast: bool = False,
) -> dict[str, Any]:
    """One case: the largest relative differences of means, weights and targets.

    ``autocast``: the device side's updates and targets run under
    ``torch.autocast(device_type, torch.bfloat16)`` (float32 embeddings), as a training step
    wrapped in autocast would call them; the CPU side does not. Both sides draw their
    random numbers from CPU generators (``ssl_bridge._random.draws_on_cpu``: a CUDA
    generator draws another stream than a CPU one of the same seed), so that the seeds
    can differ only by rounding.
    """
    from ssl_bridge import _random

    with _random.draws_on_cpu():
        return _compare(covariance_type, dtype_name, size, device, seed=seed,
                        autocast=autocast)


def _compare(covariance_type: str, dtype_name: str, size: tuple[int, int, int, int],
             device: str, *, seed: int, autocast: bool) -> dict[str, Any]:
    import torch

    from ssl_bridge import GMMPrototypes
    from ssl_bridge._state import DONE as WARMUP_DONE

    K, D, B, n = size
    dtype = getattr(torch, dtype_name)
    dev_type = torch.device(device).type
    batches = [b.to(dtype) for b in _batches(K, D, B, n, seed)]

    def side():
        stack = contextlib.ExitStack()
        if dev_type == "cpu":
            stack.enter_context(generic_path())
        if autocast:
            stack.enter_context(torch.autocast(dev_type, dtype=torch.bfloat16))
        return stack

    def make():
        return GMMPrototypes(K, D, covariance_type=covariance_type, random_state=seed)

    ref = make()
    ref.update(batches[0])
    seeds = None
    if not autocast:
        fresh = make().to(device)
        with side():
            fresh.update(batches[0].to(device))
        seeds = _seeds_differ(fresh, ref)
    dev = make().to(device)
    dev.load_state_dict(ref.state_dict())
    restarts = None
    for b in batches[1:]:
        warming = int(ref.warmup_progress[0]) != WARMUP_DONE
        ref.update(b)
        with side():
            dev.update(b.to(device))
        if warming and int(ref.warmup_progress[0]) == WARMUP_DONE:  # (the restarts ran)
            restarts = None if autocast else _seeds_differ(dev, ref)
            dev.load_state_dict(ref.state_dict())
    probe = batches[-1]
    q_ref = ref.targets(probe, temperature=TARGETS_TEMPERATURE)
    with side():
        q_dev = dev.targets(probe.to(device), temperature=TARGETS_TEMPERATURE)
    with side():
        top = dev.logits(probe.to(device), kind="gaussian").amax(dim=1).abs().amax()
    rounding = (TARGETS_ROUNDING * float(torch.finfo(torch.float32).eps) * float(top)
                / TARGETS_TEMPERATURE)
    # the device's state on the CPU path: the targets' difference the E-step alone makes
    # (the states' own float32 differences, amplified by the covariances, are apart)
    mirror = make()
    mirror.load_state_dict({k: v.cpu() for k, v in dev.state_dict().items()})
    q_mirror = mirror.targets(probe, temperature=TARGETS_TEMPERATURE)
    out = {
        "covariance_type": covariance_type,
        "dtype": dtype_name,
        "autocast_bf16": autocast,
        "K": K, "D": D, "B": B, "n_batches": n,
        "means_rel": rel_diff(dev.means, ref.means),
        "weights_rel": rel_diff(dev.weights, ref.weights),
        "targets_rel": rel_diff(q_dev, q_ref),
        "targets_estep_rel": rel_diff(q_dev, q_mirror),
        "targets_dtype": str(q_dev.dtype).replace("torch.", ""),
        "n_reseeded_cpu": int(ref.n_reseeded), "n_reseeded_device": int(dev.n_reseeded),
        "seeding_rows_differ": seeds,
        "restart_rows_differ": restarts,
    }
    worst = max(out["means_rel"], out["weights_rel"], out["targets_rel"])
    out["worst_rel"] = worst
    state = max(out["means_rel"], out["weights_rel"])
    if autocast:  # informational: no target for an E-step in bfloat16
        out["tolerance"], out["met"], out["met_state"] = None, None, None
    else:
        tol = out["tolerance"] = TOLERANCE[dtype_name]
        out["targets_tolerance"] = max(tol, rounding)
        out["met"] = bool(np.isfinite(worst) and state <= tol
                          and out["targets_estep_rel"] <= out["targets_tolerance"])
        # the state alone (means, weights): float32 targets of a sharp mixture carry the
        # rounding of log-densities of size |log p| (eps * |log p| / T), on any device
        out["met_state"] = bool(np.isfinite(state) and state <= tol)
    notes = []
    if out["n_reseeded_cpu"] != out["n_reseeded_device"]:
        notes.append("reseeding differed (a discrete decision): the states diverged")
    if out["targets_dtype"] not in ("float32", "float64"):
        notes.append(f"targets came back in {out['targets_dtype']}")
    out["note"] = "; ".join(notes)
    return out


def run(device: str, smoke: bool, budget: Budget, reserve: float = 0.0,
        seed: int = 0) -> dict[str, Any]:
    """Every covariance type x {float32, bfloat16}, then float32 under bf16 autocast."""
    rows: list[dict[str, Any]] = []
    skipped: list[str] = []
    plan = [(ct, dt, False) for ct in COVARIANCE_TYPES for dt in ("float32", "bfloat16")]
    plan += [(ct, "float32", True) for ct in COVARIANCE_TYPES]
    with matmul_precision(tf32=False):  # full float32 products on both sides
        for ct, dt, ac in plan:
            if budget.expired(reserve):
                skipped.append(f"{ct}/{dt}" + ("/autocast" if ac else ""))
                continue
            try:
                rows.append(compare(ct, dt, sizes(smoke)[ct], device, seed=seed, autocast=ac))
            except Exception as exc:  # one case failing (say, not positive definite) is a row
                rows.append({"covariance_type": ct, "dtype": dt, "autocast_bf16": ac,
                             "error": f"{type(exc).__name__}: {exc}"[:500],
                             "met": None if ac else False})
    side = ("the generic array-API path on CPU tensors (both sides on CPU)"
            if device == "cpu" else f"GMMPrototypes on {device} (the array-API path)")
    met = [r["met"] for r in rows if r["met"] is not None]
    return {
        "reference": "GMMPrototypes on CPU tensors (the numba fast path)",
        "device_side": side,
        "relative_difference": "max |device - cpu| / max |cpu|, per array",
        "targets_temperature": TARGETS_TEMPERATURE,
        "tolerance": TOLERANCE,
        "target": "float32: every relative difference <= 1e-5",
        "met": bool(met) and all(met) and not skipped,
        "errors": sum(1 for r in rows if r.get("error")),
        "rows": rows,
        "skipped_for_budget": skipped,
    }
