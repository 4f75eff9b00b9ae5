"""GMMPrototypes on a synthetic SSL-like stream: reseeding and weight concentration against the
forgetting rate and the covariance type (the table in docs/ssl.md, "Reseeding").

    python -m benchmarks.bridge_forgetting [--steps 300] [--covariance-type spherical]
"""

from __future__ import annotations

import argparse

import numpy as np


def run(covariance_type: str, etas: list[float], steps: int, seed: int = 0) -> list[dict]:
    import torch

    from ssl_bridge import GMMPrototypes

    K, D, B, n_dirs = 1024, 64, 256, 4096
    torch.manual_seed(seed)
    centres = torch.nn.functional.normalize(torch.randn(n_dirs, D), dim=1)
    rows = []
    for eta in etas:
        head = GMMPrototypes(K, D, forgetting_rate=eta, covariance_type=covariance_type)
        g = torch.Generator().manual_seed(seed + 1)
        for _ in range(steps):
            lab = torch.randint(0, n_dirs, (B,), generator=g)
            head.update(centres[lab] + 0.05 * torch.randn(B, D, generator=g))
        report = head.collapse_report()
        rows.append(
            {
                "forgetting_rate": eta,
                "reseeds_per_step": int(head.n_reseeded) / steps,
                "unique_0.025": report["unique_fraction"][0.025],
                "effective_components": report["effective_components"],
                "top_weights": np.sort(head.weights.numpy())[::-1][:3].round(3).tolist(),
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--covariance-type", default="spherical")
    parser.add_argument("--etas", type=float, nargs="+", default=[1e-3, 1e-4, 1e-5])
    args = parser.parse_args(argv)
    print("| forgetting_rate | reseeds per step | unique at eps 0.025 | effective components |"
          " top weights |")
    print("| --- | --- | --- | --- | --- |")
    for r in run(args.covariance_type, args.etas, args.steps):
        print(f"| {r['forgetting_rate']:g} | {r['reseeds_per_step']:.2f} | "
              f"{r['unique_0.025']:.1%} | {r['effective_components']:.0f} | {r['top_weights']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
