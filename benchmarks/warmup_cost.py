"""The warm-up's one-off cost against the stream it starts (issue 29).

For each (K, D) the estimator (``OnlineGaussianMixture``, ``diag``, ``warmup_size="auto"``)
takes a stream of ``make_blobs`` rows (K centres, ``cluster_std=6``, ``center_box=(-10,
10)``, ``random_state=1``) in batches of 1,024 until its warm-up is over (or the stream
ends). Printed per case:

- the warm-up's **one-off time**: the restarts at the first mark and the refinement at each
  later mark (the stage functions of :mod:`online_gmm._em.warmup`, timed), and the
  buffering of rows;
- the **stream time** of its buffered rows: the same number of rows (the most the buffer
  held) taken by ``partial_fit`` of a model past its start (``warmup_size=0``, a few
  batches in), the steady update, batch by batch;
- their **ratio** (target, issue 29: about 3 or less), medians over ``--repeats`` fresh
  models, timed in one process, the two interleaved;
- the stages: k-means++ (the restarts' seeds), Lloyd, the restarts' EM, each refinement
  (its rows), the buffering.

With ``--bridge`` the same for ``ssl_bridge.GMMPrototypes`` (``diag``, the default
warm-up, float32 tensors on the CPU: the rows as an encoder hands them), its ``update``
in place of ``partial_fit`` and a module past its start (``warmup_size=0``) for the
stream.

    python -m benchmarks.warmup_cost                 # K = 64 and 1,024, D = 16 and 64
    python -m benchmarks.warmup_cost --bridge        # the same, the bridge's update
    python -m benchmarks.warmup_cost --cases 64x64 --repeats 5
    python -m benchmarks.warmup_cost --smoke         # tiny sizes (seconds)
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import time
from collections import defaultdict
from contextlib import contextmanager
from typing import Any

import numpy as np

from ._common import silence_warnings

CASES = ((64, 16), (64, 64), (1024, 16), (1024, 64))
BATCH = 1024


def _stream(K: int, D: int, n: int) -> np.ndarray:
    from sklearn.datasets import make_blobs

    X, _ = make_blobs(n, n_features=D, centers=K, cluster_std=6.0, center_box=(-10, 10),
                      random_state=1)
    return X


@contextmanager
def _stages(times: dict[str, float]):
    """Times the warm-up's stage functions while inside (whichever this version has)."""
    from online_gmm._em import online as _online
    from online_gmm._em import warmup as W

    patched: list[tuple[Any, str, Any]] = []
    depth: list[str] = []

    def wrap(mod: Any, name: str, label: str, outer: bool = False) -> None:
        fn = getattr(mod, name, None)
        if fn is None:
            return

        def timed(*a: Any, **kw: Any) -> Any:
            if outer:
                depth.append(label)
            t0 = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                dt = time.perf_counter() - t0
                key = label
                if label == "refinement":
                    key = f"refinement ({a[1].shape[0]} rows)"
                elif not outer and depth:
                    key = f"{depth[-1]}: {label}"
                times[key] += dt
                if outer:
                    depth.pop()

        patched.append((mod, name, fn))
        setattr(mod, name, timed)

    wrap(W, "warm_state", "restarts", outer=True)
    wrap(W, "refined_state", "refinement", outer=True)
    wrap(W, "buffer", "buffering")
    # the restarts' stages (this version's, or the earlier one's)
    wrap(W, "greedy_seeds", "k-means++")
    wrap(W, "seed_from_sample", "k-means++")
    wrap(W, "lloyd_restarts", "Lloyd")
    wrap(W, "lloyd", "Lloyd")
    wrap(W, "em_iterations", "EM")
    _ = _online  # (the step calls the warm-up through its module: patched above)
    try:
        yield
    finally:
        for mod, name, fn in reversed(patched):
            setattr(mod, name, fn)


def _warm_up(X: np.ndarray, K: int, seed: int,
             bridge: bool = False) -> tuple[dict[str, float], int]:
    """One fresh model through the stream until its warm-up is over: the stages' times and
    the most rows its buffer held."""
    times: dict[str, float] = defaultdict(float)
    model = _model(K, X.shape[1], seed, bridge)
    held = 0
    with _stages(times):
        for start in range(0, X.shape[0], BATCH):
            before = getattr(model, "_warmup", None)
            model.partial_fit(X[start : start + BATCH])
            if model._warmup is not None:
                held = max(held, model._warmup.n_rows)
            elif before is not None:  # (over at this step: the rows it held at the mark)
                held = max(held, min(before.n_rows + BATCH, before.capacity))
            if start > 0 and model._warmup is None:
                break
    return dict(times), held


