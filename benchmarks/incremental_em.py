"""Study: standard batch EM against incremental EM (Neal & Hinton 1998) for ``fit``.

Incremental EM splits the rows into B blocks, keeps each block's statistics, and after the
E-step of one block replaces that block's statistics and makes the M-step on the sum of all
blocks' (the first pass is a standard pass, so every block has statistics). Both reach the
same fixed point; the question is which gets there in less time. Both run on the project's
own kernels (``online_gmm._em.batch``), from the same start, until the mean log-likelihood
of a full pass changes by less than ``tol``; the table gives passes, seconds and the final
held-out log-likelihood. Usage::

    python -m benchmarks.incremental_em            # workload 2's shape, B in {4, 16}
    python -m benchmarks.incremental_em --smoke
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from ._common import overlapping_clusters


def _run(X, H, k, blocks: int, tol: float, seed: int) -> dict:
    from online_gmm import OnlineGaussianMixture
    from online_gmm._em.batch import Rows, iteration, m_step
    from online_gmm._math.state import merge_stats
    from online_gmm.core import select_backend

    model = OnlineGaussianMixture(k, max_iter=0, random_state=seed).fit(X)  # the start
    state, config, backend = model._state, model._config(), select_backend(X)
    ones = np.ones(X.shape[0])
    t0 = time.perf_counter()
    passes, previous, bound = 0, -np.inf, -np.inf
    if blocks <= 1:
        rows = Rows(X, ones, backend)
        while not abs(bound - previous) < tol and passes < 500:
            previous = bound
            state, bound = iteration(state, rows, config, backend)
            passes += 1
    else:
        parts = [Rows(np.ascontiguousarray(X[i::blocks]), ones[i::blocks].copy(), backend)
                 for i in range(blocks)]
        stats = [p.statistics(state, config, 1.0) for p in parts]  # a standard first pass
        state = m_step(state, _sum(stats, config, merge_stats), config, backend)
        passes = 1
        while not abs(bound - previous) < tol and passes < 500:
            previous, ll, weight = bound, 0.0, 0.0
            for i, p in enumerate(parts):
                stats[i] = p.statistics(state, config, 1.0)
                ll, weight = ll + stats[i].loglik, weight + stats[i].weight
                state = m_step(state, _sum(stats, config, merge_stats), config, backend)
            bound = ll / weight  # (the pass's rows under moving parameters)
            passes += 1
    seconds = time.perf_counter() - t0
    model._state = state
    model._publish()
    return {"blocks": blocks, "passes": passes, "seconds": seconds,
            "heldout": float(model.score(H))}


def _sum(stats, config, merge_stats):
    total = stats[0]
    for s in stats[1:]:
        total = merge_stats(total, s, config.covariance_type, np)
    return total


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.incremental_em")
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args(argv)
    n, d, k = (4_000, 8, 8) if args.smoke else (100_000, 64, 64)
    print("| seed | blocks | passes | seconds | held-out mean log-likelihood |")
    print("| --- | --- | --- | --- | --- |")
    for seed in range(1 if args.smoke else args.seeds):
        rng = np.random.default_rng(seed + 1)
        clusters = overlapping_clusters(k, d, seed=seed)
        X, H = clusters.sample(n, rng, np.float64), clusters.sample(n // 4, rng, np.float64)
        _run(X[:2000], H, k, 1, 1e-3, seed)  # compile
        for blocks in (1, 4, 16):
            r = _run(X, H, k, blocks, 1e-3, seed)
            print(f"| {seed} | {blocks} | {r['passes']} | {r['seconds']:.2f} | "
                  f"{r['heldout']:.4f} |")


if __name__ == "__main__":
    main()
