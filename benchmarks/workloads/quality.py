"""Workload 7, quality: :mod:`benchmarks.quality` inside the suite. On workload 1's blobs
(30,000 x 64, K = 64), digits PCA-16 (K = 10) and a real text-embedding stream (10,000
Debian package synopses, all-MiniLM-L6-v2, PCA-32, K = 32), all ``diag``: one
``partial_fit`` pass and ``fit`` against scikit-learn ``GaussianMixture(n_init=3)``, held-out
mean log-likelihood (gap in %) and NMI against the true labels, means over 5 seeds x 3
stream orders. Targets: one pass within 1 % and NMI >= batch EM's - 0.01; ``fit`` within
0.5 %. The figures are signed: a log-likelihood may be negative, a gap below zero."""

from __future__ import annotations

from typing import Any

from .._common import Config, row

NAME = "quality"
TITLE = "7. Quality (one pass and fit against batch EM: held-out log-likelihood, NMI)"

_BATCH_EM = "sklearn GaussianMixture(n_init=3), batch EM"
_GAP_DEF = "gap % = 100 (baseline - ours) / |baseline| (lower is better)"


def _spread(s: dict[str, float], unit: str = "", sign: str = "+") -> str:
    return (f"{s['mean']:{sign}.2f}{unit} ± {s['std']:.2f} "
            f"[{s['min']:{sign}.2f}, {s['max']:{sign}.2f}]")


def rows_of(name: str, d: dict[str, Any]) -> list[dict[str, Any]]:
    """The suite's table lines for one dataset of :func:`benchmarks.quality.run_quality`."""
    from ..quality import FIT_GAP_TARGET, PASS_GAP_TARGET, PASS_NMI_MARGIN

    groups = d["summary"]["groups"]
    ref = groups["batch_em"]
    out = []
    for key, g in groups.items():
        if g["kind"] == "batch_em" or "ll" not in g:
            continue
        variant = f" ({g['variant']})" if g["variant"] else ""
        what = {"pass": "one pass", "fit": "fit", "pass_sorted": "one pass, label-sorted"}
        main = not g["variant"]
        gap_target = None
        nmi_target = None
        if main and g["kind"] == "pass":
            gap_target = ("ratio", "<=", PASS_GAP_TARGET)
            nmi_target = ("ratio", ">=", -PASS_NMI_MARGIN)
        elif main and g["kind"] == "fit":
            gap_target = ("ratio", "<=", FIT_GAP_TARGET)
        label = f"{name}: {what[g['kind']]}{variant}"
        out.append(row(
            case=f"{label}, held-out LL", quantity="held-out mean log-likelihood",
            unit="nats", ours=g["ll"]["mean"], baseline_name=_BATCH_EM,
            baseline=ref["ll"]["mean"], ratio=g["gap_percent"]["mean"],
            ratio_def=_GAP_DEF, target=gap_target,
            note=f"gap over {g['runs']} runs {_spread(g['gap_percent'], ' %')}",
            signed=True, key=key,
        ))
        out.append(row(
            case=f"{label}, NMI", quantity="NMI against the true labels", unit="",
            ours=g["nmi"]["mean"], baseline_name=_BATCH_EM, baseline=ref["nmi"]["mean"],
            ratio=g["nmi"]["mean"] - ref["nmi"]["mean"],
            ratio_def="ours - baseline (higher is better)", target=nmi_target,
            note=f"NMI over {g['runs']} runs {_spread(g['nmi'], sign='')}", signed=True, key=key,
        ))
    mbk = groups.get("mbk_pass")
    if mbk is not None:
        ours = groups["pass"]["nmi"]["mean"]
        out.append(row(
            case=f"{name}: one pass vs MiniBatchKMeans one pass, NMI",
            quantity="NMI against the true labels", unit="", ours=ours,
            baseline_name="MiniBatchKMeans, one partial_fit pass", baseline=mbk["nmi"]["mean"],
            ratio=ours - mbk["nmi"]["mean"], ratio_def="ours - baseline (higher is better)",
            signed=True, key="mbk_pass",
        ))
    return out


def run(cfg: Config) -> dict[str, Any]:
    from ..quality import run_quality

    n_seeds = 1 if cfg.smoke else 5
    res = run_quality(smoke=cfg.smoke, seeds=[cfg.seed + i for i in range(n_seeds)])
    rows = [r for name, d in res["datasets"].items() for r in rows_of(name, d)]
    details = {
        name: {"description": d["description"], "params": d["params"], "info": d["info"],
               "summary": d["summary"], "wall_s": d["wall_s"]}
        for name, d in res["datasets"].items()
    }
    return {"params": res["settings"], "rows": rows, "details": details}
