"""The machine note: cores, memory, BLAS and OpenMP pools, numba's threads, versions, load."""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata
from typing import Any

_ENV_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMBA_NUM_THREADS",
    "NUMBA_THREADING_LAYER",
    "NUMBA_CACHE_DIR",
)
_PACKAGES = ("numpy", "scipy", "scikit-learn", "numba", "threadpoolctl", "river", "torch")


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    try:
        pages = os.sysconf("SC_PHYS_PAGES")
        size = os.sysconf("SC_PAGE_SIZE")
        return round(pages * size / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        return None


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def load_average() -> list[float] | None:
    """1, 5 and 15-minute load averages (None where the OS has none)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (OSError, AttributeError):
        return None


def thread_pools() -> dict[str, Any]:
    """threadpoolctl's view of the BLAS/OpenMP pools, and numba's thread count and layer."""
    import numba
    import numpy as np
    from threadpoolctl import threadpool_info

    from online_gmm._backends import kernels as _kernels

    # numba picks its threading layer at the first parallel launch: make one (the smallest
    # that the kernel runs in parallel, 2 MiB).
    n = _kernels.SMALL_KERNEL_WORK
    g = np.zeros((n, 1))
    _kernels.log_density(g, np.zeros(n), np.zeros(1), np.ones(1), np.zeros(1))
    try:
        layer = numba.threading_layer()
    except ValueError:
        layer = None
    pools = [
        {
            k: info.get(k)
            for k in (
                "user_api",
                "internal_api",
                "prefix",
                "version",
                "num_threads",
                "threading_layer",
                "architecture",
            )
            if info.get(k) is not None
        }
        for info in threadpool_info()
    ]
    return {
        "numba_num_threads": numba.get_num_threads(),
        "numba_threading_layer": layer,
        "threadpoolctl": pools,
    }


def source_state() -> dict[str, Any]:
    """The commit measured, and whether the library's files differ from it (uncommitted)."""
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True,
                                 timeout=10, check=True)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip()

    dirty = git("status", "--porcelain", "--", "online_gmm")
    return {"commit": git("rev-parse", "--short", "HEAD"),
            "online_gmm_uncommitted_changes": None if dirty is None else bool(dirty)}


def machine_note() -> dict[str, Any]:
    """Everything a reader needs to judge the numbers: hardware, software, threads, load."""
    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "cpu": _cpu_model(),
        "logical_cores": os.cpu_count(),
        "usable_cores": _usable_cores(),
        "memory_gib": _memory_gib(),
        "versions": versions,
        "env": {k: os.environ[k] for k in _ENV_VARS if k in os.environ},
        "threads": thread_pools(),
        "source": source_state(),
        "load_average_start": load_average(),
    }


def describe(note: dict[str, Any]) -> str:
    """A few lines of markdown for the head of ``results.md``."""
    th = note["threads"]
    blas = [
        f"{p.get('internal_api')} {p.get('version') or ''} ({p.get('num_threads')} threads"
        + (f", {p['architecture']}" if p.get("architecture") else "")
        + ")"
        for p in th["threadpoolctl"]
        if p.get("user_api") == "blas"
    ]
    omp = [
        f"{p.get('prefix')} ({p.get('num_threads')} threads)"
        for p in th["threadpoolctl"]
        if p.get("user_api") == "openmp"
    ]
    v = note["versions"]
    lines = [
        f"- CPU: {note['cpu']}; {note['usable_cores']} usable cores "
        f"({note['logical_cores']} logical); {note['memory_gib']} GiB; {note['platform']}",
        f"- BLAS: {'; '.join(blas) or 'none found'}; OpenMP: {'; '.join(omp) or 'none'}",
        f"- numba {v.get('numba')}: {th['numba_num_threads']} threads, "
        f"threading layer {th['numba_threading_layer']}",
        f"- Python {note['python']}, numpy {v.get('numpy')}, scipy {v.get('scipy')}, "
        f"scikit-learn {v.get('scikit-learn')}, river {v.get('river')}",
        f"- load average (1, 5, 15 min) at start {note.get('load_average_start')}, "
        f"at end {note.get('load_average_end')}",
    ]
    src = note.get("source") or {}
    if src.get("commit"):
        lines.append(
            f"- source: commit {src['commit']}"
            + (" with uncommitted changes in online_gmm/"
               if src.get("online_gmm_uncommitted_changes") else "")
        )
    if note["env"]:
        lines.append("- environment: " + ", ".join(f"{k}={v}" for k, v in note["env"].items()))
    return "\n".join(lines)
