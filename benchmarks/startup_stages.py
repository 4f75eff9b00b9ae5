"""Where workload 6's start-up goes (docs/benchmarks.md, "Why start-up is blocked"): fresh
processes with a warm numba cache (one untimed process warms it), each stage timed in turn.

    python -m benchmarks.startup_stages [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile

from ._common import child_env

STAGES = ("import numpy", "import sklearn.base", "import numba", "rest of import online_gmm",
          "first call of a cached numba function", "first partial_fit")

_CHILD = r"""
import json, time
t = [time.perf_counter()]
import numpy as np
t.append(time.perf_counter())
import sklearn.base
t.append(time.perf_counter())
import numba
t.append(time.perf_counter())
from online_gmm import OnlineGaussianMixture
from online_gmm._backends import check_kernels as _checks
t.append(time.perf_counter())
_checks.all_finite(np.ones(3))
t.append(time.perf_counter())
X = np.random.default_rng(0).standard_normal((1024, 64))
OnlineGaussianMixture(16, random_state=0).partial_fit(X)
t.append(time.perf_counter())
print(json.dumps([b - a for a, b in zip(t, t[1:])]))
"""


def main(argv: list[str] | None = None) -> list[list[float]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as cache:
        env = child_env({"NUMBA_CACHE_DIR": cache})
        runs = []
        for i in range(args.runs + 1):  # the first run fills the cache
            proc = subprocess.run([sys.executable, "-c", _CHILD], env=env, check=True,
                                  capture_output=True, text=True)
            if i:
                runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    print("| stage | " + " | ".join(f"run {i + 1} (s)" for i in range(len(runs))) + " |")
    print("| --- |" + " --- |" * len(runs))
    for j, stage in enumerate(STAGES):
        print(f"| {stage} | " + " | ".join(f"{r[j]:.3f}" for r in runs) + " |")
    print("| total | " + " | ".join(f"{sum(r):.3f}" for r in runs) + " |")
    return runs


if __name__ == "__main__":
    main()
