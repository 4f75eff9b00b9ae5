"""Shared pieces of the benchmark suite: configuration, timing, data, rows, child processes.

Timing rules (every workload follows them):

- a measurement is the **median** of ``repeats`` timed repetitions; a warm-up run (numba
  compilation, first-touch page faults, lazy imports) precedes them and is not counted;
- the two sides of a ratio are timed **interleaved** (ours, baseline, ours, baseline, ...),
  so that a noisy neighbour on a shared machine slows both rather than one;
- set-up (building a fresh model, drawing a batch) runs outside the timer.
"""

from __future__ import annotations

import gc
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent


# ----------------------------------------------------------------------------- configuration
@dataclass(frozen=True)
class Config:
    """What every workload receives: the size mode and the number of timed repetitions."""

    smoke: bool = False
    repeats: int | None = None  # None: each workload's own default
    seed: int = 0

    @property
    def settle(self) -> float:
        """Seconds of pause before each timed call (:data:`SETTLE_S`; none in smoke mode)."""
        return 0.0 if self.smoke else SETTLE_S

    def reps(self, full_default: int, smoke_default: int = 1) -> int:
        """Timed repetitions for a measurement (the override wins, then the mode's default)."""
        if self.repeats is not None:
            return max(1, int(self.repeats))
        return smoke_default if self.smoke else full_default


# ----------------------------------------------------------------------------- timing
#: Pause (seconds, untimed) before each timed call, so that the thread pools of the case
#: before have gone idle: OpenBLAS's workers spin for about 0.1 s after a call (2**28 clock
#: ticks, its default ``OPENBLAS_THREAD_TIMEOUT``), OpenMP's for a while too. On 2 cores, one
#: NumPy product's spinning worker doubled the time of the ``partial_fit`` timed after it
#: (workload 3 spherical: 33 -> 62 ms), and ours slowed the products after them by ~10 %.
SETTLE_S = 0.25

@dataclass
class Timing:
    """Wall seconds of each timed repetition (``median`` is what the tables report), and the
    process CPU seconds of each (all threads; a diagnostic for loaded machines)."""

    times: list[float] = field(default_factory=list)
    cpu_times: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return float(np.median(self.times)) if self.times else math.nan

    def to_dict(self) -> dict[str, Any]:
        return {
            "median_s": self.median,
            "times_s": [round(t, 6) for t in self.times],
            "cpu_median_s": float(np.median(self.cpu_times)) if self.cpu_times else math.nan,
        }


def _timed(
    fn: Callable[..., Any], setup: Callable[[], Any] | None
) -> tuple[float, float, Any]:
    arg = setup() if setup is not None else None
    gc.collect()
    c0, t0 = time.process_time(), time.perf_counter()
    out = fn(arg) if setup is not None else fn()
    return time.perf_counter() - t0, time.process_time() - c0, out


def interleaved(
    cases: dict[str, Callable[..., Any]],
    *,
    repeats: int,
    warmup: int = 1,
    setups: dict[str, Callable[[], Any]] | None = None,
    settle: float = 0.0,
) -> dict[str, Timing]:
    """Time every case ``repeats`` times, round-robin, after ``warmup`` untimed rounds.

    ``cases[name]`` is called with no argument, or with the result of ``setups[name]()``
    (which runs before the timer starts) when a set-up is given. ``settle``: seconds of
    pause before each timed call (:data:`SETTLE_S`, ``Config.settle``).
    """
    setups = setups or {}
    out = {name: Timing() for name in cases}
    for rnd in range(warmup + repeats):
        for name, fn in cases.items():
            if settle > 0 and rnd >= warmup:
                time.sleep(settle)
            dt, cpu, _ = _timed(fn, setups.get(name))
            if rnd >= warmup:
                out[name].times.append(dt)
                out[name].cpu_times.append(cpu)
    return out


def median_time(
    fn: Callable[..., Any],
    *,
    repeats: int,
    warmup: int = 1,
    setup: Callable[[], Any] | None = None,
    settle: float = 0.0,
) -> Timing:
    """Median-of-``repeats`` timing of one callable (see :func:`interleaved`)."""
    setups = {"fn": setup} if setup is not None else None
    return interleaved(
        {"fn": fn}, repeats=repeats, warmup=warmup, setups=setups, settle=settle
    )["fn"]


# ----------------------------------------------------------------------------- data
@dataclass(frozen=True)
class Clusters:
    """A Gaussian mixture to draw benchmark data from (axis-aligned unless ``rot`` is set)."""

    centres: np.ndarray  # (K, D)
    scales: np.ndarray  # (K, D) per-feature standard deviations
    weights: np.ndarray  # (K,)
    rot: np.ndarray | None = None  # (K, D, D) rotations for full-covariance clusters

    def sample(self, n: int, rng: np.random.Generator, dtype: Any = np.float64) -> np.ndarray:
        K, D = self.centres.shape
        y = rng.choice(K, size=n, p=self.weights)
        Z = rng.standard_normal((n, D)) * self.scales[y]
        if self.rot is not None:
            Z = np.einsum("nd,nde->ne", Z, self.rot[y])
        return (self.centres[y] + Z).astype(dtype, copy=False)


