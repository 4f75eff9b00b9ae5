"""river comparison: ``online_gmm.river`` against river's own estimators, one dict at a time
(issue 30), in one process.

1. **Clustering**: ``learn_one`` over ``--rows`` rows (10,000) of 3 well-separated blobs,
   2-D and 8-D, for our ``GaussianMixture(n_components=3)`` (default ``batch_size``, and
   1024, the estimator's default), river's ``cluster.KMeans(n_clusters=3)`` and
   ``cluster.STREAMKMeans(n_clusters=3)`` (their defaults otherwise). Time: the median of 7
   interleaved timed passes (``--repeats``; a fresh model each, made outside the timer; the
   rows are dicts made beforehand), rows/s, and the ratio of our time to river
   ``KMeans``'s (target <= 1). Quality: the NMI of ``predict_one`` on 2,000 held-out rows
   after one pass, against the true blobs.
2. **Batch size**: the same pass for our clusterer at several ``batch_size`` (3 timed
   passes each): rows/s, the held-out NMI and mean log-likelihood after the pass, and the
   *prequential* NMI (``predict_one`` of each row before ``learn_one`` of it, over the whole
   pass: the rows before the first step are all predicted 0, so a larger batch costs here).
3. **Anomaly detection**: the same blobs with 1 % outliers drawn uniformly in a box 4 times
   the blobs' span, streamed prequentially (``score_one`` then ``learn_one`` of each row; 5
   timed passes), our ``GaussianMixtureDetector(n_components=3)`` against river's recipe
   for ``anomaly.HalfSpaceTrees``, ``preprocessing.MinMaxScaler() | HalfSpaceTrees()``: ROC
   AUC of the scores, rows/s and the time ratio (ours / river's).

Usage::

    python -m benchmarks.river_compare              # 10,000 rows (about 5 minutes on 2 cores)
    python -m benchmarks.river_compare --smoke      # tiny sizes (seconds; numbers meaningless)
    python -m benchmarks.river_compare --out /tmp/r # writes river_compare.json and .md there
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

from ._common import Config, interleaved, silence_warnings
from ._machine import describe, load_average, machine_note

DEFAULT_OUT = Path(__file__).resolve().parent / "results"
HELD_OUT = 2_000
OUTLIER_FRACTION = 0.01


# ----------------------------------------------------------------------------- data
def blob_centres(n_features: int, seed: int) -> np.ndarray:
    """Three centres 8 standard deviations from the origin at 120 degrees in the first two
    features (14 apart), jittered by N(0, 1) in every feature: well separated."""
    rng = np.random.default_rng(seed)
    angle = 2 * np.pi * np.arange(3) / 3
    centres = rng.standard_normal((3, n_features))
    centres[:, 0] += 8 * np.cos(angle)
    centres[:, 1] += 8 * np.sin(angle)
    return centres


def blobs(n: int, n_features: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` rows of the three unit-variance blobs of :func:`blob_centres`, and their labels."""
    centres = blob_centres(n_features, seed)
    rng = np.random.default_rng(seed + 1)
    y = rng.integers(0, 3, n)
    return centres[y] + rng.standard_normal((n, n_features)), y


