"""Run the benchmark suite and write ``results.json`` and ``results.md``.

Usage::

    python -m benchmarks.run                       # the full suite (about 15-25 min on 2 cores)
    python -m benchmarks.run --smoke               # tiny sizes, seconds (what CI runs)
    python -m benchmarks.run --only throughput --only embedding
    python -m benchmarks.run --out benchmarks/results --repeats 5

Workloads: throughput, time_to_quality, fit, embedding, full_cov, memory, startup, threads, quality
(the last is ``python -m benchmarks.quality``, 4-6 min of the full suite).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from ._common import Config
from ._machine import describe, load_average, machine_note
from .workloads import WORKLOADS

DEFAULT_OUT = Path(__file__).resolve().parent / "results"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (seconds), for CI")
    parser.add_argument(
        "--only", action="append", metavar="NAME",
        help=f"run only this workload (repeatable, or comma-separated): {', '.join(WORKLOADS)}",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="directory for results.json and results.md")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed repetitions per measurement (default: per workload)")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def selected(only: list[str] | None) -> list[str]:
    if not only:
        return list(WORKLOADS)
    names = [n.strip() for item in only for n in item.split(",") if n.strip()]
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown:
        raise SystemExit(f"unknown workload(s) {unknown}; choose from {list(WORKLOADS)}")
    return [n for n in WORKLOADS if n in names]


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (user + system)."""
    try:
        import resource
    except ImportError:  # Windows
        return time.process_time()
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def run_suite(
    names: list[str],
    cfg: Config,
    command: str,
    log: Any = sys.stderr,
    out_dir: Path | None = None,
) -> dict[str, Any]:
    """Run the named workloads; a workload that raises is recorded with its traceback.

    With ``out_dir``, the results so far are written after every workload (``"complete":
    false`` until the last), so an interrupted run keeps what it measured."""
    t_start = time.perf_counter()
    results: dict[str, Any] = {
        "suite": "online-gmm benchmarks",
        "command": command,
        "smoke": cfg.smoke,
        "repeats_override": cfg.repeats,
        "started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_note(),
        "complete": False,
        "workloads": {},
    }
    for name in names:
        mod = WORKLOADS[name]
        print(f"[benchmarks] {name}: {mod.TITLE} ...", file=log, flush=True)
        t0, c0 = time.perf_counter(), cpu_seconds()
        try:
            out = mod.run(cfg)
            out["error"] = None
        except Exception:  # keep the other workloads' numbers; report and fail at the end
            out = {"rows": [], "params": {}, "details": {}, "error": traceback.format_exc()}
            print(out["error"], file=log, flush=True)
        out["title"] = mod.TITLE
        out["description"] = (mod.__doc__ or "").strip()
        out["wall_s"] = round(time.perf_counter() - t0, 2)
        out["cpu_s"] = round(cpu_seconds() - c0, 2)
        out["load_average_after"] = load_average()
        results["workloads"][name] = out
        print(f"[benchmarks] {name}: {out['wall_s']:.1f} s wall, {out['cpu_s']:.1f} s CPU",
              file=log, flush=True)
        results["machine"]["load_average_end"] = load_average()
        results["duration_s"] = round(time.perf_counter() - t_start, 2)
        if out_dir is not None:
            write(results, out_dir)
    results["complete"] = True
    return results


def _fmt(x: float) -> str:
    if x is None or not math.isfinite(x):
        return str(x)
    ax = abs(x)
    if ax >= 1e5:
        return f"{x:,.0f}"
    if ax >= 100:
        return f"{x:.0f}"
    if ax >= 10:
        return f"{x:.1f}"
    if ax >= 0.1:
        return f"{x:.2f}"
    return f"{x:.3g}"


def to_markdown(results: dict[str, Any]) -> str:
    """The table (every row of every workload) and the machine note."""
    lines = [
        "# Benchmark results"
        + (" (smoke mode: tiny sizes, numbers meaningless)" if results["smoke"] else "")
        + ("" if results.get("complete", True) else " (INCOMPLETE: the run was cut short)"),
        "",
        f"Command: `{results['command']}`  ",
        f"Started {results['started']}, took {results['duration_s']:.0f} s.",
        "",
        "Machine:",
        "",
        describe(results["machine"]),
        "",
        "Every ratio compares two measurements of the same run (medians of interleaved "
        "repetitions, warm-up excluded).",
        "",
        "| workload | case | ours | baseline | ratio | target | met |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, w in results["workloads"].items():
        if w.get("error"):
            lines.append(f"| {name} | **error** (see results.json) | | | | | |")
            continue
        for r in w["rows"]:
            met = {True: "yes", False: "**no**", None: "-"}[r["met"]]
            lines.append(
                f"| {name} | {r['case']} | {_fmt(r['ours'])} {r['unit']} | "
                f"{_fmt(r['baseline'])} {r['unit']} ({r['baseline_name']}) | "
                f"**{_fmt(r['ratio'])}** ({r['ratio_def']}) | {r['target'] or '-'} | {met} |"
            )
    notes = [
        (name, r["case"], r["note"])
        for name, w in results["workloads"].items()
        for r in w.get("rows", [])
        if r.get("note")
    ]
    if notes:
        lines += ["", "Notes:", ""]
        lines += [f"- {name}, {case}: {note}" for name, case, note in notes]
    lines += ["", "Workload wall (CPU) times: " + ", ".join(
        f"{name} {w['wall_s']:.0f} s ({w['cpu_s']:.0f} s)"
        for name, w in results["workloads"].items()
    ), ""]
    return "\n".join(lines)


def write(results: dict[str, Any], out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    pj, pm = out / "results.json", out / "results.md"
    pj.write_text(json.dumps(results, indent=2, default=str) + "\n")
    pm.write_text(to_markdown(results))
    return pj, pm


def main(argv: list[str] | None = None) -> int:
    raw = sys.argv[1:] if argv is None else argv
    args = parse_args(raw)
    names = selected(args.only)
    cfg = Config(smoke=args.smoke, repeats=args.repeats, seed=args.seed)
    command = " ".join(["python -m benchmarks.run", *raw])
    results = run_suite(names, cfg, command, out_dir=args.out)
    pj, pm = write(results, args.out)
    print(pm.read_text())
    print(f"[benchmarks] wrote {pj} and {pm}", file=sys.stderr)
    failed = [n for n, w in results["workloads"].items() if w.get("error")]
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
