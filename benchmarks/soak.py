"""Long-stream soak: does anything degrade over a stream of 20 million samples?

    python -m benchmarks.soak                     # 20 M samples, a few minutes
    python -m benchmarks.soak --samples 5000000   # shorter
    python -m benchmarks.soak --smoke             # ~2 s, for the test suite

The stream is generated on the fly (nothing is stored): ``--clusters`` (24) Gaussian clusters
in D = 32 with unequal weights and spreads whose centres orbit slowly (radius 3 standard
deviations, one revolution per 10 M samples), plus 1 % outliers from a broad Gaussian
(std 12). An ``OnlineGaussianMixture`` (K = 32, ``diag``, float32, batches of 4096,
``forgetting_rate`` 2e-4: each component remembers about 5 000 of its own samples, so it
tracks the drift) learns it with ``partial_fit``.

Every window of about 1 M samples it records: throughput of ``partial_fit`` over the window
(samples per wall second and per process-CPU second), resident memory, the held-out
log-likelihood per sample on fresh data of the *current* distribution (with its outliers)
and the same for the true generating density (the oracle), reseeds in the window, live
components, Python objects alive. At the end: peak memory and a verdict that nothing
degrades, computed from those figures (see :func:`verdict`). Writes JSON (default
``benchmarks/results/soak.json``).
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import resource
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import logsumexp

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = REPO_ROOT / "benchmarks" / "results" / "soak.json"

# Verdict tolerances (documented in docs/benchmarks.md, "Long-stream soak").
THROUGHPUT_TOLERANCE = 0.25  # last windows' throughput >= (1 - this) x the median window
RSS_GROWTH_MIB = 16.0  # RSS after warm-up may not grow by more than this
LL_TOLERANCE = 0.05  # nats/sample: last windows' oracle gap <= first windows' gap + this
N_EDGE = 3  # windows averaged at the start (after warm-up) and at the end


@dataclass(frozen=True)
class SoakConfig:
    samples: int = 20_000_000
    window: int = 1_000_000
    batch_size: int = 4096
    n_features: int = 32
    n_components: int = 32
    n_clusters: int = 24
    outlier_fraction: float = 0.01
    outlier_std: float = 12.0
    orbit_radius: float = 3.0
    orbit_period: int = 10_000_000  # samples per revolution of the cluster centres
    forgetting_rate: float = 2e-4
    heldout: int = 16_384
    seed: int = 0


class DriftingStream:
    """Clusters whose centres orbit slowly, plus broad outliers; the exact density known."""

    def __init__(self, cfg: SoakConfig) -> None:
        self.cfg = cfg
        rng = np.random.default_rng(cfg.seed)
        C, D = cfg.n_clusters, cfg.n_features
        self.centres = rng.normal(0.0, 4.0, (C, D))
        # an orthonormal pair (u_k, v_k) per cluster: the plane of its orbit
        basis = np.linalg.qr(rng.normal(size=(C, D, 2)))[0]
        self.u, self.v = basis[:, :, 0], basis[:, :, 1]
        self.phase = rng.uniform(0, 2 * np.pi, C)
        self.stds = rng.uniform(0.6, 1.4, C)
        self.weights = rng.dirichlet(np.full(C, 5.0))
        self.rng = np.random.default_rng(cfg.seed + 1)

    def means_at(self, t: float) -> np.ndarray:
        angle = 2 * np.pi * t / self.cfg.orbit_period + self.phase
        r = self.cfg.orbit_radius
        return (self.centres + r * np.cos(angle)[:, None] * self.u
                + r * np.sin(angle)[:, None] * self.v)

    def draw(self, n: int, t: float, rng: np.random.Generator | None = None) -> np.ndarray:
        """``n`` float32 samples of the distribution at stream time ``t`` (samples seen)."""
        rng = self.rng if rng is None else rng
        D = self.cfg.n_features
        labels = rng.choice(self.cfg.n_clusters, size=n, p=self.weights)
        X = rng.standard_normal((n, D), dtype=np.float32)
        X *= self.stds[labels, None].astype(np.float32)
        X += self.means_at(t)[labels].astype(np.float32)
        out = rng.random(n) < self.cfg.outlier_fraction
        if out.any():
            X[out] = rng.normal(0.0, self.cfg.outlier_std, (int(out.sum()), D))
        return X

    def log_density(self, X: np.ndarray, t: float) -> np.ndarray:
        """The true log-density at time ``t`` (float64)."""
        X = X.astype(np.float64)
        D = self.cfg.n_features
        mu = self.means_at(t)
        d2 = (X * X).sum(1)[:, None] - 2 * X @ mu.T + (mu * mu).sum(1)[None, :]
        var = self.stds**2
        comp = (np.log((1 - self.cfg.outlier_fraction) * self.weights)
                - 0.5 * D * np.log(2 * np.pi * var) - 0.5 * np.maximum(d2, 0) / var)
        s2 = self.cfg.outlier_std**2
        out = (np.log(self.cfg.outlier_fraction) - 0.5 * D * np.log(2 * np.pi * s2)
               - 0.5 * (X * X).sum(1) / s2)
        return logsumexp(np.column_stack([comp, out]), axis=1)


def rss_mib() -> float:
    """Resident memory now (MiB)."""
    try:
        import psutil

        return psutil.Process().memory_info().rss / 2**20
    except ImportError:
        pass
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return math.nan


def peak_rss_mib() -> float:
    """Peak resident memory of the process so far (MiB)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def verdict(windows: list[dict[str, Any]]) -> dict[str, Any]:
    """Nothing degrades: throughput, memory and quality at the end match the start.

    The first window is warm-up (seeding, numba caches, first-touch pages) and is excluded.
    - throughput: the median of the last ``N_EDGE`` windows' samples per CPU-second is at
      least ``1 - THROUGHPUT_TOLERANCE`` of the median window's (CPU time, because wall
      time on a shared machine measures the neighbours; wall figures are reported too);
    - memory: RSS at the end exceeds RSS after warm-up by at most ``RSS_GROWTH_MIB``;
    - quality: the held-out gap to the oracle (oracle LL - model LL, nats per sample)
      averaged over the last ``N_EDGE`` windows is at most the first ``N_EDGE`` windows'
      average + ``LL_TOLERANCE``;
    - reseeding does not run away: reseeds in the second half <= 2 x first half + 10.
    """
    body = windows[1:] if len(windows) > 1 else windows
    k = max(1, min(N_EDGE, len(body) // 2))
    tput = np.array([w["throughput_cpu"] for w in body])
    tput_wall = np.array([w["throughput_wall"] for w in body])
    gaps = np.array([w["oracle_gap"] for w in body])
    reseeds = np.array([w["reseeds"] for w in body])
    half = len(body) // 2
    checks = {
        "throughput": {
            "median_window": float(np.median(tput)),
            "last_windows": float(np.median(tput[-k:])),
            "ratio": float(np.median(tput[-k:]) / np.median(tput)),
            "wall_ratio": float(np.median(tput_wall[-k:]) / np.median(tput_wall)),
            "ok": bool(np.median(tput[-k:]) >= (1 - THROUGHPUT_TOLERANCE) * np.median(tput)),
        },
        "memory": {
            "rss_after_warmup_mib": body[0]["rss_mib"],
            "rss_end_mib": body[-1]["rss_mib"],
            "growth_mib": body[-1]["rss_mib"] - body[0]["rss_mib"],
            "ok": bool(body[-1]["rss_mib"] - body[0]["rss_mib"] <= RSS_GROWTH_MIB),
        },
        "quality": {
            "gap_first_windows": float(gaps[:k].mean()),
            "gap_last_windows": float(gaps[-k:].mean()),
            "ok": bool(gaps[-k:].mean() <= gaps[:k].mean() + LL_TOLERANCE),
        },
        "reseeding": {
            "first_half": int(reseeds[:half].sum()),
            "second_half": int(reseeds[half:].sum()),
            "ok": bool(reseeds[half:].sum() <= 2 * reseeds[:half].sum() + 10),
        },
    }
    checks["nothing_degrades"] = all(c["ok"] for c in checks.values())
    return checks


def run(cfg: SoakConfig, *, log=print, machine_note: bool = True) -> dict[str, Any]:
    from online_gmm import OnlineGaussianMixture

    stream = DriftingStream(cfg)
    model = OnlineGaussianMixture(
        n_components=cfg.n_components,
        covariance_type="diag",
        forgetting_rate=cfg.forgetting_rate,
        random_state=cfg.seed,
    )
    heldout_rng = np.random.default_rng(cfg.seed + 2)
    windows: list[dict[str, Any]] = []
    seen = 0
    w_wall = w_cpu = pf_total = 0.0
    w_samples = 0
    reseeded_before = 0
    t_start = time.perf_counter()
    load_start = _load()
    next_report = min(cfg.window, cfg.samples)
    while seen < cfg.samples:
        n = min(cfg.batch_size, cfg.samples - seen)
        X = stream.draw(n, seen)
        c0, t0 = time.process_time(), time.perf_counter()
        model.partial_fit(X)
        dt = time.perf_counter() - t0
        w_wall += dt
        pf_total += dt
        w_cpu += time.process_time() - c0
        seen += n
        w_samples += n
        if seen >= next_report or seen == cfg.samples:
            H = stream.draw(cfg.heldout, seen, heldout_rng)
            model_ll = float(model.score_samples(H).astype(np.float64).mean())
            oracle_ll = float(stream.log_density(H, seen).mean())
            weights = np.asarray(model.weights_)
            gc.collect()
            win = dict(
                samples=seen,
                elapsed_s=round(time.perf_counter() - t_start, 3),
                throughput_wall=w_samples / w_wall,
                throughput_cpu=w_samples / max(w_cpu, 1e-9),
                rss_mib=round(rss_mib(), 2),
                peak_rss_mib=round(peak_rss_mib(), 2),
                heldout_ll=model_ll,
                oracle_ll=oracle_ll,
                oracle_gap=oracle_ll - model_ll,
                reseeds=int(model.n_reseeded_ - reseeded_before),
                reseeds_total=int(model.n_reseeded_),
                live_components=int(np.sum(weights >= model.dead_threshold / cfg.n_components)),
                effective_components=float(np.exp(-np.sum(weights * np.log(
                    np.where(weights > 0, weights, 1.0))))),
                py_objects=len(gc.get_objects()),
                load_avg=_load(),
            )
            windows.append(win)
            log(
                f"{seen / 1e6:7.2f} M  {win['throughput_wall'] / 1e6:6.3f} M/s wall "
                f"{win['throughput_cpu'] / 1e6:6.3f} M/cpu-s  rss {win['rss_mib']:7.1f} MiB  "
                f"LL {model_ll:8.3f} (oracle {oracle_ll:8.3f}, gap {win['oracle_gap']:6.3f})  "
                f"reseeds {win['reseeds']:3d}  live {win['live_components']}"
            )
            reseeded_before = model.n_reseeded_
            w_wall = w_cpu = 0.0
            w_samples = 0
            next_report = min(next_report + cfg.window, cfg.samples)
    total = time.perf_counter() - t_start
    result = {
        "config": asdict(cfg),
        "command": "python -m benchmarks.soak " + " ".join(sys.argv[1:]),
        "windows": windows,
        "total_seconds": round(total, 2),
        # everything: generating the stream, learning, held-out evaluation
        "overall_throughput_wall": seen / total,
        "partial_fit_seconds": round(pf_total, 2),
        "partial_fit_throughput_wall": seen / pf_total,
        "peak_rss_mib": round(peak_rss_mib(), 2),
        "n_reseeded": int(model.n_reseeded_),
        "n_steps": int(model.n_steps_),
        "final_heldout_ll": windows[-1]["heldout_ll"],
        "final_oracle_ll": windows[-1]["oracle_ll"],
        "load_avg_start": load_start,
        "load_avg_end": _load(),
        "machine": _machine() if machine_note else None,
        "verdict": verdict(windows),
    }
    return result


def _load() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (OSError, AttributeError):
        return None


def _machine() -> dict[str, Any]:
    try:
        from benchmarks._machine import machine_note

        return machine_note()
    except Exception as exc:  # the note is informative only
        import platform

        return {"python": platform.python_version(), "cores": os.cpu_count(),
                "note_error": f"{type(exc).__name__}: {exc}"}


def _run_with_threads(cfg: SoakConfig, threads: int | None, log, **kw) -> dict[str, Any]:
    """``run`` with BLAS and numba limited to ``threads`` (restored afterwards)."""
    if threads is None:
        result = run(cfg, log=log, **kw)
    else:
        import numba
        from threadpoolctl import threadpool_limits

        before = numba.get_num_threads()
        try:
            with threadpool_limits(threads):
                numba.set_num_threads(threads)
                result = run(cfg, log=log, **kw)
        finally:
            numba.set_num_threads(before)
    result["threads"] = threads
    return result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=None,
                        help="stream length (default 20 000 000; 120 000 with --smoke)")
    parser.add_argument("--window", type=int, default=None,
                        help="samples per report (default 1 000 000; 40 000 with --smoke)")
    parser.add_argument("--smoke", action="store_true", help="a ~2 s run for the tests")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=None,
                        help=f"JSON file (default {DEFAULT_OUTPUT.relative_to(REPO_ROOT)}; "
                        "with --smoke nothing unless given)")
    parser.add_argument("--threads", type=int, default=None,
                        help="BLAS and numba threads (default: the libraries' own)")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    base = SoakConfig(seed=args.seed)
    if args.smoke:
        base = SoakConfig(samples=120_000, window=40_000, heldout=2048, seed=args.seed)
    cfg = SoakConfig(**{
        **asdict(base),
        **({"samples": args.samples} if args.samples else {}),
        **({"window": args.window} if args.window else {}),
    })
    if cfg.samples < 1 or cfg.window < 1:
        parser.error("--samples and --window must be positive")
    log = (lambda *a, **k: None) if args.quiet else (lambda s: print(s, flush=True))
    # the machine note (benchmarks._machine) takes seconds: not for the smoke run
    result = _run_with_threads(cfg, args.threads, log, machine_note=not args.smoke)
    v = result["verdict"]
    log(
        f"done: {result['n_steps']} steps in {result['total_seconds']:.1f} s, "
        f"peak RSS {result['peak_rss_mib']:.1f} MiB, reseeds {result['n_reseeded']}, "
        f"nothing degrades: {v['nothing_degrades']}"
    )
    output = args.output if args.output is not None else (None if args.smoke else DEFAULT_OUTPUT)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        tmp = output.with_name(output.name + ".tmp")
        tmp.write_text(json.dumps(result, indent=1) + "\n")
        tmp.replace(output)
        log(f"wrote {output}")
    return result


if __name__ == "__main__":
    main()
