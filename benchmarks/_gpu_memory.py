"""Section "memory" of ``python -m benchmarks.gpu``: the peak memory of one steady
``GMMPrototypes.update`` against the size of the mixture's state, on the CUDA code path.

On CUDA: ``torch.cuda.max_memory_allocated`` around one update. On CPU (``--device cpu``)
the reference backend runs the code CUDA runs (``use_backend("reference")``), in a child
process whose allocator hands every block of 64 KiB or more back to the system when freed
(``MALLOC_MMAP_THRESHOLD_``), so that the peak resident set of one update (Linux's
``VmHWM``, reset first) less the resident set before it is the memory the update held at
its peak. The state is built directly (every prototype seeded, random unit means) rather
than by seeding updates: only the steady step is measured.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from ._common import REPO_ROOT, child_env

TARGET = 2.0  # peak during one update, state included, over the state


def _state_dict(K: int, D: int, covariance_type: str, seed: int = 0) -> dict:
    import torch

    from online_gmm import core

    g = torch.Generator().manual_seed(seed)
    means = torch.nn.functional.normalize(torch.randn(K, D, generator=g,
                                                      dtype=torch.float64), dim=1)
    shape = core.covariance(covariance_type).shape(K, D)
    cov = torch.full(shape, 0.05, dtype=torch.float64)
    mass = torch.full((K,), 10.0, dtype=torch.float64)
    return {
        "weights": torch.full((K,), 1.0 / K, dtype=torch.float64), "means": means,
        "covariances": cov, "precisions_cholesky": cov.rsqrt(), "mass": mass,
        "nu": mass.clone(), "moment": cov * 10.0, "tied_mass": torch.zeros(1, dtype=torch.float64),
        "seeded": torch.ones(K, dtype=torch.bool),
        "step": torch.tensor(100), "n_samples_seen": torch.tensor(1000 * K),
        "n_reseeded": torch.tensor(0),
        "rng_state": __import__("ssl_bridge._random", fromlist=["x"]).generator_state(
            torch.device("cpu"), 0),
    }


def _rss() -> tuple[int, int]:
    """(VmRSS, VmHWM) of this process, bytes."""
    fields = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(value.split()[0]) * 1024
    return fields["VmRSS"], fields["VmHWM"]


def measure(K: int, D: int, B: int, covariance_type: str, device: str) -> dict[str, Any]:
    """One steady update's peak (this process): the child's body."""
    import torch

    from online_gmm import core
    from ssl_bridge import GMMPrototypes

    head = GMMPrototypes(K, D, covariance_type=covariance_type, warmup_size=0)
    head.load_state_dict(_state_dict(K, D, covariance_type), strict=False)
    head = head.to(device)
    state_bytes = sum(b.nbytes for b in head.buffers())
    x = torch.nn.functional.normalize(torch.randn(B, D, device=device), dim=1)
    cuda = torch.device(device).type == "cuda"
    with core.use_backend("reference"):
        head.update(x)  # (first call: imports, caches, the host's view of the buffers)
        if cuda:
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
            before = torch.cuda.memory_allocated(device)
            head.update(x)
            torch.cuda.synchronize(device)
            peak = torch.cuda.max_memory_allocated(device) - before
        else:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # reset VmHWM to the current resident set
            before, _ = _rss()
            head.update(x)
            _, hwm = _rss()
            peak = hwm - before
    return {"K": K, "D": D, "B": B, "covariance_type": covariance_type,
            "state_mib": state_bytes / 2**20, "update_extra_mib": peak / 2**20,
            "peak_over_state": (state_bytes + peak) / state_bytes,
            "met": (state_bytes + peak) / state_bytes <= TARGET}


def run(*, K: int, D: int, B: int, device: str,
        covariance_types: tuple[str, ...] = ("spherical", "diag")) -> dict[str, Any]:
    rows = []
    for ct in covariance_types:
        code = ("import json, sys; from benchmarks._gpu_memory import measure; "
                f"print(json.dumps(measure({K}, {D}, {B}, {ct!r}, {device!r})))")
        env = child_env()
        env.update(MALLOC_MMAP_THRESHOLD_="65536", MALLOC_TRIM_THRESHOLD_="0",
                   OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "2"))
        proc = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=env,
                              capture_output=True, text=True, timeout=1800)
        if proc.returncode:
            rows.append({"covariance_type": ct, "met": False,
                         "error": proc.stderr.strip().splitlines()[-1][:300]})
            continue
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return {"target": f"peak of one update, state included <= {TARGET}x the state",
            "how": ("torch.cuda.max_memory_allocated" if device.startswith("cuda") else
                    "peak resident set (VmHWM) of one update in a child process whose "
                    "allocator returns every block >= 64 KiB when freed"),
            "rows": rows}