class _Bridge:
    """``ssl_bridge.GMMPrototypes`` behind the estimator's calls here: ``partial_fit`` of
    float32 rows is its ``update``; ``_warmup`` the warm-up as its progress buffer holds
    it (the rows held and the buffer's size), None once it is over."""

    def __init__(self, K: int, D: int, seed: int, warmup_size: Any = "auto") -> None:
        from ssl_bridge import GMMPrototypes

        self.head = GMMPrototypes(K, D, covariance_type="diag", random_state=seed,
                                  warmup_size=warmup_size)

    def partial_fit(self, X: np.ndarray) -> None:
        import torch

        self.head.update(torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32)))

    @property
    def _warmup(self) -> Any:
        from online_gmm import core
        from ssl_bridge._state import DONE, NOT_STARTED, phase

        head = self.head
        progress = head.warmup_progress
        if phase(progress) == DONE and bool(head.seeded.all()):
            return None
        if phase(progress) == NOT_STARTED:  # (the warm-up the first update starts)
            return core.start_warmup(head.warmup_size, head.warmup_restarts,
                                     head.n_prototypes, head.dim, 4, refine=False)
        _, size, limit, _, n_rows = (int(v) for v in progress)
        return core.Warmup(size=size, limit=limit, n_rows=n_rows)


def _model(K: int, D: int, seed: int, bridge: bool, **kw: Any) -> Any:
    if bridge:
        return _Bridge(K, D, seed, **kw)
    from online_gmm import OnlineGaussianMixture

    return OnlineGaussianMixture(K, covariance_type="diag", random_state=seed, **kw)


def _steady(X: np.ndarray, K: int, seed: int, bridge: bool = False) -> Any:
    model = _model(K, X.shape[1], seed, bridge, warmup_size=0)
    for start in range(0, 8 * BATCH, BATCH):
        model.partial_fit(X[start : start + BATCH])
    return model


def measure(K: int, D: int, repeats: int, n: int | None = None, seed: int = 0,
            bridge: bool = False) -> dict[str, Any]:
    """The one-off time, the stream time of the buffered rows, their ratio, the stages
    (``bridge``: of the bridge's update)."""
    n = n or 40 * BATCH
    X = _stream(K, D, n + 8 * BATCH)
    warm_rows, steady_rows = X[:n], X[n:]
    steady = _steady(steady_rows, K, seed, bridge)
    one_off, stream, stages, held = [], [], defaultdict(list), 0
    _warm_up(warm_rows[: 2 * BATCH], K, seed, bridge)  # compile (numba), import
    for _ in range(repeats + 1):
        gc.collect()
        times, held = _warm_up(warm_rows, K, seed, bridge)
        parts = [warm_rows[s : s + BATCH] for s in range(0, held, BATCH)]
        model = copy.deepcopy(steady)
        gc.collect()
        t0 = time.perf_counter()
        for b in parts:
            model.partial_fit(b)
        t_stream = time.perf_counter() - t0
        if _ == 0:
            continue  # (a warm-up round)
        total = sum(v for k, v in times.items() if ":" not in k)
        one_off.append(total)
        stream.append(t_stream)
        for k, v in times.items():
            stages[k].append(v)
    ratio = [a / b for a, b in zip(one_off, stream, strict=True)]
    return {
        "model": "bridge" if bridge else "estimator",
        "K": K, "D": D, "rows_held": held, "one_off_s": float(np.median(one_off)),
        "stream_s": float(np.median(stream)), "ratio": float(np.median(ratio)),
        "ratio_range": [float(min(ratio)), float(max(ratio))],
        "stages_s": {k: float(np.median(v)) for k, v in sorted(stages.items())},
    }


def report(r: dict[str, Any]) -> str:
    lines = [
        f"{r['model']}, K = {r['K']}, D = {r['D']}: the warm-up held {r['rows_held']:,} "
        f"rows; one-off {r['one_off_s']:.3f} s, streaming them {r['stream_s']:.3f} s: ratio "
        f"{r['ratio']:.2f} [{r['ratio_range'][0]:.2f}, {r['ratio_range'][1]:.2f}]"
    ]
    for k, v in r["stages_s"].items():
        lines.append(f"    {k:40s} {v:8.3f} s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.warmup_cost",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", nargs="*", default=None, metavar="KxD",
                        help="cases as KxD (default: 64x16 64x64 1024x16 1024x64)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one repeat")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--bridge", action="store_true",
                        help="ssl_bridge.GMMPrototypes.update (float32 tensors), not the "
                             "estimator's partial_fit")
    args = parser.parse_args(argv)
    silence_warnings()
    if args.smoke:
        cases, repeats, n = [(8, 4)], 1, 4 * BATCH
    else:
        cases = CASES if not args.cases else [tuple(map(int, c.split("x"))) for c in args.cases]
        repeats, n = args.repeats, None
    out = []
    for K, D in cases:
        r = measure(K, D, repeats, n=n, bridge=args.bridge)
        out.append(r)
        print(json.dumps(r) if args.json else report(r), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
