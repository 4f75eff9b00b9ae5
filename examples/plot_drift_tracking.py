"""Clusters tracking a drifting stream
====================================

Three clusters in the plane move along circles while the stream runs. An
``OnlineGaussianMixture`` with responsibility-weighted forgetting
(``forgetting_rate=0.01``: each component remembers about its last 100 samples) follows
them; the same model without forgetting (``forgetting_rate=0``) keeps every sample it ever
saw, so its means lag behind and its covariances smear along the paths.

Run ``python examples/plot_drift_tracking.py`` (``--fast`` or ``ONLINE_GMM_FAST=1`` for a
quick run); the figure is saved to ``docs/gallery/plot_drift_tracking.png`` or ``--out``.
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

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "docs" / "gallery" / "plot_drift_tracking.png"


def centres_at(t: np.ndarray) -> np.ndarray:
    """(len(t), 3, 2) true centres at stream fraction ``t`` in [0, 1]: three circles."""
    phase = np.array([0.0, 2.1, 4.2])
    angle = 2 * np.pi * t[:, None] * 0.75 + phase
    base = np.array([[-6.0, 0.0], [6.0, 0.0], [0.0, 7.0]])
    return base + 3.5 * np.stack([np.cos(angle), np.sin(angle)], axis=-1)


def stream(n_batches: int, batch: int, seed: int = 0):
    """Yield ``(t, X)``: the stream fraction and a batch drawn around the centres at t."""
    rng = np.random.default_rng(seed)
    for i in range(n_batches):
        t = np.full(batch, i / (n_batches - 1))
        c = centres_at(t)
        lab = rng.integers(0, 3, batch)
        yield t[0], c[np.arange(batch), lab] + 0.7 * rng.standard_normal((batch, 2))


def draw_components(ax, model: OnlineGaussianMixture, color: str) -> None:
    for mean, var in zip(model.means_, model.covariances_, strict=True):
        w, h = 4 * np.sqrt(var)  # +-2 standard deviations
        ax.add_patch(Ellipse(mean, w, h, fill=False, lw=1.6, color=color))
        ax.plot(*mean, "+", color=color, ms=10, mew=2)


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="a short stream (CI)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="PNG to write")
    args = parser.parse_args(argv)
    fast = args.fast or os.environ.get("ONLINE_GMM_FAST") == "1"
    n_batches, batch = (60, 50) if fast else (300, 100)

    models = {
        "forgetting_rate=0.01": OnlineGaussianMixture(3, forgetting_rate=0.01, random_state=0),
        "forgetting_rate=0 (none)": OnlineGaussianMixture(3, random_state=0),
    }
    colors = {"forgetting_rate=0.01": "tab:blue", "forgetting_rate=0 (none)": "tab:red"}
    snaps = {n_batches // 3, 2 * n_batches // 3, n_batches - 1}
    fig, axes = plt.subplots(1, 4, figsize=(17, 4.3))
    errors = {name: [] for name in models}
    panel = 0
    for i, (t, X) in enumerate(stream(n_batches, batch)):
        truth = centres_at(np.array([t]))[0]
        for name, model in models.items():
            model.partial_fit(X)
            # distance of each true centre to the nearest model mean
            d = np.linalg.norm(truth[:, None, :] - model.means_[None, :, :], axis=-1)
            errors[name].append(d.min(axis=1).mean())
        if i in snaps:
            ax = axes[panel]
            ax.scatter(X[:, 0], X[:, 1], s=4, c="0.6")
            path = centres_at(np.linspace(0, t, 100))
            for k in range(3):
                ax.plot(path[:, k, 0], path[:, k, 1], ":", color="0.3", lw=1)
            for name, model in models.items():
                draw_components(ax, model, colors[name])
            ax.set_title(f"after {i + 1} batches")
            ax.set_aspect("equal")
            ax.set_xlim(-13, 13)
            ax.set_ylim(-6, 13)
            panel += 1
    ax = axes[3]
    for name, err in errors.items():
        ax.plot(err, color=colors[name], label=name)
    ax.set_xlabel("batch")
    ax.set_ylabel("mean distance, true centre to nearest mean")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    ax.set_title("tracking error")
    fig.suptitle(
        "Clusters on a drifting stream: forgetting (blue) tracks, no forgetting (red) lags"
    )
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=80)
    plt.close(fig)
    print(f"saved {args.out}")
    return args.out


if __name__ == "__main__":
    main()
