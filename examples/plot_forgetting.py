"""Forgetting against none on a stream that changes
=================================================

Four clusters jump to new places half way through the stream. Without forgetting
(``forgetting_rate=0``) the statistics are exact cumulative sums: ideal while the stream is
stationary, but after the change every component averages the old and the new cluster and
the held-out log-likelihood on the new data never recovers. Responsibility-weighted
forgetting (``forgetting="responsibility"``, the default, ``forgetting_rate=0.01``: each
component remembers about its last 100 samples) re-centres within a few dozen batches. Uniform
(time-based) forgetting with the same memory per component (``forgetting_rate=0.0025``
over four components) adapts as well here, but it discounts every component after every
batch, also those that received no data: see ``docs/algorithm.md``, "Silent components".

Run ``python examples/plot_forgetting.py`` (``--fast`` or ``ONLINE_GMM_FAST=1`` for a quick
run); the figure is saved to ``docs/gallery/plot_forgetting.png`` or ``--out``.
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

from online_gmm import OnlineGaussianMixture  # noqa: E402

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "docs" / "gallery" / "plot_forgetting.png"
K = 4
BEFORE = np.array([[-5.0, -5.0], [-5.0, 5.0], [5.0, -5.0], [5.0, 5.0]])
AFTER = np.array([[0.0, -8.0], [-8.0, 0.0], [8.0, 0.0], [0.0, 8.0]])


def sample(centres: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    lab = rng.integers(0, K, n)
    return centres[lab] + rng.standard_normal((n, 2))


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="a short stream (CI)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="PNG to write")
    args = parser.parse_args(argv)
    fast = args.fast or os.environ.get("ONLINE_GMM_FAST") == "1"
    n_batches, batch = (60, 100) if fast else (200, 100)
    change = n_batches // 2

    rng = np.random.default_rng(0)
    batches = [
        sample(BEFORE if i < change else AFTER, batch, rng) for i in range(n_batches)
    ]
    held = {"before": sample(BEFORE, 2000, rng), "after": sample(AFTER, 2000, rng)}
    settings = {
        "no forgetting (rate 0)": dict(forgetting_rate=0.0),
        "responsibility, rate 0.01": dict(forgetting_rate=0.01),
        "uniform, rate 0.0025": dict(forgetting="uniform", forgetting_rate=0.0025),
    }
    colors = ["tab:red", "tab:blue", "tab:orange"]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
    finals = {}
    for (name, kw), color in zip(settings.items(), colors, strict=True):
        model = OnlineGaussianMixture(K, random_state=0, **kw)
        curve = []
        for i, X in enumerate(batches):
            model.partial_fit(X)
            curve.append(model.score(held["before" if i < change else "after"]))
        axes[0].plot(curve, color=color, label=name)
        finals[name] = model
    axes[0].axvline(change - 0.5, ls=":", color="0.3")
    axes[0].set_xlabel("batch")
    axes[0].set_title("held-out log-likelihood, current clusters")
    axes[0].legend(fontsize=8)
    for ax, name, color in zip(axes[1:], list(settings)[:2], colors[:2], strict=True):
        ax.scatter(held["after"][:, 0], held["after"][:, 1], s=3, c="0.7")
        ax.plot(BEFORE[:, 0], BEFORE[:, 1], "x", color="0.4", ms=8, label="old centres")
        model = finals[name]
        for mean, var in zip(model.means_, model.covariances_, strict=True):
            w, h = 4 * np.sqrt(var)
            ax.add_patch(Ellipse(mean, w, h, fill=False, lw=1.5, color=color))
            ax.plot(*mean, "+", color=color, ms=9, mew=2)
        ax.set_title(f"{name}: components at the end")
        ax.set_aspect("equal")
        ax.set_xlim(-12, 12)
        ax.set_ylim(-12, 12)
        ax.legend(fontsize=8, loc="lower left")
    fig.suptitle(
        f"Four clusters move at batch {change}: forgetting re-centres, no forgetting averages"
    )
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=80)
    plt.close(fig)
    print(f"saved {args.out}")
    return args.out


if __name__ == "__main__":
    main()
