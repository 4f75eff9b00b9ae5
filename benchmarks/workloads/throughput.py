"""Workload 1, stream throughput: samples per second of one ``partial_fit`` pass over
200,000 x 64 float64 samples (64 overlapping clusters, K = 64, batches of 1,024), against
one EM iteration of scikit-learn's ``GaussianMixture`` on the same data, one
``MiniBatchKMeans.partial_fit`` pass, and river's online k-means (on a subsample).

The headline (issue 29): the **default first pass, warm-up included**, against
``MiniBatchKMeans.partial_fit``'s pass on ``make_blobs(180_000, n_features=64, centers=64,
cluster_std=6, center_box=(-10, 10), random_state=1)``, the first 150,000 rows streamed in
batches of 1,024 (K = 64, ``diag``, fresh models), with the warm-up's share of the pass
(the default pass less the same pass with ``warmup_size=0``, timed alongside) and the
held-out mean log-likelihood of both (the last 30,000 rows)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._breakdown import describe_breakdown, stage_breakdown
from .._common import Config, batches, interleaved, overlapping_clusters, row, silence_warnings

NAME = "throughput"
TITLE = "1. Stream throughput (one partial_fit pass vs one EM iteration)"


def sizes(cfg: Config) -> dict[str, int]:
    if cfg.smoke:
        return dict(n=4096, d=8, k=8, batch=256, river_n=100)
    return dict(n=200_000, d=64, k=64, batch=1024, river_n=2_000)


def headline_sizes(cfg: Config) -> dict[str, int]:
    if cfg.smoke:
        return dict(n=6_000, test=1_000, d=8, k=8, batch=256)
    return dict(n=180_000, test=30_000, d=64, k=64, batch=1024)


def headline(cfg: Config) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The default first pass (warm-up included) against MiniBatchKMeans' pass on issue
    29's blobs: the rows and the details."""
    from sklearn.cluster import MiniBatchKMeans
    from sklearn.datasets import make_blobs

    s = headline_sizes(cfg)
    n, k, bs = s["n"], s["k"], s["batch"]
    X, _ = make_blobs(n, n_features=s["d"], centers=k, cluster_std=6.0,
                      center_box=(-10.0, 10.0), random_state=1)
    train, test = X[: n - s["test"]], X[n - s["test"]:]
    parts = batches(train, bs)
    setups, cases = {}, {}
    setups["default"], cases["default"] = ours_pass(parts, k, "diag", cfg.seed)
    setups["w0"], cases["w0"] = ours_pass(parts, k, "diag", cfg.seed, warmup_size=0)

    def mbk_setup():
        return MiniBatchKMeans(k, batch_size=bs, random_state=cfg.seed)

    def mbk_pass(model) -> None:
        for b in parts:
            model.partial_fit(b)

    setups["mbk"], cases["mbk"] = mbk_setup, mbk_pass
    t = interleaved(cases, repeats=cfg.reps(7, 2), setups=setups, settle=cfg.settle)
    held_out = {}
    for name in ("default", "w0"):  # (untimed: the same deterministic passes)
        model = setups[name]()
        cases[name](model)
        held_out[name] = float(model.score(test))
    rows_n = train.shape[0]
    sps = {name: rows_n / t[name].median for name in t}
    per_rep = [m / d for m, d in zip(t["mbk"].times, t["default"].times, strict=True)]
    one_off = t["default"].median - t["w0"].median
    share = one_off / t["default"].median
    row_ = row(
        case="diag, default pass (warm-up included) vs MiniBatchKMeans, make_blobs",
        quantity="samples/s", unit="samples/s", ours=sps["default"],
        baseline_name="MiniBatchKMeans.partial_fit, one pass", baseline=sps["mbk"],
        ratio=sps["default"] / sps["mbk"], ratio_def="ours / baseline (higher is better)",
        target=("ratio", ">=", 1.0),
        note=(f"the headline (issue 29): {rows_n:,} rows of make_blobs({n:,}, {s['d']}, "
              f"centers={k}, cluster_std=6, center_box=(-10, 10), random_state=1) in "
              f"batches of {bs:,}, K = {k} diag; the warm-up's share {one_off:.3f} s of "
              f"{t['default'].median:.3f} s ({100 * share:.0f} %; the pass with "
              f"warmup_size=0: {t['w0'].median:.3f} s); per-repetition ratios "
              f"{min(per_rep):.2f} to {max(per_rep):.2f}; held-out mean log-likelihood "
              f"(last {s['test']:,} rows) {held_out['default']:.3f} (warmup_size=0: "
              f"{held_out['w0']:.3f})"),
        warmup_share=share, warmup_one_off_s=one_off, held_out_ll=held_out["default"],
        held_out_ll_w0=held_out["w0"],
    )
    return [row_], {"params": s, "times": {name: t[name].to_dict() for name in t},
                    "held_out_ll": held_out, "per_repetition_ratio": per_rep}


def sklearn_iteration(X: np.ndarray, k: int, covariance_type: str, seed: int):
    """A callable running exactly one EM iteration (E-step + M-step) of scikit-learn's
    ``GaussianMixture`` on ``X``, from a state reached by one untimed iteration."""
    from sklearn.mixture import GaussianMixture

    gm = GaussianMixture(
        k, covariance_type=covariance_type, init_params="random_from_data", max_iter=1,
        random_state=seed,
    ).fit(X)

    def one_iteration() -> None:
        _, log_resp = gm._e_step(X)
        gm._m_step(X, log_resp)

    return one_iteration


