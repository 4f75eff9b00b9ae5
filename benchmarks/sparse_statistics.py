"""The statistics' product over the positive responsibilities only (the numba block kernels'
sparse sums, ``online_gmm._backends.numba_backend.SPARSE_FRACTION``) against the dense product,
side by side in one process.

Two measurements, each the median of interleaved repetitions after a warm-up call:

1. **Kernel** (one thread): one block's sums ``R^T A`` (1,024 rows, K components, D + 2
   columns, float32) by ``_sparse_sums`` and by the dense product (``np.dot``, one BLAS
   thread), for posteriors with one positive entry a row and with one in 256, 64, 16 and 8
   positive (placed at random): where the sparse sums pay.
2. **Bridge update**: ``GMMPrototypes.update(teacher, return_targets=True)`` (spherical,
   K, D, B) on the numba path, from one state copied before each call (the module after
   its default warm-up and a few steps, the batches of ``benchmarks.gpu``'s timing: K unit
   directions plus noise), with the sparse sums allowed (``SPARSE_COSTS``, where they pay:
   ``kernels.sparse_pays``) and not, alternately on the same batch; the positive
   responsibilities a row are printed.

    python -m benchmarks.sparse_statistics                 # K = 8,192, D = 256, B = 2,048
    python -m benchmarks.sparse_statistics --smoke         # tiny sizes (seconds)
"""

from __future__ import annotations

import argparse
import copy
import time
from typing import Any

import numpy as np


def _median_min(fn, repeats: int) -> tuple[float, float]:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), float(min(times))


def kernel(K: int, n_cols: int, repeats: int, rows: int = 1024) -> list[dict[str, Any]]:
    """One block's sums, sparse against dense, at several densities (one thread)."""
    import numba

    from online_gmm._backends import kernels
    from online_gmm._math.array_api import blas_threads_for

    rng = np.random.default_rng(0)
    A = rng.random((rows, n_cols), dtype=np.float32)
    S = np.empty((K, n_cols), np.float32)
    w = np.ones(rows, np.float32)
    out = []
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        with blas_threads_for(0):
            for per_row in sorted({1, K // 256, K // 64, K // 16, K // 8} - {0}):
                G = np.zeros((rows, K), np.float32)
                for i in range(rows):
                    G[i, rng.choice(K, per_row, replace=False)] = rng.random(per_row)
                sparse = _median_min(
                    lambda G=G: kernels._sparse_sums(G, A, w, 0, rows, True, S), repeats)
                dense = _median_min(lambda G=G: np.dot(G.T, A, out=S), repeats)
                out.append({"positive_per_row": per_row, "density": per_row / K,
                            "sparse_ms": 1e3 * sparse[0], "dense_ms": 1e3 * dense[0]})
    finally:
        numba.set_num_threads(threads)
    return out


def bridge(K: int, D: int, B: int, repeats: int, steps: int) -> dict[str, Any]:
    """One update with targets, the sparse sums allowed and not, from the same state."""
    from online_gmm._backends import numba_backend
    from ssl_bridge import GMMPrototypes
    from ssl_bridge._state import DONE, phase

    from ._gpu_timing import TARGETS_TEMPERATURE, _Cycle, teacher_pool

    data = _Cycle(teacher_pool(K, D, B, 24, "cpu"))
    base = GMMPrototypes(K, D, covariance_type="spherical")
    while not (bool(base.seeded.all()) and phase(base.warmup_progress) == DONE):
        base.update(data.next()[0])
    for _ in range(steps):
        base.update(data.next()[0])
    x = data.next()[0]
    positive = float((base.targets(x, temperature=1.0) > 0).sum(dim=1).float().mean())
    allowed = numba_backend.SPARSE_COSTS
    times: dict[tuple, list[float]] = {allowed: [], (0, 0): []}
    try:
        for r in range(repeats + 1):
            for costs in ((0, 0), allowed):
                head = copy.deepcopy(base)
                numba_backend.SPARSE_COSTS = costs
                t0 = time.perf_counter()
                head.update(x, return_targets=True, temperature=TARGETS_TEMPERATURE)
                if r:  # (the first round: compilation, caches)
                    times[costs].append(time.perf_counter() - t0)
    finally:
        numba_backend.SPARSE_COSTS = allowed
    return {"K": K, "D": D, "B": B, "positive_per_row": positive,
            "dense_ms": 1e3 * float(np.median(times[(0, 0)])),
            "sparse_ms": 1e3 * float(np.median(times[allowed]))}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sparse_statistics",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--K", type=int, default=8192)
    parser.add_argument("--D", type=int, default=256)
    parser.add_argument("--B", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--steps", type=int, default=2,
                        help="updates after the warm-up before the state is copied")
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args(argv)
    if args.smoke:
        args.K, args.D, args.B, args.repeats, args.steps = 256, 16, 256, 2, 1
    rows = kernel(args.K, args.D + 2, args.repeats)
    print(f"Kernel: one block of 1,024 rows, K = {args.K:,}, {args.D + 2} columns, float32, "
          "one thread (ms, median)")
    print("| positive a row | sparse sums | dense product |\n| --- | --- | --- |")
    for r in rows:
        print(f"| {r['positive_per_row']:,} (1 in {round(1 / r['density']):,}) | "
              f"{r['sparse_ms']:.1f} | {r['dense_ms']:.1f} |")
    b = bridge(args.K, args.D, args.B, args.repeats, args.steps)
    print(f"\nBridge update with targets, K = {b['K']:,}, D = {b['D']}, B = {b['B']:,}, "
          f"spherical, after the warm-up: {b['positive_per_row']:.1f} positive "
          f"responsibilities a row (T = 1); dense {b['dense_ms']:.0f} ms, sparse sums allowed "
          f"{b['sparse_ms']:.0f} ms (medians)")
    return {"kernel": rows, "bridge": b}


if __name__ == "__main__":
    main()
