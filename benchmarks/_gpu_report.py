"""``gpu.md``: the tables of ``python -m benchmarks.gpu`` (every figure of ``gpu.json`` but
the individual repetitions)."""

from __future__ import annotations

import math
from typing import Any


def _num(x: Any, digits: int = 3) -> str:
    if x is None:
        return "-"
    if isinstance(x, bool):
        return "yes" if x else "**no**"
    if isinstance(x, int):
        return f"{x:,}"
    if not math.isfinite(x):
        return str(x)
    return f"{x:.{digits}g}"


def _ms(s: float | None) -> str:
    return "-" if s is None or not math.isfinite(s) else f"{1e3 * s:.3g} ms"


def _mib(b: int | None) -> str:
    return "-" if b is None else f"{b / 2**20:,.0f} MiB"


def _met(m: bool | None) -> str:
    return {True: "yes", False: "**no**", None: "-"}[m]


def _error(lines: list[str], section: dict) -> bool:
    if section.get("error"):
        lines += ["**error** (traceback in gpu.json):", "", "```",
                  section["error"].strip().splitlines()[-1], "```", ""]
        return True
    return False


def _tests(lines: list[str], s: dict) -> None:
    lines += ["## 1. CUDA tests", ""]
    if _error(lines, s):
        return
    lines.append(f"Command: `{s.get('command', '-')}`" + ("" if s.get("ran") else
                                                         f": {s.get('note', 'not run')}"))
    if s.get("ran"):
        if s.get("timed_out"):
            lines += ["", f"**timed out** after {s['wall_s']} s"]
        else:
            lines += ["", "| passed | failed | errors | skipped | total | wall |",
                      "| --- | --- | --- | --- | --- | --- |",
                      f"| {s.get('passed', '-')} | {s.get('failures', '-')} | "
                      f"{s.get('errors', '-')} | {s.get('skipped', '-')} | "
                      f"{s.get('tests', '-')} | {s['wall_s']} s |"]
            for name in s.get("failed_tests", []):
                lines.append(f"- failed: `{name}`")
            for reason, n in s.get("skip_reasons", {}).items():
                lines.append(f"- skipped ({n}): {reason}")
    lines.append("")


def _agreement(lines: list[str], s: dict) -> None:
    lines += ["## 2. Device vs CPU agreement", ""]
    if _error(lines, s):
        return
    lines += [
        f"Reference: {s['reference']}; device side: {s['device_side']}. Relative difference: "
        f"{s['relative_difference']}; targets at temperature {s['targets_temperature']:g}. "
        "The device side starts from the CPU side's state after the first (seeding) step, "
        "and again after the warm-up's restarts. "
        f"Target: {s['target']}: {_met(s['met'])}.",
        "",
        "| covariance | embeddings | K | D | B | batches | means | weights | targets | "
        "targets of one state (E-step alone) | tolerance (targets') | met | met (means, "
        "weights) | reseeded (cpu / device) | seeds differing | after the restarts, rows "
        "differing | note |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- "
        "| --- | --- | --- |",
    ]
    for r in s["rows"]:
        emb = r["dtype"] + (" under bf16 autocast" if r["autocast_bf16"] else "")
        if r.get("error"):
            lines.append(f"| {r['covariance_type']} | {emb} | **error**: "
                         f"{r['error'].splitlines()[0][:200]} |" + " |" * 14)
            continue
        lines.append(
            f"| {r['covariance_type']} | {emb} | {r['K']} | {r['D']} | {r['B']} | "
            f"{r['n_batches']} | {_num(r['means_rel'])} | {_num(r['weights_rel'])} | "
            f"{_num(r['targets_rel'])} | {_num(r.get('targets_estep_rel'))} | "
            f"{_num(r['tolerance'])} ({_num(r.get('targets_tolerance'))}) | {_met(r['met'])} | "
            f"{_met(r['met_state'])} | "
            f"{r['n_reseeded_cpu']} / {r['n_reseeded_device']} | "
            f"{_num(r['seeding_rows_differ'])} | {_num(r.get('restart_rows_differ'))} | "
            f"{r['note']} |"
        )
    if s.get("skipped_for_budget"):
        lines.append(f"\nNot run (budget): {', '.join(s['skipped_for_budget'])}")
    lines.append("")