def overlapping_clusters(
    n_clusters: int,
    n_features: int,
    *,
    seed: int = 0,
    separation: float = 4.0,
    full: bool = False,
) -> Clusters:
    """``n_clusters`` overlapping clusters: the typical distance between two centres is
    ``separation`` within-cluster standard deviations (4: neighbours overlap visibly), cluster
    scales vary by +-30 % (and per feature), weights are Dirichlet(5). ``full``: each
    cluster is also randomly rotated (a full covariance)."""
    rng = np.random.default_rng(seed)
    K, D = n_clusters, n_features
    centres = rng.standard_normal((K, D)) * separation / math.sqrt(2 * D)
    scales = rng.uniform(0.7, 1.3, (K, 1)) * rng.uniform(0.7, 1.3, (K, D))
    weights = rng.dirichlet(np.full(K, 5.0))
    rot = None
    if full:
        rot = np.stack([np.linalg.qr(rng.standard_normal((D, D)))[0] for _ in range(K)])
    return Clusters(centres, scales, weights, rot)


def embedding_clusters(n_clusters: int, n_features: int, *, seed: int = 0) -> Clusters:
    """Directions on the unit sphere plus noise: stand-ins for L2-normalised embeddings."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_clusters, n_features))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    noise = 0.5 / math.sqrt(n_features)
    scales = np.full((n_clusters, n_features), noise) * rng.uniform(0.7, 1.3, (n_clusters, 1))
    return Clusters(centres, scales, np.full(n_clusters, 1.0 / n_clusters))


def batches(X: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Contiguous views of consecutive batches."""
    return [X[s : s + batch_size] for s in range(0, X.shape[0], batch_size)]


def stream(
    clusters: Clusters, n_total: int, batch_size: int, *, seed: int, dtype: Any
) -> Iterator[np.ndarray]:
    """Batches drawn on the fly: the stream is never held in memory."""
    rng = np.random.default_rng(seed)
    done = 0
    while done < n_total:
        n = min(batch_size, n_total - done)
        yield clusters.sample(n, rng, dtype)
        done += n


# ----------------------------------------------------------------------------- rows
_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": lambda a, b: a >= b,
    "<=": lambda a, b: a <= b,
    "<": lambda a, b: a < b,
    ">": lambda a, b: a > b,
}


def row(
    *,
    case: str,
    quantity: str,
    unit: str,
    ours: float,
    baseline_name: str,
    baseline: float,
    ratio: float,
    ratio_def: str,
    target: tuple[str, str, float] | None = None,
    note: str = "",
    **extra: Any,
) -> dict[str, Any]:
    """One line of the results table.

    ``target`` is ``(on, op, value)`` with ``on`` in {"ratio", "ours"}: e.g.
    ``("ratio", ">=", 3.0)`` or ``("ours", "<", 1.0)``. ``met`` is None without a target.
    """
    met = None
    target_text = ""
    if target is not None:
        on, op, value = target
        subject = ratio if on == "ratio" else ours
        met = bool(np.isfinite(subject) and _OPS[op](subject, value))
        target_text = f"{on} {op} {value:g}" + (f" {unit}" if on == "ours" else "")
    out = {
        "case": case,
        "quantity": quantity,
        "unit": unit,
        "ours": float(ours),
        "baseline_name": baseline_name,
        "baseline": float(baseline),
        "ratio": float(ratio),
        "ratio_def": ratio_def,
        "target": target_text,
        "met": met,
        "note": note,
    }
    out.update(extra)
    return out


# ----------------------------------------------------------------------------- child processes
def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The parent's environment, with the repository importable and ``extra`` on top."""
    env = dict(os.environ)
    path = env.get("PYTHONPATH", "")
    env["PYTHONPATH"] = str(REPO_ROOT) + (os.pathsep + path if path else "")
    if extra:
        env.update(extra)
    return env


def run_child(
    code: str,
    *,
    args: list[str] | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 600,
) -> dict:
    """Run ``code`` (with ``sys.argv[1:] == args``) in a fresh interpreter; its last stdout
    line must be a JSON object.

    The returned dict gains ``process_s``: the child's wall time as seen by the parent
    (interpreter start-up included).
    """
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", code, *(args or [])],
        cwd=REPO_ROOT,
        env=env if env is not None else child_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(
            f"benchmark child failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}"
        )
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    out = json.loads(lines[-1])
    out["process_s"] = wall
    return out


def silence_warnings() -> None:
    """Convergence warnings of deliberately truncated fits are expected here."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