def with_outliers(X: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``X`` with :data:`OUTLIER_FRACTION` of its rows replaced by points drawn uniformly in
    a box 4 times the data's span (centred on it), and the 0/1 outlier labels."""
    rng = np.random.default_rng(seed + 2)
    lo, hi = X.min(axis=0), X.max(axis=0)
    mid, half = (lo + hi) / 2, 2 * (hi - lo)
    is_out = rng.random(X.shape[0]) < OUTLIER_FRACTION
    X = X.copy()
    X[is_out] = mid + rng.uniform(-1, 1, (int(is_out.sum()), X.shape[1])) * half
    return X, is_out.astype(int)


def dicts(X: np.ndarray) -> list[dict[str, float]]:
    names = [f"x{j}" for j in range(X.shape[1])]
    return [dict(zip(names, row, strict=True)) for row in X.tolist()]


# ----------------------------------------------------------------------------- models
def clusterers(seed: int) -> dict[str, Any]:
    """Factories of the compared clusterers: ours at its default batch size and at the
    estimator's (1024), river's at their defaults."""
    from river import cluster

    from online_gmm.river import GaussianMixture

    return {
        "ours GaussianMixture": lambda: GaussianMixture(3, random_state=seed),
        "ours GaussianMixture (batch_size=1024)": lambda: GaussianMixture(
            3, batch_size=1024, random_state=seed),
        "river KMeans": lambda: cluster.KMeans(n_clusters=3, seed=seed),
        "river STREAMKMeans": lambda: cluster.STREAMKMeans(n_clusters=3, seed=seed),
    }


def detectors(seed: int) -> dict[str, Any]:
    from river import anomaly, preprocessing

    from online_gmm.river import GaussianMixtureDetector

    return {
        "ours GaussianMixtureDetector": lambda: GaussianMixtureDetector(3, random_state=seed),
        "river HalfSpaceTrees (MinMaxScaler first)": lambda: (
            preprocessing.MinMaxScaler() | anomaly.HalfSpaceTrees(seed=seed)),
    }


def _learn_pass(rows):
    def run(model) -> None:
        for x in rows:
            model.learn_one(x)
    return run


def _prequential_scores(rows, out: list | None = None):
    def run(model) -> None:
        scores = []
        for x in rows:
            scores.append(model.score_one(x))
            model.learn_one(x)
        if out is not None:
            out[:] = scores
    return run


def _nmi(model, rows, labels) -> float:
    from sklearn.metrics import normalized_mutual_info_score

    return float(normalized_mutual_info_score(labels, [model.predict_one(x) for x in rows]))


def _prequential_nmi(model, rows, labels) -> float:
    from sklearn.metrics import normalized_mutual_info_score

    pred = []
    for x in rows:
        pred.append(model.predict_one(x))
        model.learn_one(x)
    return float(normalized_mutual_info_score(labels, pred))


# ----------------------------------------------------------------------------- sections
def clustering(cfg: Config, n: int, dims: list[int]) -> list[dict[str, Any]]:
    out = []
    for d in dims:
        X, y = blobs(n + HELD_OUT, d, cfg.seed + d)
        train, test = dicts(X[:n]), dicts(X[n:])
        makers = clusterers(cfg.seed)
        t = interleaved({name: _learn_pass(train) for name in makers}, repeats=cfg.reps(7),
                        setups=makers, settle=cfg.settle)
        river_s = t["river KMeans"].median
        for name, make in makers.items():
            model = make()
            _learn_pass(train)(model)
            out.append({
                "n_features": d, "model": name, "rows": n,
                "seconds": t[name].median, "times_s": t[name].times,
                "rows_per_s": n / t[name].median,
                "ratio_to_river_kmeans": t[name].median / river_s,
                "nmi_held_out": _nmi(model, test, y[n:]),
            })
    return out


def batch_sizes(cfg: Config, n: int, dims: list[int], sizes: list[int]) -> list[dict[str, Any]]:
    from online_gmm.river import GaussianMixture

    out = []
    for d in dims:
        X, y = blobs(n + HELD_OUT, d, cfg.seed + d)
        train, test = dicts(X[:n]), dicts(X[n:])
        makers = {bs: (lambda bs=bs: GaussianMixture(3, batch_size=bs, random_state=cfg.seed))
                  for bs in sizes}
        t = interleaved({bs: _learn_pass(train) for bs in sizes}, repeats=cfg.reps(3),
                        setups=makers, settle=cfg.settle)
        for bs in sizes:
            model = makers[bs]()
            _learn_pass(train)(model)
            out.append({
                "n_features": d, "batch_size": bs, "rows": n,
                "seconds": t[bs].median, "times_s": t[bs].times, "rows_per_s": n / t[bs].median,
                "nmi_held_out": _nmi(model, test, y[n:]),
                "loglik_held_out": float(model.mixture.score(X[n:])),
                "nmi_prequential": _prequential_nmi(makers[bs](), train, y[:n]),
            })
    return out


def detection(cfg: Config, n: int, dims: list[int]) -> list[dict[str, Any]]:
    from sklearn.metrics import roc_auc_score

    out = []
    for d in dims:
        X, _ = blobs(n, d, cfg.seed + d)
        X, is_out = with_outliers(X, cfg.seed + d)
        rows = dicts(X)
        makers = detectors(cfg.seed)
        t = interleaved({name: _prequential_scores(rows) for name in makers},
                        repeats=cfg.reps(5), setups=makers, settle=cfg.settle)
        river_name = "river HalfSpaceTrees (MinMaxScaler first)"
        for name, make in makers.items():
            scores: list[float] = []
            _prequential_scores(rows, scores)(make())
            out.append({
                "n_features": d, "model": name, "rows": n, "outliers": int(is_out.sum()),
                "seconds": t[name].median, "times_s": t[name].times,
                "rows_per_s": n / t[name].median,
                "ratio_to_river": t[name].median / t[river_name].median,
                "roc_auc": float(roc_auc_score(is_out, scores)),
            })
    return out


# ----------------------------------------------------------------------------- report
def to_markdown(results: dict[str, Any]) -> str:
    s = results["settings"]
    lines = [
        "# river comparison: online_gmm.river against river's estimators"
        + (" (smoke mode: tiny sizes, numbers meaningless)" if s["smoke"] else ""),
        "",
        f"Command: `{results['command']}`  ",
        f"Started {results['started']}; {s['rows']:,} rows per pass, held-out "
        f"{HELD_OUT:,} rows; times are medians of interleaved passes (clustering "
        f"{s['repeats']['clustering']}, batch sizes {s['repeats']['batch_size']}, detection "
        f"{s['repeats']['detection']}; one warm-up pass first), all in this one process.",
        "",
        "Machine:",
        "",
        describe(results["machine"]),
        "",
        "## Clustering: `learn_one` over the stream (3 well-separated blobs)",
        "",
        "| D | model | learn_one rows/s | time / river KMeans's | held-out NMI |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in results["clustering"]:
        lines.append(f"| {r['n_features']} | {r['model']} | {r['rows_per_s']:,.0f} | "
                     f"**{r['ratio_to_river_kmeans']:.2f}** | {r['nmi_held_out']:.3f} |")
    lines += [
        "",
        "## Our clusterer's batch size: speed against quality",
        "",
        "Prequential NMI: each row predicted before it is learned, over the whole pass (the "
        "rows before the first step are predicted 0, and the labels are renumbered once, "
        "when the warm-up's restarts replace the provisional model of the first steps). "
        "Held-out figures: after the pass.",
        "",
        "| D | batch_size | learn_one rows/s | held-out NMI | held-out mean log-likelihood "
        "| prequential NMI |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in results["batch_size"]:
        lines.append(f"| {r['n_features']} | {r['batch_size']} | {r['rows_per_s']:,.0f} | "
                     f"{r['nmi_held_out']:.3f} | {r['loglik_held_out']:.4f} | "
                     f"{r['nmi_prequential']:.3f} |")
    lines += [
        "",
        f"## Anomaly detection: prequential `score_one` + `learn_one` "
        f"({OUTLIER_FRACTION:.0%} uniform outliers)",
        "",
        "| D | model | rows/s | time / river's | ROC AUC |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in results["detection"]:
        lines.append(f"| {r['n_features']} | {r['model']} | {r['rows_per_s']:,.0f} | "
                     f"**{r['ratio_to_river']:.2f}** | {r['roc_auc']:.3f} |")
    return "\n".join(lines) + "\n"


def write(results: dict[str, Any], out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    pj, pm = out / "river_compare.json", out / "river_compare.md"
    pj.write_text(json.dumps(results, indent=2, default=str) + "\n")
    pm.write_text(to_markdown(results))
    return pj, pm


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.river_compare",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (seconds), for CI")
    parser.add_argument("--rows", type=int, default=None, help="rows per pass (10,000)")
    parser.add_argument("--repeats", type=int, default=None, help="timed passes per case")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="directory for river_compare.json and river_compare.md")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    raw = sys.argv[1:] if argv is None else argv
    args = parse_args(raw)
    silence_warnings()
    cfg = Config(smoke=args.smoke, repeats=args.repeats, seed=args.seed)
    n = args.rows or (600 if args.smoke else 10_000)
    dims = [2] if args.smoke else [2, 8]
    sizes = [8, 64] if args.smoke else [1, 8, 32, 64, 256, 1024]
    started = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    machine = machine_note()
    results: dict[str, Any] = {
        "benchmark": "online-gmm river comparison",
        "command": " ".join(["python -m benchmarks.river_compare", *raw]),
        "started": started,
        "settings": {"smoke": args.smoke, "rows": n, "dims": dims,
                     "repeats": {"clustering": cfg.reps(7), "batch_size": cfg.reps(3),
                                 "detection": cfg.reps(5)},
                     "batch_sizes": sizes, "seed": args.seed},
        "machine": machine,
        "clustering": clustering(cfg, n, dims),
        "batch_size": batch_sizes(cfg, n, dims, sizes),
        "detection": detection(cfg, n, dims),
    }
    machine["load_average_end"] = load_average()
    pj, pm = write(results, args.out)
    print(pm.read_text())
    print(f"[river_compare] wrote {pj} and {pm}", file=sys.stderr)
    figures = [r[k] for part in ("clustering", "batch_size", "detection")
               for r in results[part] for k in ("rows_per_s", "nmi_held_out", "roc_auc")
               if k in r]
    return 0 if all(math.isfinite(v) for v in figures) else 1


if __name__ == "__main__":
    raise SystemExit(main())
