"""A variational mixture on a stream whose number of clusters grows
================================================================

Clusters appear one at a time on a 3 x 3 grid: the stream starts with one, and a new one
joins every 20 batches. ``OnlineBayesianGaussianMixture(n_components=20)`` gets an upper
bound on the number of components, not the number: its warm-up (a batch variational fit of
the first 1,280 rows, ``max_iter=500`` iterations so that the prior can switch off what one
cluster does not need) leaves one or two components. Then, each time the rows the warm-up
holds double (to 32,768: the dotted lines), the model is recomputed from them with merge
and birth moves accepted by the evidence lower bound: pairs of components are merged if the
bound rises, and new components are proposed at rows far from the live components' means
(D^2 sampling) and kept if it rises (``docs/algorithm.md``, "Variational mixture").
Between those marks, components switched off by the prior are reseeded at rows far from
the live means (``dead_threshold``). Left: the number of active components (weight above
1 / (10 K)) after each batch, against the number of clusters in the stream; middle: each
component's weight as it appears; right: the last batches and the active components.

What it shows, measured (three streams, seeds 0-2): one active component per cluster at the
end, 9 of 9, on every stream (before the moves: 11, 14 and 16 active components, the first
clusters split in two to four). Between marks the count runs ahead of or behind the
clusters (a reseeded component splits a cluster for a while, or a new cluster is absorbed
by a neighbour); the next mark's moves put it right. After the last mark (32,768 rows) only
the reseeding is left: a cluster appearing later is found, or absorbed, by it alone.

Run ``python examples/plot_bayesian_growing.py`` (``--fast`` or ``ONLINE_GMM_FAST=1`` for a
quick run); the figure is saved to ``docs/gallery/plot_bayesian_growing.png`` or ``--out``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Ellipse  # noqa: E402

from online_gmm import OnlineBayesianGaussianMixture  # noqa: E402

DEFAULT_OUT = (Path(__file__).resolve().parents[1] / "docs" / "gallery"
               / "plot_bayesian_growing.png")
K = 20
GRID = np.array([(i, j) for i in range(3) for j in range(3)], dtype=float) * 10.0
CENTRES = GRID[[4, 0, 8, 2, 6, 1, 7, 3, 5]]  # the order in which the clusters appear


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="a short stream (CI)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="PNG to write")
    args = parser.parse_args(argv)
    fast = args.fast or os.environ.get("ONLINE_GMM_FAST") == "1"
    n_clusters, every, batch = (5, 15, 200) if fast else (9, 20, 200)
    n_batches = n_clusters * every + 2 * every

    def n_true(i: int) -> int:
        return min(n_clusters, 1 + i // every)

    rng = np.random.default_rng(1)
    model = OnlineBayesianGaussianMixture(K, max_iter=500, random_state=1)
    active, weights, last = [], np.zeros((n_batches, K)), []
    for i in range(n_batches):
        X = CENTRES[rng.integers(0, n_true(i), batch)] + rng.standard_normal((batch, 2))
        model.partial_fit(X)
        weights[i] = model.weights_
        active.append(int((model.weights_ > 1 / (10 * K)).sum()))
        last = [*last[-9:], X]
    warm = int(np.ceil(64 * K / batch))  # the batch at which the warm-up's buffer fills

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    steps = np.arange(n_batches)
    axes[0].step(steps, [n_true(i) for i in steps], where="post", color="0.3", lw=2,
                 label="clusters in the stream")
    axes[0].plot(steps, active, color="tab:blue", lw=2, label="active components")
    axes[0].axvspan(0, warm - 0.5, color="0.9", label="warm-up (provisional model)")
    # the marks of the warm-up's refinement: the rows held doubled, to 32,768
    marks, rows = [], 2 * 64 * K
    while rows < 32768:
        marks.append(rows)
        rows *= 2
    for j, m in enumerate([*marks, 32768]):
        axes[0].axvline(int(np.ceil(m / batch)) - 1, color="0.6", ls=":", lw=1,
                        label="merge and birth moves" if j == 0 else None)
    axes[0].set_ylim(0, K + 0.5)
    axes[0].set_xlabel("batch")
    axes[0].set_title(f"active components (weight > 1/(10 K)), K = {K}")
    axes[0].legend(fontsize=8, loc="upper right")

    order = np.argsort([np.argmax(weights[:, k] > 1 / (10 * K)) if
                        (weights[:, k] > 1 / (10 * K)).any() else n_batches
                        for k in range(K)])
    colors = plt.cm.tab20(np.linspace(0, 1, K))
    axes[1].stackplot(steps, weights[:, order].T, colors=colors[order])
    axes[1].axvspan(0, warm - 0.5, color="white", alpha=0.6)
    axes[1].set_xlim(0, n_batches - 1)
    axes[1].set_ylim(0, 1)
    axes[1].set_xlabel("batch")
    axes[1].set_title("each component's weight (stacked)")

    recent = np.concatenate(last)
    axes[2].scatter(recent[:, 0], recent[:, 1], s=2, c="0.7")
    axes[2].plot(*CENTRES[:n_clusters].T, "x", color="0.2", ms=9, label="true centres")
    for k in np.flatnonzero(model.weights_ > 1 / (10 * K)):
        w, h = 4 * np.sqrt(model.covariances_[k])
        axes[2].add_patch(Ellipse(model.means_[k], w, h, fill=False, lw=1.8,
                                  color=colors[k]))
        axes[2].plot(*model.means_[k], "+", color=colors[k], ms=10, mew=2)
    axes[2].set_aspect("equal")
    axes[2].set_xlim(-6, 26)
    axes[2].set_ylim(-6, 26)
    axes[2].set_title("the last batches and the active components (2 sd)")
    axes[2].legend(fontsize=8, loc="lower right")
    fig.suptitle(
        f"OnlineBayesianGaussianMixture(n_components={K}): {n_clusters} clusters appear "
        f"one every {every} batches; {active[-1]} active components at the end"
    )
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=80)
    plt.close(fig)
    print(f"saved {args.out}; active components at the end: {active[-1]}")
    return args.out


if __name__ == "__main__":
    main()
