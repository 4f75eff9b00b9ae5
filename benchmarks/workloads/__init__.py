"""One module per workload. Each exposes ``NAME``, ``TITLE`` and ``run(cfg) -> dict`` with
``rows`` (the table lines, see :func:`benchmarks._common.row`), ``params`` and ``details``."""

from __future__ import annotations

from types import ModuleType

from . import (
    embedding,
    fit,
    full_cov,
    memory,
    quality,
    startup,
    threads,
    throughput,
    time_to_quality,
    variational,
)

#: In the order the suite runs them.
WORKLOADS: dict[str, ModuleType] = {
    m.NAME: m
    for m in (
        throughput, time_to_quality, fit, embedding, full_cov, memory, startup, threads,
        quality, variational,
    )
}
