"""The built-in demo: stream bundled or generated data through ``partial_fit`` and compare
with scikit-learn's batch ``GaussianMixture`` on the same data."""

from __future__ import annotations

import time

import numpy as np


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def digits_demo(n_components: int = 10, batch_size: int = 64, seed: int = 0) -> dict:
    """scikit-learn's bundled digits (PCA to 16-d), one pass of ``partial_fit`` against a
    converged batch ``GaussianMixture``."""
    from sklearn.datasets import load_digits
    from sklearn.decomposition import PCA
    from sklearn.metrics import adjusted_rand_score
    from sklearn.mixture import GaussianMixture
    from sklearn.model_selection import train_test_split

    from . import OnlineGaussianMixture

    X, y = load_digits(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, random_state=seed)
    pca = PCA(16, random_state=seed).fit(X_tr)
    X_tr, X_te = pca.transform(X_tr), pca.transform(X_te)
    OnlineGaussianMixture(2).partial_fit(X_tr[:8])  # compile (or load cached) kernels

    def stream():
        model = OnlineGaussianMixture(n_components, random_state=seed)
        order = np.random.default_rng(seed).permutation(len(X_tr))
        for start in range(0, len(order), batch_size):
            model.partial_fit(X_tr[order[start : start + batch_size]])
        return model

    online, t_online = _timed(stream)
    batch, t_batch = _timed(
        lambda: GaussianMixture(n_components, covariance_type="diag", random_state=seed).fit(
            X_tr
        )
    )
    return {
        "data": f"digits, PCA to 16-d: {len(X_tr)} train / {len(X_te)} held-out samples",
        "online_ll": online.score(X_te),
        "batch_ll": batch.score(X_te),
        "online_s": t_online,
        "batch_s": t_batch,
        "online_ari": adjusted_rand_score(y_te, online.predict(X_te)),
        "batch_ari": adjusted_rand_score(y_te, batch.predict(X_te)),
        "sizes": np.bincount(online.predict(X_te), minlength=n_components),
    }


def drift_demo(seed: int = 0) -> dict:
    """A generated stream whose clusters move half way: forgetting against none."""
    from . import OnlineGaussianMixture

    rng = np.random.default_rng(seed)
    K, D, n = 4, 8, 40000
    start = rng.normal(0, 6, (K, D))
    end = start + rng.normal(0, 4, (K, D))

    def draw(centres, m):
        lab = rng.integers(0, K, m)
        return centres[lab] + rng.standard_normal((m, D))

    stream = np.concatenate([draw(start, n // 2), draw(end, n // 2)])
    held_out = draw(end, 5000)
    out = {}
    for eta in (0.0, 0.005):
        model = OnlineGaussianMixture(K, forgetting_rate=eta, random_state=seed)
        t0 = time.perf_counter()
        for b in np.array_split(stream, n // 500):
            model.partial_fit(b)
        out[eta] = (model.score(held_out), time.perf_counter() - t0)
    return {"n": n, "results": out}


def run_demo() -> None:
    """Print the demo's report."""
    d = digits_demo()
    print("online-gmm demo")
    print("=" * 72)
    print(f"1. {d['data']}, K=10, diag covariances")
    print(f"   {'':28s}{'held-out log-lik':>18s}{'time (s)':>10s}{'ARI vs digit':>14s}")
    print(
        f"   {'OnlineGaussianMixture, 1 pass':28s}{d['online_ll']:18.3f}{d['online_s']:10.3f}"
        f"{d['online_ari']:14.3f}"
    )
    print(
        f"   {'sklearn GaussianMixture':28s}{d['batch_ll']:18.3f}{d['batch_s']:10.3f}"
        f"{d['batch_ari']:14.3f}"
    )
    gap = (d["online_ll"] - d["batch_ll"]) / abs(d["batch_ll"])
    print(f"   relative log-likelihood gap: {gap:+.2%}; cluster sizes: {d['sizes'].tolist()}")
    r = drift_demo()
    print(f"2. drifting stream: {r['n']} samples, 4 clusters in 8-d move half way")
    for eta, (ll, t) in r["results"].items():
        label = f"forgetting_rate={eta}"
        print(f"   {label:28s} held-out log-lik on the new clusters {ll:9.3f}  ({t:.2f} s)")
