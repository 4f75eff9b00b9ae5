"""Where the time of one ``partial_fit`` goes: each stage of ``em_step`` timed alone.

It calls the library's private stage functions in the order ``_em.online.em_step`` does, on a
fitted (steady-state) model, without changing it. Diagnostic only: if the internals are
renamed it reports the error instead of failing the suite.

The breakdown runs on **one thread** (BLAS limited by threadpoolctl, numba by
``set_num_threads``) and reads the **CPU time of that thread**, so it shows the work each
stage does and is not blurred by other processes on a shared machine (wall time on a loaded
machine comes in multiples of the scheduler's tick as soon as a parallel region waits for a
descheduled worker).

Stages: ``validate`` (hyper-parameters and input checks), ``seed`` (unseeded/dead
components), ``prepare`` (per-batch parameter layout); for ``diag``/``spherical``/``tied``
(the block-parallel path, ``online_gmm._backends.numba_backend``) ``blocks`` (the fused kernel: both
products, the softmax, per row block) and ``statistics`` (the float64 centred moments); for
``full`` ``estep_blas`` (the quadratic-form products), ``estep_kernel`` (numba: softmax,
log-likelihood) and ``statistics`` (the statistics products and the chunk merge); then
``m_step`` (forgetting, covariances, precision factors); ``other`` is ``partial_fit`` minus
their sum (bookkeeping, the finite check, publishing the attributes).
"""

from __future__ import annotations

import copy
import time
from typing import Any

import numpy as np


def _med(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.thread_time()
        fn()
        times.append(time.thread_time() - t0)
    return float(np.median(times))


def stage_breakdown(model: Any, X: np.ndarray, repeats: int = 5) -> dict[str, Any]:
    """Median single-thread CPU seconds per stage of one step of ``model`` (fitted) on ``X``."""
    import numba
    from threadpoolctl import threadpool_limits

    n_threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        with threadpool_limits(limits=1, user_api="blas"):
            return _breakdown(model, X, repeats)
    except Exception as exc:  # diagnostic only
        return {"error": f"{type(exc).__name__}: {exc}"}
    finally:
        numba.set_num_threads(n_threads)


def _breakdown(model: Any, X: np.ndarray, repeats: int) -> dict[str, Any]:
    from online_gmm import core
    from online_gmm._backends import numba_backend as _blocked
    from online_gmm._em.online import _seed_and_reseed

    backend = core.select_backend(X)
    st = model._state
    cfg = model._config()
    ct = cfg.covariance_type
    w = np.ones(X.shape[0], dtype=X.dtype)
    w_host = w.astype(np.float64)
    K, d = st.means.shape
    out: dict[str, float] = {}

    def validate():
        model._validate_hyperparameters()
        model._check_X(X, reset=False)

    out["validate"] = _med(validate, repeats)
    rng = copy.deepcopy(model._rng)  # outside the timer (a RandomState copy costs ~0.3 ms)
    out["seed"] = _med(lambda: _seed_and_reseed(st, X, w, w_host, cfg, rng, backend), repeats)
    if _blocked.kernel_kind(ct) is not None:
        _blocked_stages(out, st, ct, X, w, repeats)
    else:
        _generic_stages(out, st, ct, X, w, repeats, K, d, backend)
    stats = backend.state_statistics(st, ct, X, w, 1.0)
    out["m_step"] = _med(
        lambda: backend.m_step(st, stats, eta=0.0, forgetting=cfg.forgetting,
                               covariance_type=ct, reg_covar=cfg.reg_covar),
        repeats,
    )
    trial = copy.deepcopy(model)
    out["partial_fit"] = _med(lambda: trial.partial_fit(X), repeats)
    out["other"] = max(out["partial_fit"] - sum(v for k, v in out.items() if k != "partial_fit"),
                       0.0)
    return {k: round(v, 6) for k, v in out.items()}


def _blocked_stages(out, st, ct, X, w, repeats) -> None:
    """``diag``/``spherical``/``tied``: the block-parallel path, whose E-step and statistics
    products run fused in one kernel (``blocks``: fill, BLAS, softmax, BLAS per row block);
    ``prepare`` is the layout of the parameters, ``statistics`` the rest of
    ``state_statistics`` (the float64 centred moments)."""
    from online_gmm._backends import numba_backend as _blocked

    whole = _med(lambda: _blocked.state_statistics(st, ct, X, w, 1.0), repeats)
    if ct != "tied":
        from online_gmm._backends import layout_kernels as _layout
        from online_gmm._math.array_api import LOG_2PI

        K, d = st.means.shape
        n_rhs = 2 * d + 1 if ct == "diag" else d + 2
        bufs = [np.empty((K, n_rhs), X.dtype)] + [np.empty(K, X.dtype) for _ in range(3)]
        bufs.append(np.empty(d, X.dtype))
        pc = st.precisions_cholesky

        def layout():
            if ct == "diag":  # None: the log-determinant computed in the kernel (as _blocked)
                _layout.prepare_diag(st.weights, st.means, pc, None, LOG_2PI, *bufs)
            else:
                _layout.prepare_spherical(st.weights, st.means, pc, LOG_2PI, *bufs)

        out["prepare"] = _med(layout, repeats)
    kernel = _blocked._kernels.block_statistics
    timed = []

    def timing(*args):
        t0 = time.thread_time()
        kernel(*args)
        timed.append(time.thread_time() - t0)

    _blocked._kernels.block_statistics = timing
    try:
        _med(lambda: _blocked.state_statistics(st, ct, X, w, 1.0), repeats)
    finally:
        _blocked._kernels.block_statistics = kernel
    out["blocks"] = float(np.median(timed))
    out["statistics"] = max(whole - out["blocks"] - out.get("prepare", 0.0), 0.0)


def _generic_stages(out, st, ct, X, w, repeats, K, d, backend) -> None:
    """``full``: the chunked path, stage by stage."""
    from online_gmm import core
    from online_gmm._math.estep import chunk_statistics, quadratic_pieces

    xp = backend.xp
    p = core.state_prepared(st, ct, X.dtype, xp)
    out["prepare"] = _med(lambda: core.state_prepared(st, ct, X.dtype, xp), repeats)
    Xc = X - p.shift_dt
    G, a = quadratic_pieces(Xc, p, xp)
    out["estep_blas"] = _med(lambda: quadratic_pieces(Xc, p, xp), repeats)
    G_work = np.empty_like(G)

    def kernel():
        np.copyto(G_work, G)
        backend.finish(G_work, a, p, 1.0)

    copy_only = _med(lambda: np.copyto(G_work, G), repeats)
    out["estep_kernel"] = max(_med(kernel, repeats) - copy_only, 0.0)
    R, ll = backend.finish(G.copy(), a, p, 1.0)
    empty = core.empty_stats(K, d, ct, xp, "cpu")
    out["statistics"] = _med(
        lambda: core.merge_stats(empty, chunk_statistics(Xc, w, R, ll, p, xp), ct, xp), repeats
    )


def describe_breakdown(b: dict[str, Any]) -> str:
    """``"one step ... 12.3 ms ~ estep_kernel 5.1 + estep_blas 2.0 + ..."`` (medians, ms)."""
    if "error" in b:
        return f"breakdown unavailable ({b['error']})"
    total = b["partial_fit"]
    parts = sorted((k for k in b if k != "partial_fit"), key=lambda k: -b[k])
    shown = [k for k in parts if b[k] >= 0.01 * total]
    return f"one step, 1 thread, CPU {total * 1e3:.2f} ms ~ " + " + ".join(
        f"{k} {b[k] * 1e3:.2f}" for k in shown
    ) + " (ms, each stage alone)"
