"""Workload 6, start-up: ``import online_gmm`` plus the first ``partial_fit`` (1,024 x 64
float64, K = 16, ``diag``) in a fresh process, with a cold numba cache (a fresh, empty
``NUMBA_CACHE_DIR``: every kernel compiles) and a warm one (the same directory again).
Target: under 1 s warm. For scale, the same child with scikit-learn's ``GaussianMixture.fit``
in place of ours.

The time is taken inside the child, from just before the import to the end of the first
step; NumPy's own import and the data are outside it (any user has them). The child's whole
wall time, interpreter start-up included, is in the details (``process_s``)."""

from __future__ import annotations

import shutil
import tempfile
from typing import Any

import numpy as np

from .._common import Config, child_env, row, run_child

NAME = "startup"
TITLE = "6. Start-up (import + first partial_fit in a fresh process)"

CHILD = r"""
import json, sys, time
import numpy as np
X = np.random.default_rng(0).standard_normal((1024, 64))
which = sys.argv[1]
t0 = time.perf_counter()
if which == "ours":
    from online_gmm import OnlineGaussianMixture
    t1 = time.perf_counter()
    OnlineGaussianMixture(16, random_state=0).partial_fit(X)
else:
    from sklearn.mixture import GaussianMixture
    t1 = time.perf_counter()
    GaussianMixture(16, covariance_type="diag", random_state=0).fit(X)
t2 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "first_fit_s": t2 - t1, "total_s": t2 - t0}))
"""


def _child(which: str, cache_dir: str) -> dict[str, Any]:
    return run_child(CHILD, args=[which], env=child_env({"NUMBA_CACHE_DIR": cache_dir}))


def run(cfg: Config) -> dict[str, Any]:
    repeats = cfg.reps(3, 1)
    cold_runs, warm_runs, sk_runs = [], [], []
    dirs: list[str] = []
    try:
        # warm-up: one untimed cold child (OS file cache for the interpreter and the
        # libraries); it fills the cache the warm runs use. Smoke mode times that child.
        dirs.append(tempfile.mkdtemp(prefix="ogmm-numba-"))
        warm_dir = dirs[-1]
        first = _child("ours", warm_dir)
        if cfg.smoke:
            cold_runs.append(first)
        for i in range(repeats):  # interleaved: cold, warm, scikit-learn
            if not (cfg.smoke and i == 0):
                dirs.append(tempfile.mkdtemp(prefix="ogmm-numba-"))
                cold_runs.append(_child("ours", dirs[-1]))
            warm_runs.append(_child("ours", warm_dir))
            sk_runs.append(_child("sklearn", warm_dir))
    finally:
        for d in dirs:
            shutil.rmtree(d, ignore_errors=True)

    def med(runs: list[dict[str, Any]], key: str = "total_s") -> float:
        return float(np.median([r[key] for r in runs]))

    warm, cold, sk = med(warm_runs), med(cold_runs), med(sk_runs)
    rows = [
        row(
            case="warm numba cache", quantity="import + first partial_fit", unit="s",
            ours=warm, baseline_name="the same with a cold (empty) cache", baseline=cold,
            ratio=warm / cold, ratio_def="warm / cold (lower is better)",
            target=("ours", "<", 1.0),
            note=f"import {med(warm_runs, 'import_s'):.2f} s + first step "
            f"{med(warm_runs, 'first_fit_s'):.2f} s; whole process "
            f"{med(warm_runs, 'process_s'):.2f} s",
        ),
        row(
            case="warm cache vs scikit-learn", quantity="import + first fit", unit="s",
            ours=warm, baseline_name="import sklearn.mixture + GaussianMixture.fit, same data",
            baseline=sk, ratio=warm / sk, ratio_def="ours / baseline (lower is better)",
            note=f"cold cache: import {med(cold_runs, 'import_s'):.2f} s + first step "
            f"{med(cold_runs, 'first_fit_s'):.2f} s",
        ),
    ]
    return {
        "params": {"repeats": repeats, "n": 1024, "d": 64, "k": 16},
        "rows": rows,
        "details": {"cold": cold_runs, "warm": warm_runs, "sklearn": sk_runs},
    }
