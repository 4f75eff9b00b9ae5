"""Workload 3, embedding scale: 256-d float32 embeddings, K = 4,096, batches of 1,024,
``spherical`` and ``diag``. The time of one (steady-state) ``partial_fit`` against the time of
the matrix products it cannot avoid, run alone with NumPy in float32 on the same shapes:

- spherical: ``X @ means.T`` (E-step) and ``R.T @ X`` (statistics), each (1024 x 256) by
  (256 x 4096) in size;
- diag: ``[X*X, X] @ W`` with W (2D x K) (E-step) and ``R.T @ [X, X*X]`` (statistics).

The ratio is the *roofline fraction* ``t_matmuls / t_partial_fit`` (1 = nothing but the
products; the target is at least 0.5). The notes break one step down by stage
(``benchmarks/_breakdown.py``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._breakdown import describe_breakdown, stage_breakdown
from .._common import Config, embedding_clusters, interleaved, row

NAME = "embedding"
TITLE = "3. Embedding scale (one partial_fit vs the unavoidable BLAS products)"


def sizes(cfg: Config) -> dict[str, int]:
    if cfg.smoke:
        return dict(d=32, k=256, batch=128, n_clusters=64)
    return dict(d=256, k=4096, batch=1024, n_clusters=512)


def matmul_case(covariance_type: str, X: np.ndarray, k: int, rng: np.random.Generator):
    """The same-shaped float32 BLAS products alone (operands built outside the timer)."""
    n, d = X.shape
    f32 = np.float32
    R = rng.random((n, k), dtype=f32)
    if covariance_type == "spherical":
        M = rng.standard_normal((k, d), dtype=f32)

        def products() -> None:
            np.matmul(X, M.T)
            np.matmul(R.T, X)
    else:
        XX = np.concatenate([X * X, X], axis=1)
        W = rng.standard_normal((2 * d, k), dtype=f32)

        def products() -> None:
            np.matmul(XX, W)
            np.matmul(R.T, XX)

    return products


def run(cfg: Config) -> dict[str, Any]:
    from online_gmm import OnlineGaussianMixture

    s = sizes(cfg)
    d, k, bs = s["d"], s["k"], s["batch"]
    repeats = cfg.reps(5, 2)
    rng = np.random.default_rng(cfg.seed)
    clusters = embedding_clusters(s["n_clusters"], d, seed=cfg.seed)
    n_warm = -(-k // bs) + 2  # every component seeded, then two ordinary steps
    pool = [clusters.sample(bs, rng, np.float32) for _ in range(n_warm + repeats + 1)]

    rows, details = [], {}
    for ct in ("spherical", "diag"):
        model = OnlineGaussianMixture(k, covariance_type=ct, random_state=cfg.seed)
        for X in pool[:n_warm]:
            model.partial_fit(X)
        feed = iter(pool[n_warm:])
        cases = {
            "partial_fit": lambda X, m=model: m.partial_fit(X),
            "matmuls": matmul_case(ct, pool[0], k, rng),
        }
        setups = {"partial_fit": lambda f=feed: next(f)}
        # warm-up=0 for partial_fit: the n_warm steps above were its warm-up
        t = interleaved(cases, repeats=repeats, warmup=0, setups=setups, settle=cfg.settle)
        t_pf, t_mm = t["partial_fit"].median, t["matmuls"].median
        breakdown = stage_breakdown(model, pool[-1], repeats=max(2, repeats))
        rows.append(row(
            case=f"{ct}, K={k}, D={d}, float32", quantity="seconds per partial_fit",
            unit="s", ours=t_pf, baseline_name="the same-shaped BLAS matmuls alone",
            baseline=t_mm, ratio=t_mm / t_pf,
            ratio_def="baseline / ours = roofline fraction (higher is better)",
            target=("ratio", ">=", 0.5),
            note=describe_breakdown(breakdown),
        ))
        details[ct] = {name: t[name].to_dict() for name in t} | {"breakdown": breakdown}
    return {"params": s, "rows": rows, "details": details}
