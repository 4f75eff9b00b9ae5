"""How many of its K prototypes does GMMPrototypes use? Usage on a synthetic SSL-like stream,
against the bridge's choices (covariance type, forgetting, annealing, reseeding).

    python -m benchmarks.bridge_usage                 # K = 1024, D = 64, the default grid
    python -m benchmarks.bridge_usage --smoke         # tiny sizes, seconds (the test)
    python -m benchmarks.bridge_usage --only tied spherical --json out.json

The stream (as ``benchmarks/bridge_forgetting.py``'s): batches of ``B`` rows, each a random one
of ``n_dirs`` fixed unit directions plus isotropic noise (then L2-normalised by the head), or
with ``--stream blobs`` a few broad anisotropic clusters (a digits-like stream: far fewer
natural clusters than prototypes, so the prototypes must tile each cluster).

Reported for each configuration, on a fresh probe of ``n_probe`` rows after ``steps`` updates:

* ``weights_eff``: exp(H(pi)), the effective number of components of the mixing weights;
* ``usage``: exp(H(mean posterior)) of the plain targets ``targets(x)`` on the probe, and
  ``usage_sinkhorn`` of ``targets(x, balance="sinkhorn")`` (balanced per batch of ``B``, the
  mean over the probe's batches), the figure the issue's K/4 and K/2 targets are about;
* ``argmax``: the prototypes that are some probe row's arg-max;
* ``unique``: unique prototypes at cosine distance 0.025 (``collapse_report``);
* ``reseeds``: reseeds per step (dead components started afresh);
* ``var_ratio``: for per-component variances, the 90th over the 10th percentile of the
  components' mean variance (how unequal the components' widths are);
* ``top3``: the three largest mixing weights.

No timing: usage figures only.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Case:
    """One configuration of the head: a name and keyword arguments of GMMPrototypes."""

    name: str
    kwargs: dict = field(default_factory=dict)


#: The grid: the bridge's defaults (spherical, responsibility-weighted forgetting at 1e-4,
#: the warm-up) and one change at a time; ``warmup_size=0`` is the bridge before the
#: warm-up (the ablation).
CASES = (
    Case("spherical", dict(covariance_type="spherical")),
    Case("spherical no warm-up", dict(covariance_type="spherical", warmup_size=0)),
    Case("spherical no warm-up, uniform-forgetting",
         dict(covariance_type="spherical", forgetting="uniform", warmup_size=0)),
    Case("spherical no warm-up, anneal 5->1 (200 steps)",
         dict(covariance_type="spherical", temperature_init=5.0, anneal_steps=200,
              warmup_size=0)),
    Case("diag", dict(covariance_type="diag")),
    Case("diag no warm-up", dict(covariance_type="diag", warmup_size=0)),
    Case("tied", dict(covariance_type="tied")),
    Case("tied no warm-up", dict(covariance_type="tied", warmup_size=0)),
    Case("tied no warm-up, anneal 5->1 (200 steps)",
         dict(covariance_type="tied", temperature_init=5.0, anneal_steps=200, warmup_size=0)),
    Case("tied eta 1e-3", dict(covariance_type="tied", forgetting_rate=1e-3)),
    Case("tied eta 1e-5", dict(covariance_type="tied", forgetting_rate=1e-5)),
    # the same stream through the estimator (the bridge is its algorithm: a control)
    Case("spherical estimator", dict(estimator=True, warmup_size="auto")),
)
#: The cases of ``--smoke``.
SMOKE_CASES = ("spherical", "spherical no warm-up", "tied")


def _entropy_exp(p) -> float:
    p = p / p.sum()
    p = p[p > 0]
    return float(math.exp(-(p * p.log()).sum()))


def make_stream(kind: str, D: int, n_dirs: int, noise: float, seed: int):
    """``batch(n, generator) -> (n, D) tensor`` of the chosen synthetic stream."""
    import torch
    import torch.nn.functional as F

    torch.manual_seed(seed)
    if kind == "directions":
        centres = F.normalize(torch.randn(n_dirs, D), dim=1)

        def batch(n, g):
            lab = torch.randint(0, n_dirs, (n,), generator=g)
            return centres[lab] + noise * torch.randn(n, D, generator=g)

        return batch
    if kind == "blobs":  # 10 broad clusters, each spread along a few directions
        n_clusters, rank = 10, 6
        centres = F.normalize(torch.randn(n_clusters, D), dim=1)
        bases = torch.linalg.qr(torch.randn(n_clusters, D, rank)).Q * 0.35

        def batch(n, g):
            lab = torch.randint(0, n_clusters, (n,), generator=g)
            z = torch.randn(n, rank, generator=g)
            return (centres[lab] + torch.einsum("ndr,nr->nd", bases[lab], z)
                    + noise * torch.randn(n, D, generator=g))

        return batch
    raise ValueError(f"unknown stream {kind!r}")


def _estimator_case(kwargs: dict, K: int, seed: int, batches, probe):
    """The same stream through OnlineGaussianMixture (a control: the bridge's algorithm),
    with the bridge's defaults. Returns (weights, means, covariances,
    posterior of the probe, reseeds)."""
    import torch
    import torch.nn.functional as F

    from online_gmm import OnlineGaussianMixture

    params = dict(covariance_type="spherical", forgetting_rate=1e-4, random_state=seed)
    params.update({k: v for k, v in kwargs.items() if k != "estimator"})
    est = OnlineGaussianMixture(K, **params)
    for x in batches:
        est.partial_fit(F.normalize(x, dim=1).double().numpy())
    q = torch.from_numpy(est.predict_proba(F.normalize(probe, dim=1).double().numpy()))
    return est.weights_, est.means_, est.covariances_, q, est.n_reseeded_


def run_case(case: Case, *, K: int, D: int, B: int, steps: int, n_probe: int, stream: str,
             n_dirs: int, noise: float, seed: int) -> dict:
    import torch

    from online_gmm.diagnostics import collapse_report
    from ssl_bridge import GMMPrototypes

    batch = make_stream(stream, D, n_dirs, noise, seed)
    g = torch.Generator().manual_seed(seed + 1)
    if case.kwargs.get("estimator"):
        batches = [batch(B, g) for _ in range(steps)]
        probe = batch(n_probe, g)
        weights, means, cov, q, n_reseeded = _estimator_case(case.kwargs, K, seed, batches,
                                                             probe)
        qs = None
    else:
        head = GMMPrototypes(K, D, random_state=seed, **case.kwargs)
        for _ in range(steps):
            head.update(batch(B, g))
        probe = batch(n_probe, g)
        q = head.targets(probe)
        qs = torch.cat([head.targets(probe[i : i + B], balance="sinkhorn")
                        for i in range(0, n_probe, B)])
        weights, means = head.weights.numpy(), head.means.numpy()
        cov, n_reseeded = head.covariances.numpy(), int(head.n_reseeded)
    rep = collapse_report(means, weights, eps=(0.025,))
    if cov.ndim >= 1 and cov.shape[0] == K:  # per-component: spherical, diag, full
        width = cov.reshape(K, -1).mean(1) if cov.ndim == 2 else cov
        if cov.ndim == 3:
            width = np.trace(cov, axis1=1, axis2=2) / D
        lo, hi = np.percentile(width, [10, 90])
        var_ratio = float(hi / lo) if lo > 0 else float("inf")
    else:
        var_ratio = 1.0
    return {
        "case": case.name,
        "kwargs": case.kwargs,
        "weights_eff": rep["effective_components"],
        "usage": _entropy_exp(q.mean(0).double()),
        "usage_sinkhorn": None if qs is None else _entropy_exp(qs.mean(0).double()),
        "argmax": int(q.argmax(1).unique().numel()),
        "unique": rep["unique_fraction"][0.025],
        "reseeds": n_reseeded / steps,
        "var_ratio": var_ratio,
        "top3": np.sort(np.asarray(weights))[::-1][:3].round(3).tolist(),
    }


def _value(text: str):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return {"None": None, "True": True, "False": False}.get(text, text)


def parse_case(spec: str) -> Case:
    """``"key=value,key=value"`` as a :class:`Case` (numbers and None parsed)."""
    kwargs = {}
    for item in filter(None, spec.split(",")):
        key, _, value = item.partition("=")
        kwargs[key.strip()] = _value(value.strip())
    return Case(spec, kwargs)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (seconds)")
    parser.add_argument("--prototypes", type=int, default=1024)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--probe", type=int, default=4096)
    parser.add_argument("--stream", choices=("directions", "blobs"), default="directions")
    parser.add_argument("--n-dirs", type=int, default=4096)
    parser.add_argument("--noise", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", nargs="+", default=None,
                        help="run only the cases whose name starts with one of these")
    parser.add_argument("--case", action="append", default=[], metavar="K=V,K=V",
                        help="an extra configuration, e.g. covariance_type=tied,"
                             "temperature_init=5,anneal_steps=200 (repeatable)")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = parser.parse_args(argv)
    sizes = dict(K=args.prototypes, D=args.dim, B=args.batch, steps=args.steps,
                 n_probe=args.probe, n_dirs=args.n_dirs)
    if args.smoke:
        sizes = dict(K=32, D=8, B=64, steps=20, n_probe=256, n_dirs=64)
    if args.smoke and args.only is None:
        cases = [c for c in CASES if c.name in SMOKE_CASES]
    else:
        cases = [c for c in CASES
                 if args.only is None or any(c.name.startswith(o) for o in args.only)]
    cases += [parse_case(spec) for spec in args.case]
    print(f"stream {args.stream}: K={sizes['K']}, D={sizes['D']}, batch {sizes['B']}, "
          f"{sizes['steps']} updates, probe {sizes['n_probe']} rows")
    print("| case | weights exp(H) | usage (posterior) | usage (sinkhorn) | arg-max | "
          "unique @0.025 | reseeds/step | var p90/p10 | top weights |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    rows = []
    for case in cases:
        r = run_case(case, stream=args.stream, noise=args.noise, seed=args.seed, **sizes)
        rows.append({**r, **sizes, "stream": args.stream, "seed": args.seed})
        print(f"| {r['case']} | {r['weights_eff']:.0f} | {r['usage']:.0f} | "
              f"{'-' if r['usage_sinkhorn'] is None else format(r['usage_sinkhorn'], '.0f')} | "
              f"{r['argmax']} | {r['unique']:.1%} | "
              f"{r['reseeds']:.2f} | {r['var_ratio']:.2f} | {r['top3']} |", flush=True)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=1))
    return rows


if __name__ == "__main__":
    main()
