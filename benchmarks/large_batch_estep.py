"""One E-step of a large batch in one call: the numba block statistics' plan and time for
the batches a warm-up's restarts and refinements (its buffer) and ``fit`` (all its rows)
hand them, beside a step's batch of 1,024 rows.

For each case (K components, D features, n rows) a ``diag`` model is fitted on
``make_blobs`` rows (K centres, ``cluster_std=6``, ``center_box=(-10, 10)``, float64), and
``numba_backend.state_statistics`` of its state runs on n further rows: printed, the plan
(``block_plan``: lanes, rows a block, blocks a round; and the blocks and rounds it makes)
and the median time of ``--repeats`` calls after a warm-up call. Run it in two trees to
compare plans (``docs/benchmarks.md``, "Blocks the size of a cache, in lanes").

    python -m benchmarks.large_batch_estep
    python -m benchmarks.large_batch_estep --smoke     # tiny sizes (seconds)
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from ._common import silence_warnings

#: (K, D, rows): workload 1's refinement at its first doubling, a K = 64, D = 16 buffer,
#: the warm-up's buffers at K = 1,024, the fit workload's data, a step's batch
CASES = ((64, 64, 8192), (64, 16, 16384), (1024, 16, 32768), (1024, 64, 32768),
         (32, 32, 80_000), (64, 64, 100_000), (64, 64, 1024))
SMOKE_CASES = ((8, 4, 3000), (8, 4, 256))


def measure(K: int, D: int, n: int, repeats: int) -> dict[str, Any]:
    """The plan and the median time of one call on ``n`` rows."""
    from sklearn.datasets import make_blobs

    from online_gmm import OnlineGaussianMixture
    from online_gmm._backends import numba_backend

    fit_rows = 8 * 1024
    X, _ = make_blobs(fit_rows + n, n_features=D, centers=K, cluster_std=6.0,
                      center_box=(-10, 10), random_state=1)
    model = OnlineGaussianMixture(K, covariance_type="diag", random_state=0, warmup_size=0)
    for lo in range(0, fit_rows, 1024):
        model.partial_fit(X[lo:lo + 1024])
    state, rows, w = model._state, X[fit_rows:], np.ones(n)
    plan = numba_backend.block_plan(n, K, D, rows.itemsize)
    times = []
    for r in range(repeats + 1):
        t0 = time.perf_counter()
        stats = numba_backend.state_statistics(state, "diag", rows, w, 1.0)
        if r:  # (the first call: compilation, buffers)
            times.append(time.perf_counter() - t0)
    lanes, per_block = plan[0], plan[1]
    blocks = -(-n // per_block)
    per_round = plan[2] if len(plan) > 2 else lanes  # (a tree before 81211f5: 2 entries)
    return {"K": K, "D": D, "n": n, "plan": list(plan), "lanes": lanes,
            "rows_per_block": per_block, "blocks": blocks,
            "rounds": -(-blocks // per_round), "ms": 1e3 * float(np.median(times)),
            "loglik": float(stats.loglik), "n_samples": int(stats.n_samples),
            "mass": float(np.sum(stats.mass))}


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.large_batch_estep",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args(argv)
    silence_warnings()
    cases = SMOKE_CASES if args.smoke else CASES
    repeats = 1 if args.smoke else args.repeats
    print("| K, D, rows | lanes | rows a block | blocks | rounds | one call (median) |")
    print("| --- | --- | --- | --- | --- | --- |")
    out = []
    for K, D, n in cases:
        r = measure(K, D, n, repeats)
        out.append(r)
        print(f"| {K:,}, {D}, {n:,} | {r['lanes']} | {r['rows_per_block']:,} | "
              f"{r['blocks']} | {r['rounds']} | {r['ms']:.2f} ms |", flush=True)
    return out


if __name__ == "__main__":
    main()
