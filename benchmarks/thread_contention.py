"""Thread pools that outlive their call (docs/benchmarks.md, "The timing method"; the user
guide, "Speed and threads"): one steady-state ``partial_fit`` of workload 3's shape
(K = 4,096, D = 256, float32, ``spherical``) timed right after the same-shaped NumPy products
(and those products timed right after the step), with an untimed pause between them, then in
a fresh process with ``OPENBLAS_THREAD_TIMEOUT=4`` (OpenBLAS's workers sleep almost at once)
and with the products under ``threadpool_limits(1, "blas")``. Medians of alternated
repetitions.

    python -m benchmarks.thread_contention [--repeats 8] [--smoke]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import numpy as np

from ._common import child_env, embedding_clusters

PAUSES = (0.0, 0.05, 0.1, 0.15, 0.3)


def measure(pauses, repeats: int, smoke: bool, limit_blas: bool = False) -> list[dict]:
    """For each pause: median seconds of a step after the products, of the products after
    a step."""
    from threadpoolctl import threadpool_limits

    from online_gmm import OnlineGaussianMixture

    d, k, bs = (32, 256, 128) if smoke else (256, 4096, 1024)
    rng = np.random.default_rng(0)
    clusters = embedding_clusters(64 if smoke else 512, d, seed=0)
    model = OnlineGaussianMixture(k, covariance_type="spherical", random_state=0)
    for _ in range(-(-k // bs) + 2):  # every component seeded, then two ordinary steps
        model.partial_fit(clusters.sample(bs, rng, np.float32))
    X = clusters.sample(bs, rng, np.float32)
    M = rng.standard_normal((k, d), dtype=np.float32)
    R = rng.random((bs, k), dtype=np.float32)

    def products() -> None:
        if limit_blas:
            with threadpool_limits(1, user_api="blas"):
                np.matmul(X, M.T)
                np.matmul(R.T, X)
        else:
            np.matmul(X, M.T)
            np.matmul(R.T, X)

    out = []
    for pause in pauses:
        steps, prods = [], []
        for _ in range(repeats):
            t0 = time.perf_counter()
            products()
            prods.append(time.perf_counter() - t0)
            time.sleep(pause)
            t0 = time.perf_counter()
            model.partial_fit(X)
            steps.append(time.perf_counter() - t0)
            time.sleep(pause)
        out.append({"pause_s": pause, "step_s": float(np.median(steps)),
                    "products_s": float(np.median(prods))})
    return out


def _child(argv: list[str]) -> None:
    args = json.loads(argv[0])
    print(json.dumps(measure(args["pauses"], args["repeats"], args["smoke"],
                             args.get("limit_blas", False))))


def _in_child(pauses, repeats: int, smoke: bool, env_extra: dict, limit_blas=False):
    payload = json.dumps({"pauses": list(pauses), "repeats": repeats, "smoke": smoke,
                          "limit_blas": limit_blas})
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.thread_contention", "--child", payload],
        env=child_env(env_extra), capture_output=True, text=True, check=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=8)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, no pauses")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        _child([args.child])
        return []
    pauses = (0.0,) if args.smoke else PAUSES
    repeats = 2 if args.smoke else args.repeats
    rows = [dict(r, setting="default") for r in _in_child(pauses, repeats, args.smoke, {})]
    rows += [dict(r, setting="OPENBLAS_THREAD_TIMEOUT=4") for r in
             _in_child((0.0,), repeats, args.smoke, {"OPENBLAS_THREAD_TIMEOUT": "4"})]
    rows += [dict(r, setting="products under threadpool_limits(1, 'blas')") for r in
             _in_child((0.0,), repeats, args.smoke, {}, limit_blas=True)]
    print("| setting | pause (s) | step after the products (ms) | products after the step (ms) |")
    print("| --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['setting']} | {r['pause_s']:g} | {1e3 * r['step_s']:.1f} | "
              f"{1e3 * r['products_s']:.1f} |")
    return rows


if __name__ == "__main__":
    main()
