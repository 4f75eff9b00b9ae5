"""Workload 5, memory: peak resident memory of a fresh process streaming 1,000,000 and
10,000,000 samples through ``partial_fit`` (drawn on the fly in batches of 1,024; the stream
is never held). The peak must not grow with the stream (target: within 10 %).

Each size runs in its own child process; the child reports its peak RSS (``VmHWM`` of
``/proc/self/status`` on Linux, else ``ru_maxrss``, or psutil where ``resource`` is missing)
and its RSS after the first 16 batches (imports,
compilation and the model's working set: the floor any stream length pays). An untimed
child runs first so that numba's cache is warm and no measured child compiles."""

from __future__ import annotations

import json
from typing import Any

from .._common import Config, child_env, row, run_child

NAME = "memory"
TITLE = "5. Memory (peak RSS streaming 1M vs 10M samples)"

CHILD = r"""
import json, sys
import numpy as np
from benchmarks._common import overlapping_clusters, stream
from online_gmm import OnlineGaussianMixture

def rss_mib():
    try:
        import psutil
        return psutil.Process().memory_info().rss / 2**20
    except ImportError:
        with open("/proc/self/statm") as fh:
            import os
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

def peak_mib():
    # Linux: VmHWM, the high-water mark of this process's own address space. Not ru_maxrss:
    # after fork + exec it starts at the *parent's* RSS (measured: 790 MiB in a fresh child
    # of a parent holding 800 MB), which would hide the child's own peak.
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 2**10
    except OSError:
        pass
    try:
        import resource
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes vs KiB
    except ImportError:
        import psutil
        info = psutil.Process().memory_info()
        return getattr(info, "peak_wset", info.rss) / 2**20

p = json.loads(sys.argv[1])
clusters = overlapping_clusters(p["k"], p["d"], seed=0)
model = OnlineGaussianMixture(p["k"], covariance_type=p["covariance_type"], random_state=0)
floor = None
for i, batch in enumerate(stream(clusters, p["n"], p["batch"], seed=1, dtype=np.float32)):
    model.partial_fit(batch)
    if i == 15:
        floor = rss_mib()
print(json.dumps({"peak_mib": peak_mib(), "floor_mib": floor, "rss_end_mib": rss_mib(),
                  "n_samples_seen": int(model.n_samples_seen_)}))
"""


def sizes(cfg: Config) -> dict[str, Any]:
    if cfg.smoke:
        return dict(small=20_000, large=200_000, d=8, k=8, batch=1024, covariance_type="diag")
    return dict(
        small=1_000_000, large=10_000_000, d=32, k=32, batch=1024, covariance_type="diag"
    )


def measure(n: int, s: dict[str, Any]) -> dict[str, Any]:
    params = {key: s[key] for key in ("d", "k", "batch", "covariance_type")} | {"n": n}
    out = run_child(CHILD, args=[json.dumps(params)], env=child_env(), timeout=1800)
    if out["n_samples_seen"] != n:
        raise RuntimeError(f"memory child streamed {out['n_samples_seen']} samples, not {n}")
    return out


def run(cfg: Config) -> dict[str, Any]:
    s = sizes(cfg)
    # warm-up child: fills numba's cache, so that no measured child pays a JIT compilation
    # (whose transient memory is not the stream's)
    measure(4 * s["batch"], s)
    small, large = measure(s["small"], s), measure(s["large"], s)
    ratio = large["peak_mib"] / small["peak_mib"]
    growth = large["peak_mib"] - large["floor_mib"]
    rows = [row(
        case=f"{s['small']:,} -> {s['large']:,} samples (D={s['d']}, K={s['k']}, float32)",
        quantity="peak RSS", unit="MiB", ours=large["peak_mib"],
        baseline_name=f"peak RSS streaming {s['small']:,} samples", baseline=small["peak_mib"],
        ratio=ratio, ratio_def="large / small (1 = flat)", target=("ratio", "<=", 1.10),
        note=f"floor after 16 batches {large['floor_mib']:.0f} MiB; "
        f"peak above it {growth:.1f} MiB over {s['large']:,} samples; "
        f"one run per size",
    )]
    return {"params": s, "rows": rows, "details": {"small": small, "large": large}}
