"""Study: the path of one ``partial_fit`` through the package's modules.

Traces one steady ``partial_fit`` of a fitted model (NumPy float64, ``diag``, K = 16, D =
8, 256 rows, its 42nd step: no warm-up pending, not a step of the periodic redundancy
check) with ``sys.setprofile`` and counts, among the calls made inside
``online_gmm``:

- **calls across files**: a Python call whose callee's file is not the caller's;
- **modules**: the distinct files entered;
- **calls back up**: a call from a module into one of a higher layer (the layers, top
  down: ``_cli``/``_io``, ``_estimators``, ``_em``, ``_backends``, ``_math``);
- **depth**: the deepest Python frame of the package under ``partial_fit``.

Usage::

    python -m benchmarks.call_path          # prints the counts and the crossings
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

import online_gmm

PACKAGE = Path(online_gmm.__file__).resolve().parent
LAYERS = {"_cli": 5, "_io": 5, "_estimators": 4, "_em": 3, "_backends": 2, "_math": 1}


def _layer(path: str) -> int | None:
    rel = Path(path).resolve()
    try:
        parts = rel.relative_to(PACKAGE).parts
    except ValueError:
        return None
    return LAYERS.get(parts[0], 6) if len(parts) > 1 else 6


def _inside(path: str) -> bool:
    try:
        Path(path).resolve().relative_to(PACKAGE)
    except ValueError:
        return False
    return True


def trace_partial_fit() -> dict:
    from online_gmm import OnlineGaussianMixture

    rng = np.random.default_rng(0)
    X = rng.standard_normal((41 * 256, 8))
    model = OnlineGaussianMixture(16, warmup_size=0, random_state=0)
    for start in range(0, 41 * 256, 256):
        model.partial_fit(X[start : start + 256])
    batch = X[:256]
    crossings: list[tuple[str, str]] = []
    modules: set[str] = set()
    up: list[tuple[str, str]] = []
    depth = [0, 0]

    def profiler(frame, event, arg):
        if event != "call":
            if event == "return" and _inside(frame.f_code.co_filename):
                depth[0] -= 1
            return
        callee = frame.f_code.co_filename
        if not _inside(callee):
            return
        depth[0] += 1
        depth[1] = max(depth[1], depth[0])
        modules.add(callee)
        caller = frame.f_back.f_code.co_filename if frame.f_back else ""
        if _inside(caller) and caller != callee:
            crossings.append((caller, callee))
            a, b = _layer(caller), _layer(callee)
            if a is not None and b is not None and b > a:
                up.append((caller, callee))

    sys.setprofile(profiler)
    try:
        model.partial_fit(batch)
    finally:
        sys.setprofile(None)

    def short(p: str) -> str:
        return str(Path(p).resolve().relative_to(PACKAGE.parent))

    return {
        "calls_across_files": len(crossings),
        "modules": len(modules),
        "calls_back_up": len(up),
        "depth": depth[1],
        "crossings": [f"{short(a)} -> {short(b)}" for a, b in crossings],
        "back_up": [f"{short(a)} -> {short(b)}" for a, b in up],
    }


def main() -> None:
    out = trace_partial_fit()
    print(f"calls across files: {out['calls_across_files']}; modules: {out['modules']}; "
          f"calls back up: {out['calls_back_up']}; depth: {out['depth']}")
    for line in out["crossings"]:
        print("  ", line)


if __name__ == "__main__":
    main()
