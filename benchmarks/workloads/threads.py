"""Thread oversubscription between numba and BLAS: ``partial_fit`` timed with the default
thread pools against the same with BLAS limited to one thread (threadpoolctl), numba limited
to one thread (``numba.set_num_threads``), and both. If numba's and BLAS's pools fought
(spinning workers of one stealing the cores of the other), a limited configuration would
beat the default; the target is that none is more than 10 % faster than the default.

Two shapes: workload 1's (D = 64, K = 64, float64, a stretch of batches) and workload 3's
(spherical, D = 256, K = 4,096, float32, one step)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._common import Config, batches, embedding_clusters, interleaved, overlapping_clusters, row

NAME = "threads"
TITLE = "Thread pools (numba vs BLAS oversubscription)"

CONFIGS = ("default", "blas=1", "numba=1", "serial")


def sizes(cfg: Config) -> dict[str, Any]:
    if cfg.smoke:
        return dict(small=dict(n=2048, d=8, k=8, batch=256), big=dict(d=32, k=256, batch=128))
    return dict(small=dict(n=51_200, d=64, k=64, batch=1024), big=dict(d=256, k=4096, batch=1024))


class _Pools:
    """Switch the BLAS and numba thread counts between the configurations."""

    def __init__(self) -> None:
        import numba
        from threadpoolctl import ThreadpoolController

        self.numba = numba
        self.controller = ThreadpoolController()
        self.numba_default = numba.get_num_threads()
        blas = [p.num_threads for p in self.controller.lib_controllers if p.user_api == "blas"]
        self.blas_default = max(blas) if blas else 1

    def set(self, config: str) -> None:
        blas = 1 if config in ("blas=1", "serial") else self.blas_default
        nb = 1 if config in ("numba=1", "serial") else self.numba_default
        self.controller.limit(limits=blas, user_api="blas")
        self.numba.set_num_threads(nb)

    def restore(self) -> None:
        self.set("default")


def _cases(pools: _Pools, make_arg, step) -> tuple[dict, dict]:
    cases, setups = {}, {}
    for config in CONFIGS:
        def setup(config=config):
            pools.set(config)
            return make_arg()

        setups[config], cases[config] = setup, step
    return cases, setups


def run(cfg: Config) -> dict[str, Any]:
    from online_gmm import OnlineGaussianMixture

    s = sizes(cfg)
    repeats = cfg.reps(3)
    pools = _Pools()
    rows, details = [], {}
    try:
        # workload 1's shape: a stretch of batches from a fresh model
        p = s["small"]
        rng = np.random.default_rng(cfg.seed)
        X = overlapping_clusters(p["k"], p["d"], seed=cfg.seed).sample(p["n"], rng, np.float64)
        parts = batches(X, p["batch"])

        def fresh():
            return OnlineGaussianMixture(p["k"], covariance_type="diag", random_state=cfg.seed)

        def one_pass(model) -> None:
            for b in parts:
                model.partial_fit(b)

        cases, setups = _cases(pools, fresh, one_pass)
        t_small = interleaved(cases, repeats=repeats, setups=setups, settle=cfg.settle)

        # workload 3's shape: one steady-state step of a big float32 model
        q = s["big"]
        clusters = embedding_clusters(512, q["d"], seed=cfg.seed)
        model = OnlineGaussianMixture(q["k"], covariance_type="spherical", random_state=cfg.seed)
        for _ in range(-(-q["k"] // q["batch"]) + 1):
            model.partial_fit(clusters.sample(q["batch"], rng, np.float32))
        pool = [clusters.sample(q["batch"], rng, np.float32) for _ in range(8)]
        counter = iter(range(10**9))

        def next_batch():
            return pool[next(counter) % len(pool)]

        cases, setups = _cases(pools, next_batch, model.partial_fit)
        t_big = interleaved(cases, repeats=repeats, setups=setups, settle=cfg.settle)
    finally:
        pools.restore()

    for label, t, shape in (
        ("D=64, K=64, float64 (workload 1 shape)", t_small, s["small"]),
        ("spherical D=256, K=4096, float32 (workload 3 shape)", t_big, s["big"]),
    ):
        default = t["default"].median
        best_name = min(CONFIGS[1:], key=lambda c: t[c].median)
        best = t[best_name].median
        rows.append(row(
            case=label, quantity="seconds, default thread pools", unit="s", ours=default,
            baseline_name=f"best limited configuration ({best_name})", baseline=best,
            ratio=default / best, ratio_def="default / best limited (<= 1.1: no oversubscription)",
            target=("ratio", "<=", 1.10),
            note=", ".join(f"{c} {t[c].median * 1e3:.0f} ms" for c in CONFIGS),
        ))
        details[label] = {"shape": shape} | {c: t[c].to_dict() for c in CONFIGS}
    details["numba_default_threads"] = pools.numba_default
    details["blas_default_threads"] = pools.blas_default
    return {"params": s, "rows": rows, "details": details}
