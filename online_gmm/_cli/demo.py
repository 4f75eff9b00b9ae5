"""The built-in demo: stream bundled or generated data through ``partial_fit`` and compare
with scikit-learn's batch ``GaussianMixture`` on the same data."""

from __future__ import annotations

import time

import numpy as np


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


#: Timing runs of each side of the digits comparison (the ratio's spread is reported).
REPEATS = 5
#: The largest spread (slowest / fastest run's ratio) of a ratio that is reported as one.
STABLE_SPREAD = 1.5


def digits_demo(n_components: int = 10, batch_size: int = 64, seed: int = 0,
                repeats: int = REPEATS) -> dict:
    """scikit-learn's bundled digits (PCA to 16-d), one pass of ``partial_fit`` against a
    converged batch ``GaussianMixture``; each timed ``repeats`` times, alternately (a
    single timing on a shared machine is noise)."""
    from sklearn.datasets import load_digits
    from sklearn.decomposition import PCA
    from sklearn.metrics import adjusted_rand_score
    from sklearn.mixture import GaussianMixture
    from sklearn.model_selection import train_test_split

    from .. import OnlineGaussianMixture

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

    def batch_fit():
        return GaussianMixture(n_components, covariance_type="diag", random_state=seed).fit(X_tr)

    online_times, batch_times = [], []
    for _ in range(max(1, repeats)):  # (the same seeds: every run fits the same models)
        online, t = _timed(stream)
        online_times.append(t)
        batch, t = _timed(batch_fit)
        batch_times.append(t)
    t_online, t_batch = float(np.median(online_times)), float(np.median(batch_times))
    return {
        "data": f"digits, PCA to 16-d: {len(X_tr)} train / {len(X_te)} held-out samples",
        "online_ll": online.score(X_te),
        "batch_ll": batch.score(X_te),
        "online_s": t_online,
        "batch_s": t_batch,
        "online_times": online_times,
        "batch_times": batch_times,
        "online_ari": adjusted_rand_score(y_te, online.predict(X_te)),
        "batch_ari": adjusted_rand_score(y_te, batch.predict(X_te)),
        "sizes": np.bincount(online.predict(X_te), minlength=n_components),
    }


def drift_demo(seed: int = 0) -> dict:
    """A generated stream whose clusters move half way: forgetting against none."""
    from .. import OnlineGaussianMixture

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


def _gap(online_ll: float, batch_ll: float) -> float:
    """The online model's held-out log-likelihood relative to the batch model's (a fraction;
    negative: below it)."""
    return (online_ll - batch_ll) / abs(batch_ll)


def speed(d: dict) -> str:
    """The time of the stream against the batch fit, as a ratio only when it is stable:
    the median of the runs' ratios when the slowest run's ratio is within
    :data:`STABLE_SPREAD` of the fastest's; otherwise it says the timing was noisy."""
    online = d.get("online_times", [d["online_s"]])
    batch = d.get("batch_times", [d["batch_s"]])
    ratios = sorted(o / b for o, b in zip(online, batch, strict=True) if b > 0)
    if not ratios:
        return "(no timing)"
    low, high, median = ratios[0], ratios[-1], float(np.median(ratios))
    runs = f"{len(ratios)} run{'s' if len(ratios) > 1 else ''}"
    if len(ratios) < 3 or high > STABLE_SPREAD * low:
        return (f"its time against the batch fit is too noisy here to give as a ratio "
                f"({low:.2f}x to {high:.2f}x over {runs})")
    how = "faster than" if median < 1 else "slower than" if median > 1 else "as fast as"
    return (f"taking {median:.2f}x the batch fit's time ({how} it; median of {runs}, "
            f"{low:.2f}x to {high:.2f}x)")


def verdict(d: dict, r: dict) -> str:
    """The demo's conclusion in one line, from :func:`digits_demo` and :func:`drift_demo`."""
    gap = _gap(d["online_ll"], d["batch_ll"])
    if gap >= 0:
        first = f"one streaming pass matches scikit-learn's converged batch EM (+{gap:.2%})"
    elif gap > -0.01:
        first = f"one streaming pass comes within {-gap:.2%} of scikit-learn's converged batch EM"
    else:
        first = f"one streaming pass falls {-gap:.2%} short of scikit-learn's converged batch EM"
    (ll_keep, _), (ll_forget, _) = (r["results"][eta] for eta in sorted(r["results"]))
    gain = ll_forget - ll_keep
    if gain > 0:
        second = f"forgetting follows the drift (+{gain:.2f} nats per sample)"
    else:
        second = f"forgetting did not help on this drift ({gain:+.2f} nats per sample)"
    return f"verdict: {first}, {speed(d)}; {second}."


def report(d: dict, r: dict) -> list[str]:
    """The demo's report, line by line."""
    gap = _gap(d["online_ll"], d["batch_ll"])
    lines = [
        "online-gmm demo",
        "=" * 72,
        f"1. {d['data']}, K=10, diag covariances",
        f"   {'':28s}{'held-out log-lik':>18s}{'time (s)':>10s}{'ARI vs digit':>14s}",
        f"   {'OnlineGaussianMixture, 1 pass':28s}{d['online_ll']:18.3f}{d['online_s']:10.3f}"
        f"{d['online_ari']:14.3f}",
        f"   {'sklearn GaussianMixture':28s}{d['batch_ll']:18.3f}{d['batch_s']:10.3f}"
        f"{d['batch_ari']:14.3f}",
        "   held-out log-lik: mean log-density of the held-out samples (nats per sample), the",
        "   fit's quality on data it never saw: higher is better. ARI: agreement of the",
        "   components with the digit labels, which neither model sees (1 = the same grouping,",
        "   0 = chance). time: the median of "
        f"{len(d.get('online_times', [d['online_s']]))} runs of each.",
        f"   gap: after one pass over the stream the online model is {abs(gap):.2%} "
        f"{'above' if gap >= 0 else 'below'} the batch",
        "   model, which holds all the data in memory and runs EM over it to convergence.",
        f"   cluster sizes (held-out): {d['sizes'].tolist()}",
    ]
    r_items = sorted(r["results"].items())
    lines.append(f"2. drifting stream: {r['n']} samples, 4 clusters in 8-d move half way")
    for eta, (ll, t) in r_items:
        label = f"forgetting_rate={eta}"
        lines.append(f"   {label:28s} held-out log-lik on the new clusters {ll:9.3f}  ({t:.2f} s)")
    (_, (ll_keep, _)), (eta, (ll_forget, _)) = r_items[0], r_items[-1]
    lines += [
        "   higher is better: without forgetting the model averages the clusters' old and new",
        f"   places; forgetting_rate={eta} remembers about the last {1 / eta:,.0f} samples of each",
        f"   component ({ll_forget - ll_keep:+.2f} nats per sample).",
        "",
        verdict(d, r),
    ]
    return lines


def run_demo() -> None:
    """Print the demo's report."""
    print("\n".join(report(digits_demo(), drift_demo())))