def ours_pass(parts: list[np.ndarray], k: int, covariance_type: str, seed: int,
              **params: Any):
    from online_gmm import OnlineGaussianMixture

    def setup():
        return OnlineGaussianMixture(k, covariance_type=covariance_type, random_state=seed,
                                     **params)

    def one_pass(model) -> None:
        for b in parts:
            model.partial_fit(b)

    return setup, one_pass


def run(cfg: Config) -> dict[str, Any]:
    from sklearn.cluster import MiniBatchKMeans

    try:  # the ``bench`` extra; without it the river rows are left out
        from river import cluster as river_cluster
    except ImportError:
        river_cluster = None

    silence_warnings()
    rows, details = headline(cfg)
    s = sizes(cfg)
    n, k, bs = s["n"], s["k"], s["batch"]
    rng = np.random.default_rng(cfg.seed)
    X = overlapping_clusters(k, s["d"], seed=cfg.seed).sample(n, rng, np.float64)
    parts = batches(X, bs)
    river_rows = [dict(enumerate(x)) for x in X[: s["river_n"]].tolist()]

    cases, setups = {}, {}
    for ct in ("diag", "spherical"):
        setups[f"ours_{ct}"], cases[f"ours_{ct}"] = ours_pass(parts, k, ct, cfg.seed)
        # the same pass without the warm-up, in the same run: its one-off cost, and the
        # steady rate of the online update (the "before" of the warm-up)
        setups[f"ours_{ct}_w0"], cases[f"ours_{ct}_w0"] = ours_pass(parts, k, ct, cfg.seed,
                                                                    warmup_size=0)
        cases[f"sklearn_{ct}"] = sklearn_iteration(X, k, ct, cfg.seed)

    def mbk_setup():
        return MiniBatchKMeans(k, batch_size=bs, random_state=cfg.seed)

    def mbk_pass(model) -> None:
        for b in parts:
            model.partial_fit(b)

    def river_setup():
        return river_cluster.KMeans(n_clusters=k, seed=cfg.seed)

    def river_pass(model) -> None:
        for x in river_rows:
            model.learn_one(x)

    setups["mbk"], cases["mbk"] = mbk_setup, mbk_pass
    if river_cluster is not None:
        setups["river"], cases["river"] = river_setup, river_pass

    t = interleaved(cases, repeats=cfg.reps(3), setups=setups, settle=cfg.settle)
    sps = {name: (s["river_n"] if name == "river" else n) / t[name].median for name in t}

    breakdowns = {}
    for ct in ("diag", "spherical"):
        ours = sps[f"ours_{ct}"]
        setup, one_pass = ours_pass(parts[:-1][:20], k, ct, cfg.seed)
        model = setup()
        one_pass(model)  # a steady-state model, then one step taken apart by stage
        breakdowns[ct] = stage_breakdown(model, parts[-1], repeats=cfg.reps(10, 2))
        rows.append(row(
            case=f"{ct} vs GaussianMixture", quantity="samples/s", unit="samples/s",
            ours=ours, baseline_name="sklearn GaussianMixture, one EM iteration",
            baseline=sps[f"sklearn_{ct}"], ratio=ours / sps[f"sklearn_{ct}"],
            ratio_def="ours / baseline (higher is better)", target=("ratio", ">=", 3.0),
            note=describe_breakdown(breakdowns[ct]),
        ))
        plain = sps[f"ours_{ct}_w0"]
        one_off = t[f"ours_{ct}"].median - t[f"ours_{ct}_w0"].median
        rows.append(row(
            case=f"{ct} vs GaussianMixture, warmup_size=0", quantity="samples/s",
            unit="samples/s", ours=plain,
            baseline_name="sklearn GaussianMixture, one EM iteration",
            baseline=sps[f"sklearn_{ct}"], ratio=plain / sps[f"sklearn_{ct}"],
            ratio_def="ours / baseline (higher is better)", target=("ratio", ">=", 3.0),
            note=(f"the pass without the warm-up (the steady online update); the warm-up's "
                  f"one-off cost in the default pass: {one_off:.2f} s"),
        ))
        rows.append(row(
            case=f"{ct} vs MiniBatchKMeans", quantity="samples/s", unit="samples/s",
            ours=ours, baseline_name="MiniBatchKMeans.partial_fit, one pass",
            baseline=sps["mbk"], ratio=ours / sps["mbk"],
            ratio_def="ours / baseline (higher is better)", target=("ratio", ">=", 1.0),
            note=(f"the default pass, warm-up included: its share {one_off:.2f} s of "
                  f"{t[f'ours_{ct}'].median:.2f} s "
                  f"({100 * one_off / t[f'ours_{ct}'].median:.0f} %)"),
        ))
        if river_cluster is None:
            continue
        rows.append(row(
            case=f"{ct} vs river KMeans", quantity="samples/s", unit="samples/s",
            ours=ours, baseline_name=f"river cluster.KMeans.learn_one ({s['river_n']} samples)",
            baseline=sps["river"], ratio=ours / sps["river"],
            ratio_def="ours / baseline (higher is better)",
        ))
    return {
        "params": s,
        "rows": rows,
        "details": {name: t[name].to_dict() for name in t} | {"breakdown": breakdowns,
                                                                "headline": details},
    }