def _timing(lines: list[str], s: dict) -> None:
    lines += ["## 3. One training step: decoupled against learnable head", ""]
    if _error(lines, s):
        return
    lines += [
        f"K = {s['K']:,}, D = {s['D']:,}, B = {s['B']:,}; decoupled head "
        f"`{s['covariance_type']}` on {s['decoupled_path']}; medians of {s['repeats']} "
        "interleaved repetitions at most (done: see the table), "
        f"{s['warmup']} warm-up steps; {s['timer']}. "
        f"Target: {s['target']}.",
        "",
        "| precision | matmul B x D x K | decoupled step | learnable step | "
        "decoupled / learnable | met | decoupled (matmuls) | learnable (matmuls) | "
        "decoupled memory (step / state) | learnable memory (step / state) | "
        "reseeds per step | repetitions |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in s["rows"]:
        if r.get("error"):
            lines.append(f"| {r['precision']} | **error**: {r['error'].splitlines()[0][:200]} |"
                         + " |" * 10)
            continue
        med, mem = r["median_s"], r["memory"]
        lines.append(
            f"| {r['precision']} | {_ms(med['matmul'])} | {_ms(med['decoupled'])} | "
            f"{_ms(med['learnable'])} | **{_num(r['ratio_decoupled_over_learnable'])}** | "
            f"{_met(r['met'])} | {_num(r['decoupled_in_matmuls'])} | "
            f"{_num(r['learnable_in_matmuls'])} | "
            f"{_mib(mem['decoupled']['step_peak_bytes'])} / "
            f"{_mib(mem['decoupled']['state_bytes'])} | "
            f"{_mib(mem['learnable']['step_peak_bytes'])} / "
            f"{_mib(mem['learnable']['state_bytes'])} | {_num(r['reseeded_per_step'])} | "
            f"{r['repeats_done']} |"
        )
    for r in s["rows"]:
        ph = r.get("decoupled_phases_median_s") or {}
        if ph:
            lines.append(f"\nDecoupled step, {r['precision']}, phase by phase (synchronised "
                         "between phases): " + ", ".join(f"{k} {_ms(v)}" for k, v in ph.items()))
    lines.append("")


def _syncs(lines: list[str], s: dict) -> None:
    lines += ["## 4. Host-device synchronisation", ""]
    if _error(lines, s):
        return
    u = s["update"]
    lines += [
        f"One steady-state call, K = {s['K']:,}, D = {s['D']:,}, B = {s['B']:,}, on "
        f"{s['path']}. Target: {s['target']}: {_met(s['met'])} "
        f"({u['host_reads']} reads, {u['host_reads_beyond_policy']} beyond the policy's; "
        f"host-to-device copies: {_num(u['host_to_device'])}).",
        "",
        "| call | site | code | kind | count | non-finite policy |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for call in ("update", "targets", "update_unchecked"):
        for site in s.get(call, {}).get("sites", []):
            code = site["code"].replace("|", "\\|")
            lines.append(f"| {call} | `{site['site']}` | `{code}` | {site['kind']} | "
                         f"{site['count']} | {'yes' if site['nonfinite_policy'] else ''} |")
    if "update_unchecked" in s:
        lines += ["", "With the checks off (`nonfinite=\"ignore\"`, `update_unchecked`): "
                  f"{s['update_unchecked']['host_reads']} host reads."]
    prof = s.get("profiler", {})
    for call in ("update", "update_unchecked"):
        counts = ", ".join(f"{k} {v}" for k, v in prof.get(call, {}).items()) or "none"
        if prof.get("error"):
            counts = f"profiler failed ({prof['error'].splitlines()[0][:200]})"
        lines += ["", f"Profiler events of one `{call}` (less an empty region's): {counts}"]
    lines.append("")


def _memory(lines: list[str], s: dict) -> None:
    lines += ["## 5. Memory of one update", ""]
    if _error(lines, s):
        return
    lines += [f"Target: {s['target']}. Measured by {s['how']}.", "",
              "| type | K | D | B | state (MiB) | one update beyond it (MiB) | peak / state "
              "| met |",
              "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in s["rows"]:
        if r.get("error"):
            lines.append(f"| {r['covariance_type']} | error: {r['error']} |  |  |  |  |  |  |")
            continue
        lines.append(f"| {r['covariance_type']} | {r['K']:,} | {r['D']:,} | {r['B']:,} | "
                     f"{r['state_mib']:.1f} | {r['update_extra_mib']:.1f} | "
                     f"{r['peak_over_state']:.2f}x | {_met(r['met'])} |")
    lines.append("")


def to_markdown(results: dict[str, Any]) -> str:
    dev = results["device"]
    lines = [
        "# GPU benchmark: the CUDA path"
        + (" (smoke mode: tiny sizes, figures are not performance)" if results["smoke"] else "")
        + ("" if results.get("complete", True) else " (INCOMPLETE: the run was cut short)"),
        "",
        f"Command: `{results['command']}`  ",
        f"Started {results['started']}, took {results.get('duration_s', 0):.0f} s"
        + (" (the time budget cut some repetitions)" if results.get("budget_hit") else "")
        + ".",
        "",
        f"- device: {dev['name']}"
        + (f" (compute capability {dev['capability']}, {dev['memory_gib']} GiB)"
           if dev.get("capability") else ""),
        f"- torch {dev['torch']}, CUDA runtime {dev['cuda_runtime']}, cuDNN {dev['cudnn']}; "
        f"host CPU {dev['cpu']}, {dev['torch_threads']} torch threads",
        "",
    ]
    secs = results["sections"]
    for name, fn in (("cuda_tests", _tests), ("agreement", _agreement), ("timing", _timing),
                     ("syncs", _syncs), ("memory", _memory)):
        if name in secs:
            fn(lines, secs[name])
    lines.append("Section wall times: " + ", ".join(
        f"{n} {s['wall_s']:.1f} s" for n, s in secs.items()) + "\n")
    return "\n".join(lines)
