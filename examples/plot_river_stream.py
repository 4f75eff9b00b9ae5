"""River: a drifting stream, one dict at a time
==============================================

``online_gmm.river`` gives river users (https://riverml.xyz) the online mixture with river's
API. Three clusters in the plane move along circles while 1 % of the rows are outliers drawn
uniformly around them; every row is a dict, handled prequentially in a plain loop (predicted
and scored first, then learned), as ``river.evaluate`` does. Left: the clusterer
``GaussianMixture(3, forgetting_rate=0.01)`` (ellipses: its components at two standard
deviations) beside river's ``cluster.KMeans(n_clusters=3)`` (crosses) at the end of the
stream, and the NMI of each one's predictions over windows of the stream. Right: the
detector ``GaussianMixtureDetector(3, forgetting_rate=0.01)`` (score: minus the
log-density) beside river's ``HalfSpaceTrees`` after a ``MinMaxScaler`` (river's recipe),
their ROC AUC over windows and the scores of inliers and outliers. river's models keep
their defaults; neither side is tuned to this stream beyond the mixture's forgetting. In the
full run (the figure), the mixture's windows reach an NMI near 0.9 from the second one on,
river's k-means (started from random centres) after about 6,000 rows, and both end at 1; the
ROC AUC over all rows is in the legend (the first 256 rows score 0.0 before our first step).

Run ``python examples/plot_river_stream.py`` (``--fast`` or ``ONLINE_GMM_FAST=1`` for a
quick run); the figure is saved to ``docs/gallery/plot_river_stream.png`` or ``--out``.
"""

from __future__ import annotations

import argparse
import os
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Ellipse  # noqa: E402
from river import anomaly, cluster, preprocessing  # noqa: E402
from sklearn.metrics import normalized_mutual_info_score, roc_auc_score  # noqa: E402

from online_gmm.river import GaussianMixture, GaussianMixtureDetector  # noqa: E402

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "docs" / "gallery" / "plot_river_stream.png"


def centres_at(t: float) -> np.ndarray:
    """(3, 2) true centres at stream fraction ``t`` in [0, 1]: three circles."""
    angle = 2 * np.pi * 0.75 * t + np.array([0.0, 2.1, 4.2])
    base = np.array([[-6.0, 0.0], [6.0, 0.0], [0.0, 7.0]])
    return base + 3.5 * np.stack([np.cos(angle), np.sin(angle)], axis=-1)


