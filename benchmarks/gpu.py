"""The CUDA path, run and timed on one GPU: ``gpu.json`` and ``gpu.md`` (docs/benchmarks.md,
"GPU (the CUDA path)").

Usage::

    python -m benchmarks.gpu                              # one CUDA device, under 5 minutes
    python -m benchmarks.gpu --K 16384 --B 2048           # other sizes of the timed step
    python -m benchmarks.gpu --device cpu --smoke --out /tmp/gpu   # tiny, on CPU (the test)
    python -m benchmarks.gpu --device cpu --only agreement --out /tmp/gpu   # CPU vs CPU, full

Sections:

1. ``cuda_tests``: the repository's CUDA tests (``pytest -k cuda tests/``) in a subprocess,
   with their pass/fail/skip counts (skipped under ``--device cpu``);
2. ``agreement``: one stream through ``GMMPrototypes`` on the device and on CPU (the numba
   path), every covariance type, float32 and bfloat16 embeddings, the largest relative
   differences of means, weights and targets (benchmarks/_gpu_agreement.py);
3. ``timing``: one training step of the decoupled head against the learnable DINO-style
   head, and one ``(B, D) @ (D, K)`` product, in f32 (TF32) and bf16 autocast, with peak
   memory (benchmarks/_gpu_timing.py);
4. ``syncs``: the host-device synchronisations inside ``update`` (benchmarks/_gpu_syncs.py);
5. ``memory``: the peak memory of one steady ``update`` over the mixture's state, spherical
   and diag (benchmarks/_gpu_memory.py; on CPU the CUDA code path in a child process).

``--budget`` (seconds, default 240) bounds the whole run: timing loops stop adding
repetitions once it is spent, keeping what they measured. Results are written after every
section (``"complete": false`` until the last).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import subprocess
import sys
import tempfile
import time
import traceback
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from ._common import REPO_ROOT, child_env
from ._gpu_report import to_markdown
from ._gpu_util import Budget, device_info

DEFAULT_OUT = Path(__file__).resolve().parent / "results"
CUDA_TESTS = ["tests/", "-k", "cuda"]  # every test whose id names CUDA (a device, a skip)
SMOKE = dict(K=64, D=16, B=128, repeats=2, warmup=1)
FULL = dict(K=65_536, D=256, B=4_096, repeats=10, warmup=2)
SECTIONS = ("cuda_tests", "agreement", "timing", "syncs", "memory")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:N, or cpu")
    parser.add_argument("--smoke", action="store_true",
                        help=f"tiny sizes ({SMOKE}); with --device cpu, well under a minute")
    parser.add_argument("--K", type=int, default=None, help="prototypes of the timed step")
    parser.add_argument("--D", type=int, default=None, help="embedding dimension")
    parser.add_argument("--B", type=int, default=None, help="batch size")
    parser.add_argument("--repeats", type=int, default=None, help="timed repetitions")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps first")
    parser.add_argument("--covariance-type", default="spherical",
                        help="of the timed decoupled head (default spherical)")
    parser.add_argument("--budget", type=float, default=240.0,
                        help="seconds for the whole run (default 240)")
    parser.add_argument("--skip-tests", action="store_true", help="leave out section 1")
    parser.add_argument("--only", action="append", metavar="SECTION",
                        help=f"run only this section (repeatable, or comma-separated): "
                             f"{', '.join(SECTIONS)}")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="directory for gpu.json and gpu.md")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    names = [n.strip() for item in args.only or [] for n in item.split(",") if n.strip()]
    unknown = sorted(set(names) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown section(s) {unknown}; choose from {list(SECTIONS)}")
    args.only = [n for n in SECTIONS if n in names] if names else list(SECTIONS)
    defaults = SMOKE if args.smoke else FULL
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    return args


# ----------------------------------------------------------------------------- section 1
def _junit_counts(path: Path) -> dict[str, Any]:
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    counts = {k: sum(int(s.get(k, 0)) for s in suites)
              for k in ("tests", "failures", "errors", "skipped")}
    failed, skips = [], {}
    for case in root.iter("testcase"):
        name = f"{case.get('classname')}::{case.get('name')}"
        if case.find("failure") is not None or case.find("error") is not None:
            failed.append(name)
        skip = case.find("skipped")
        if skip is not None:
            reason = (skip.get("message") or "").strip()[:120]
            skips[reason] = skips.get(reason, 0) + 1
    counts["passed"] = (counts["tests"] - counts["failures"] - counts["errors"]
                        - counts["skipped"])
    return {**counts, "failed_tests": failed, "skip_reasons": skips}


def cuda_tests(device: str, budget: Budget) -> dict[str, Any]:
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
               "--continue-on-collection-errors", *CUDA_TESTS]
    shown = " ".join(["python", *command[1:]])
    if device == "cpu":
        return {"ran": False, "command": shown,
                "note": "skipped under --device cpu (the CUDA tests skip without a GPU)"}
    env = child_env()
    if ":" in device:  # cuda:N: the tests use the default device
        env["CUDA_VISIBLE_DEVICES"] = device.split(":", 1)[1]
    with tempfile.TemporaryDirectory() as tmp:
        xml = Path(tmp) / "junit.xml"
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(
                [*command, f"--junitxml={xml}"], cwd=REPO_ROOT, env=env, capture_output=True,
                text=True, timeout=max(30.0, min(180.0, budget.left() - 90.0)), check=False,
            )
        except subprocess.TimeoutExpired:
            return {"ran": True, "command": shown, "timed_out": True,
                    "wall_s": round(time.perf_counter() - t0, 1)}
        out = {"ran": True, "command": shown, "exit_code": proc.returncode,
               "wall_s": round(time.perf_counter() - t0, 1),
               "summary": (proc.stdout.strip().splitlines() or [""])[-1]}
        if xml.is_file():
            out.update(_junit_counts(xml))
        else:
            out["output_tail"] = (proc.stdout + proc.stderr)[-2000:]
    return out


# ----------------------------------------------------------------------------- the run
def _write(results: dict[str, Any], out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    pj, pm = out / "gpu.json", out / "gpu.md"
    pj.write_text(json.dumps(results, indent=2, default=str) + "\n")
    pm.write_text(to_markdown(results))
    return pj, pm


def run(args: argparse.Namespace, command: str) -> dict[str, Any]:
    import torch

    from . import _gpu_agreement, _gpu_memory, _gpu_syncs, _gpu_timing

    budget = Budget(args.budget)
    if args.device != "cpu" and not torch.cuda.is_available():
        raise SystemExit(f"--device {args.device}: torch sees no CUDA device "
                         f"(torch {torch.__version__}, CUDA {torch.version.cuda}); "
                         "use --device cpu --smoke")
    if ":" in args.device:
        torch.cuda.set_device(torch.device(args.device))
    sizes = dict(K=args.K, D=args.D, B=args.B)
    results: dict[str, Any] = {
        "suite": "online-gmm GPU benchmark",
        "command": command,
        "smoke": args.smoke,
        "started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "device": device_info(args.device),
        "params": {**sizes, "repeats": args.repeats, "warmup": args.warmup,
                   "covariance_type": args.covariance_type, "budget_s": args.budget,
                   "seed": args.seed, "sections": args.only},
        "complete": False,
        "sections": {},
    }
    sections = {
        "cuda_tests": lambda: (
            {"ran": False, "note": "--skip-tests"} if args.skip_tests
            else cuda_tests(args.device, budget)),
        "agreement": lambda: _gpu_agreement.run(
            args.device, args.smoke, budget, reserve=0.5 * args.budget, seed=args.seed),
        "timing": lambda: _gpu_timing.run(
            **sizes, device=args.device, repeats=args.repeats, warmup=args.warmup,
            budget=budget, reserve=min(20.0, 0.1 * args.budget),
            covariance_type=args.covariance_type, seed=args.seed),
        "syncs": lambda: _gpu_syncs.run(**sizes, device=args.device, seed=args.seed),
        "memory": lambda: _gpu_memory.run(**sizes, device=args.device),
    }
    for name in args.only:
        section = sections[name]
        print(f"[benchmarks.gpu] {name} ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        try:
            out = section()
            out["error"] = None
        except Exception:  # keep the other sections; report and fail at the end
            out = {"error": traceback.format_exc()}
            print(out["error"], file=sys.stderr, flush=True)
        out["wall_s"] = round(time.perf_counter() - t0, 2)
        results["sections"][name] = out
        results["duration_s"] = round(budget.elapsed(), 2)
        results["budget_hit"] = budget.hit
        print(f"[benchmarks.gpu] {name}: {out['wall_s']:.1f} s", file=sys.stderr, flush=True)
        _write(results, args.out)
    results["complete"] = True
    return results


def main(argv: list[str] | None = None) -> int:
    raw = sys.argv[1:] if argv is None else argv
    args = parse_args(raw)
    command = " ".join(["python -m benchmarks.gpu", *raw])
    results = run(args, command)
    pj, pm = _write(results, args.out)
    print(pm.read_text())
    print(f"[benchmarks.gpu] wrote {pj} and {pm}", file=sys.stderr)
    secs = results["sections"]
    failed = [n for n, s in secs.items() if s.get("error")]
    tests = secs.get("cuda_tests", {})
    if tests.get("failures") or tests.get("errors") or tests.get("timed_out"):
        failed.append("cuda_tests")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
