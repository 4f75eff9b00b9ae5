"""Workload 9, the variational mixture against scikit-learn's ``BayesianGaussianMixture``
(issue 18's "speed side by side"): ``n_components=30``, ``diag``, the Dirichlet-process
prior, on 100,000 x 8 rows of 12 overlapping clusters (the quality benchmark's variational
stream, ``overlapping_clusters(12, 8, separation=4)``), both in one process:

* throughput: samples per second of one ``partial_fit`` pass of
  ``OnlineBayesianGaussianMixture`` (batches of 1,000, its warm-up included) against one
  variational iteration (E-step and M-step) of scikit-learn's;
* a model: the wall time of our one pass against scikit-learn's ``fit`` with its defaults
  (``max_iter=100``, one initialisation), with the held-out log-likelihood of each model's
  posterior-mean mixture and its effective components (weights above 1 / (10 K)) in the
  row's note: the time to a model, at the quality each reaches.

No target is set by the issue for the ratios; the rows carry none."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._common import Config, batches, interleaved, overlapping_clusters, row, silence_warnings
from ..quality import effective_components, plug_in_loglik

NAME = "variational"
TITLE = "9. variational mixture, D = 8, K = 30, against BayesianGaussianMixture"


def sizes(cfg: Config) -> dict[str, int]:
    if cfg.smoke:
        return dict(n=3000, n_test=1000, d=8, k=8, n_true=4, batch=500)
    return dict(n=100_000, n_test=20_000, d=8, k=30, n_true=12, batch=1000)


def _common(k: int, seed: int) -> dict[str, Any]:
    return dict(n_components=k, covariance_type="diag",
                weight_concentration_prior_type="dirichlet_process", random_state=seed)


def sklearn_iteration(X: np.ndarray, k: int, seed: int):
    """One variational iteration of scikit-learn's ``BayesianGaussianMixture`` on ``X``,
    from a state reached by one untimed iteration."""
    from sklearn.mixture import BayesianGaussianMixture

    bgm = BayesianGaussianMixture(**_common(k, seed), max_iter=1).fit(X)

    def one_iteration() -> None:
        _, log_resp = bgm._e_step(X)
        bgm._m_step(X, log_resp)

    return one_iteration


def run(cfg: Config) -> dict[str, Any]:
    from sklearn.mixture import BayesianGaussianMixture

    from online_gmm import OnlineBayesianGaussianMixture

    silence_warnings()
    s = sizes(cfg)
    n, k, bs = s["n"], s["k"], s["batch"]
    clusters = overlapping_clusters(s["n_true"], s["d"], seed=cfg.seed, separation=4.0)
    rng = np.random.default_rng(cfg.seed + 9)
    X = clusters.sample(n, rng, np.float64)
    H = clusters.sample(s["n_test"], rng, np.float64)
    parts = batches(X, bs)

    def setup():
        return OnlineBayesianGaussianMixture(**_common(k, cfg.seed))

    def one_pass(model) -> Any:
        for b in parts:
            model.partial_fit(b)
        return model

    def sklearn_fit() -> Any:
        return BayesianGaussianMixture(**_common(k, cfg.seed)).fit(X)

    t = interleaved(
        {"ours": one_pass, "sklearn": sklearn_iteration(X, k, cfg.seed)},
        repeats=cfg.reps(3), setups={"ours": setup}, settle=cfg.settle,
    )
    ours_rate, sk_rate = n / t["ours"].median, n / t["sklearn"].median
    rows = [row(
        case="variational: throughput", quantity="samples/s", unit="samples/s", ours=ours_rate,
        baseline_name="sklearn BayesianGaussianMixture, one variational iteration",
        baseline=sk_rate, ratio=ours_rate / sk_rate,
        ratio_def="ours / baseline (higher is better)",
    )]

    # the time to a model: our pass and scikit-learn's default fit, interleaved (both
    # deterministic for the seed), then what each model is worth on held-out rows
    models: dict[str, Any] = {}

    def ours_model(model) -> None:
        models["ours"] = one_pass(model)

    def sk_model_fit() -> None:
        models["sklearn"] = sklearn_fit()

    fits = interleaved({"ours": ours_model, "sklearn": sk_model_fit}, repeats=cfg.reps(1),
                       warmup=0, setups={"ours": setup}, settle=cfg.settle)
    ours_model, sk_model = models["ours"], models["sklearn"]
    ll_ours = plug_in_loglik(ours_model.to_sklearn(), H)
    ll_sk = plug_in_loglik(sk_model, H)
    eff_ours, eff_sk = (effective_components(ours_model.weights_, k),
                        effective_components(sk_model.weights_, k))
    t_ours, t_sk = fits["ours"].median, fits["sklearn"].median
    rows.append(row(
        case="variational: time to a model", quantity="seconds", unit="s", ours=t_ours,
        baseline_name=f"sklearn BayesianGaussianMixture.fit (max_iter=100; "
                      f"{sk_model.n_iter_} iterations, converged={sk_model.converged_})",
        baseline=t_sk, ratio=t_ours / t_sk, ratio_def="ours / baseline (lower is better)",
        note=(f"one pass; held-out log-likelihood {ll_ours:.4f} vs {ll_sk:.4f} "
              f"(gap {100 * (ll_sk - ll_ours) / abs(ll_sk):.2f} %), effective components "
              f"{eff_ours} vs {eff_sk} of {k} ({s['n_true']} true)"),
    ))
    return {
        "params": s,
        "rows": rows,
        "details": {
            "throughput": {name: t[name].to_dict() for name in t},
            "fit": {name: fits[name].to_dict() for name in fits},
            "held_out_loglik": {"ours": ll_ours, "sklearn": ll_sk},
            "effective_components": {"ours": eff_ours, "sklearn": eff_sk},
            "sklearn_n_iter": int(sk_model.n_iter_),
            "sklearn_converged": bool(sk_model.converged_),
        },
    }