def stream(n: int, seed: int = 0):
    """Yield ``(x, cluster, is_outlier)``: a dict row, its true cluster (-1 for an outlier)."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        if rng.random() < 0.01:
            a, b = rng.uniform([-16.0, -10.0], [16.0, 17.0])
            yield {"a": a, "b": b}, -1, True
            continue
        k = int(rng.integers(0, 3))
        a, b = centres_at(i / (n - 1))[k] + 0.7 * rng.standard_normal(2)
        yield {"a": a, "b": b}, k, False


def windowed(values: list, labels: list, size: int, metric) -> tuple[list, list]:
    """``metric(labels, values)`` over consecutive windows of ``size`` rows."""
    xs, ys = [], []
    for s in range(0, len(values) - size + 1, size):
        try:
            ys.append(metric(labels[s:s + size], values[s:s + size]))
        except ValueError:  # (a window without an outlier has no ROC AUC)
            continue
        xs.append(s + size)
    return xs, ys


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="a short stream (CI)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="PNG to write")
    args = parser.parse_args(argv)
    fast = args.fast or os.environ.get("ONLINE_GMM_FAST") == "1"
    n = 4_000 if fast else 16_000
    # river's MinMaxScaler divides 0 by 0 on its first row (and returns 0): not ours to fix
    warnings.filterwarnings("ignore", "invalid value", RuntimeWarning, "river")

    ours = GaussianMixture(3, forgetting_rate=0.01, random_state=0)
    kmeans = cluster.KMeans(n_clusters=3, seed=0)
    detector = GaussianMixtureDetector(3, forgetting_rate=0.01, random_state=0)
    hst = preprocessing.MinMaxScaler() | anomaly.HalfSpaceTrees(seed=0)

    truth, outlier, tail = [], [], []
    predicted = {"ours": [], "kmeans": []}
    scores = {"ours": [], "hst": []}
    for i, (x, k, is_out) in enumerate(stream(n)):
        # prequential: predict and score the row, then learn it
        predicted["ours"].append(ours.predict_one(x))
        predicted["kmeans"].append(kmeans.predict_one(x))
        scores["ours"].append(detector.score_one(x))
        scores["hst"].append(hst.score_one(x))
        for model in (ours, kmeans, detector, hst):
            model.learn_one(x)
        truth.append(k)
        outlier.append(is_out)
        if i >= n - 600:
            tail.append((x["a"], x["b"], is_out))

    fig, axes = plt.subplots(1, 4, figsize=(19, 4.6))
    ax = axes[0]
    tail = np.array(tail)
    ax.scatter(tail[:, 0], tail[:, 1], s=4, c=np.where(tail[:, 2] > 0, "tab:red", "0.6"))
    path = np.array([centres_at(t) for t in np.linspace(0, 1, 100)])
    for k in range(3):
        ax.plot(path[:, k, 0], path[:, k, 1], ":", color="0.3", lw=1)
    mixture = ours.mixture
    for mean, var in zip(mixture.means_, mixture.covariances_, strict=True):
        w, h = 4 * np.sqrt(var)
        ax.add_patch(Ellipse(mean, w, h, fill=False, lw=1.8, color="tab:blue"))
    centers = np.array([[c.get("a", 0.0), c.get("b", 0.0)] for c in kmeans.centers.values()])
    ax.plot(centers[:, 0], centers[:, 1], "x", color="tab:orange", ms=11, mew=2.5)
    ax.set_title("the last 600 rows: ours (ellipses), KMeans (x)")
    ax.set_aspect("equal")
    ax.set_xlim(-16, 16)
    ax.set_ylim(-10, 17)

    window = max(n // 16, 250)
    inliers = [i for i, o in enumerate(outlier) if not o]
    ax = axes[1]
    for name, color, label in (("ours", "tab:blue", "ours GaussianMixture"),
                               ("kmeans", "tab:orange", "river KMeans")):
        kept = [predicted[name][i] for i in inliers]
        xs, ys = windowed(kept, [truth[i] for i in inliers], window,
                          normalized_mutual_info_score)
        ax.plot(xs, ys, "o-", color=color, label=label, ms=3)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("inlier rows seen")
    ax.set_ylabel(f"NMI over windows of {window} rows")
    ax.set_title("clustering, prequential")
    ax.legend(fontsize=8, loc="lower right")

    ax = axes[2]
    for name, color, label in (("ours", "tab:blue", "ours GaussianMixtureDetector"),
                               ("hst", "tab:green", "river HalfSpaceTrees")):
        xs, ys = windowed(scores[name], outlier, 4 * window, roc_auc_score)
        auc = roc_auc_score(outlier, scores[name])
        ax.plot(xs, ys, "o-", color=color, label=f"{label} (all rows: {auc:.3f})", ms=3)
    ax.set_ylim(0.45, 1.02)
    ax.set_xlabel("rows seen")
    ax.set_ylabel(f"ROC AUC over windows of {4 * window} rows")
    ax.set_title("anomaly detection, prequential")
    ax.legend(fontsize=8, loc="lower right")

    ax = axes[3]
    mine = np.array(scores["ours"][n // 4:])
    is_out = np.array(outlier[n // 4:])
    bins = np.linspace(mine.min(), np.percentile(mine, 99.9), 60)
    ax.hist(mine[~is_out], bins=bins, color="0.6", label="inliers", density=True)
    ax.hist(np.clip(mine[is_out], None, bins[-1]), bins=bins, color="tab:red", alpha=0.7,
            label="outliers", density=True)
    ax.set_yscale("log")
    ax.set_xlabel("score_one: minus the log-density")
    ax.set_title("our scores after the first quarter")
    ax.legend(fontsize=8)
    fig.suptitle("online_gmm.river on a drifting stream of dicts, beside river's own models")
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=80)
    plt.close(fig)
    print(f"saved {args.out}")
    return args.out


if __name__ == "__main__":
    main()
