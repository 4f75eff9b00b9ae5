"""Seeding study on workload 2's data (docs/benchmarks.md, Reading): seeds from n rows by
k-means++ or Lloyd's k-means (scikit-learn's), given as ``means_init``, then a stream of
batches of 1,024 for up to 3 passes; the held-out log-likelihood's gap to scikit-learn's
converged ``GaussianMixture`` (default k-means init) after 3 passes, and the first batch
(checked every 10) at which it is within 0.5 %.

    python -m benchmarks.seeding_study [--sizes 3072 8192 20000 50000] [--passes 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from ._common import batches, overlapping_clusters, silence_warnings


def stream_gap(X, H, parts, means, ref: float, passes: int, check_every: int = 10) -> dict:
    from online_gmm import OnlineGaussianMixture

    model = OnlineGaussianMixture(len(means), covariance_type="diag", means_init=means,
                                  random_state=0)
    steps, within, gap = 0, None, np.inf
    for _ in range(passes):
        for b in parts:
            model.partial_fit(b)
            steps += 1
            if steps % check_every == 0:
                gap = (ref - model.score(H)) / abs(ref)
                if within is None and gap <= 0.005:
                    within = steps
    return {"gap_percent": 100 * gap, "within_at_batch": within}


def main(argv: list[str] | None = None) -> None:
    from sklearn.cluster import KMeans, kmeans_plusplus
    from sklearn.mixture import GaussianMixture

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[3072, 8192, 20_000, 50_000])
    ap.add_argument("--passes", type=int, default=3)
    args = ap.parse_args(argv)
    silence_warnings()
    rng = np.random.default_rng(1)  # as workload 2 (benchmarks.run's default seed 0)
    clusters = overlapping_clusters(64, 64, seed=0)
    X = clusters.sample(200_000, rng, np.float64)
    H = clusters.sample(50_000, rng, np.float64)
    ref = float(GaussianMixture(64, covariance_type="diag", random_state=0).fit(X).score(H))
    parts = batches(X, 1024)
    pick = np.random.default_rng(0)
    print("| seeds from | method | seeding s | gap after passes | within 0.5 % at batch |")
    print("| --- | --- | --- | --- | --- |")
    for n in args.sizes:
        S = X[pick.choice(len(X), n, replace=False)]
        for method in ("k-means++", "kmeans"):
            t0 = time.perf_counter()
            if method == "kmeans":
                means = KMeans(64, n_init=1, random_state=0).fit(S).cluster_centers_
            else:
                means = kmeans_plusplus(S, 64, random_state=0)[0]
            t_seed = time.perf_counter() - t0
            r = stream_gap(X, H, parts, means, ref, args.passes)
            print(f"| {n:,} rows | {method} | {t_seed:.2f} | {r['gap_percent']:.3f} % | "
                  f"{r['within_at_batch'] or '-'} |", flush=True)


if __name__ == "__main__":
    main()
