"""Numba kernels of the numba backend: the row kernel (log-densities, tempered softmax and
log-likelihood of one row), the block kernels built on it (one row block's whole E-step and
statistics; the per-batch layouts are in :mod:`~online_gmm._backends.layout_kernels`, the
checks of a batch in :mod:`~online_gmm._backends.check_kernels`). Kernels that inline each
other live in this one file: numba's cache checks only the file that defines a kernel.

Matrix products stay with BLAS; what numba fuses is everything around them: assembling the
log-densities from the quadratic-form pieces, the tempered softmax and the log-likelihood, row
by row while the row is in cache, in place (no extra ``(n_samples, n_components)``
temporaries), in the data's dtype. Each pass over a row is a loop LLVM vectorises: the
maximum through ``llvm.maxnum`` (:func:`_fmax`), ``exp`` as a polynomial with the power of two
made from the bits (:func:`_exp_nonpositive`, :func:`_pow2`). The statistics' product skips
the responsibilities that are exactly 0 (below ``exp``'s floor) where that costs less than
the product (:func:`sparse_pays`, :func:`_sparse_sums`): the sharp posteriors of
high-dimensional data.
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic, overload

# no "nnan"/"ninf": -inf marks unseeded components
_FASTMATH = {"nsz", "contract", "reassoc", "arcp"}

#: The covariance types' codes in the kernels (each type's ``KERNEL_KIND``,
#: :mod:`online_gmm._math.covariance`).
DIAG, SPHERICAL, TIED = 0, 1, 2


#: At or below these exponents ``exp`` is taken as 0: float32's smallest normal is
#: ``exp(-87.3)``; float64's ``exp(-708.4)``. Nothing denormal is made (denormal operands
#: slow the products that follow down many times).
EXP_FLOOR_F32 = -87.0
EXP_FLOOR_F64 = -708.0

_LOG2E = 1.4426950408889634


@intrinsic
def _pow2(typingctx, n):  # pragma: no cover - typing/codegen run at compile time
    """``2.0 ** n`` for a float ``n`` holding an integer within the type's normal exponents,
    of the same float type, from the bits: ``n + 1.5 * 2**m`` (``m`` mantissa bits) holds
    ``n`` in its low bits; adding the exponent bias and shifting left by ``m`` makes the
    float. Integer adds and shifts, which vectorise (a float-to-int64 conversion does not
    without AVX-512)."""
    if not isinstance(n, types.Float):
        return None
    bits, m, bias = (32, 23, 127) if n.bitwidth == 32 else (64, 52, 1023)
    fty = ir.FloatType() if bits == 32 else ir.DoubleType()
    ity = ir.IntType(bits)

    def codegen(context, builder, sig, args):
        shifted = builder.fadd(args[0], ir.Constant(fty, 1.5 * 2.0**m))  # exact
        i = builder.bitcast(shifted, ity)
        i = builder.shl(builder.add(i, ir.Constant(ity, bias)), ir.Constant(ity, m))
        return builder.bitcast(i, fty)

    return n(n), codegen


@intrinsic
def _fmax(typingctx, a, b):  # pragma: no cover - typing/codegen run at compile time
    """``llvm.maxnum``: the larger of two floats of one type (the number if one is NaN).
    LLVM vectorises a reduction of it; of ``max``'s compare-and-select it does not, without
    the ``nnan`` flag."""
    if not (isinstance(a, types.Float) and a == b):
        return None

    def codegen(context, builder, sig, args):
        lty = args[0].type
        fnty = ir.FunctionType(lty, [lty, lty])
        fn = builder.module.declare_intrinsic("llvm.maxnum", [lty], fnty)
        return builder.call(fn, args)

    return a(a, b), codegen


@intrinsic
def _fma(typingctx, a, b, c):  # pragma: no cover - typing/codegen run at compile time
    """``a * b + c`` rounded once (``llvm.fma``; one instruction with FMA hardware). Its own
    call, so that the fast-math flags of the kernels cannot reassociate it with the next
    subtraction (which would undo the two-part ``ln 2`` of :func:`_exp_nonpositive`)."""
    if not (isinstance(a, types.Float) and a == b == c):
        return None

    def codegen(context, builder, sig, args):
        lty = args[0].type
        fnty = ir.FunctionType(lty, [lty, lty, lty])
        fn = builder.module.declare_intrinsic("llvm.fma", [lty], fnty)
        return builder.call(fn, args)

    return a(a, b, c), codegen


@intrinsic
def _select(typingctx, cond, a, b):  # pragma: no cover - typing/codegen run at compile time
    """``a if cond else b`` as one LLVM ``select``, no branch (``a``, ``b``: one type)."""
    if not (isinstance(cond, types.Boolean) and a == b):
        return None

    def codegen(context, builder, sig, args):
        return builder.select(args[0], args[1], args[2])

    return a(cond, a, b), codegen


def _exp_nonpositive(d, floor):
    """``exp(d)`` for ``d <= 0``, in the type of ``d`` (float32 or float64), in arithmetic
    LLVM vectorises (numba's ``exp`` is a scalar libm call without Intel SVML); ``d <=
    floor`` (and -inf) gives 0. Cody-Waite: ``d = n ln 2 + r``, ``|r| <= ln(2) / 2``, with
    ``ln 2`` in two parts; ``exp(r)`` by a polynomial; ``2**n`` from the bits
    (:func:`_pow2`). float64: degree-12 Taylor polynomial, relative error within 2 ``eps``;
    float32: Cephes' ``expf`` polynomial, within 1 float32 ulp (measured against libm on
    the rounded arguments, ``tests/backends/test_kernels.py``). Compiled only (an
    :func:`~numba.extending.overload`)."""
    raise NotImplementedError("compiled only")  # pragma: no cover


def _exp_f64(d, floor):  # pragma: no cover - compiled
    x = max(d, floor)
    n = np.floor(x * _LOG2E + 0.5)
    r = _fma(-n, 0.693145751953125, x)  # ln 2 = hi + lo, hi with few bits: n * hi is exact
    r = _fma(-n, 1.42860682030941723212e-6, r)
    p = 1.0 / 479001600.0
    p = 1.0 / 39916800.0 + r * p
    p = 1.0 / 3628800.0 + r * p
    p = 1.0 / 362880.0 + r * p
    p = 1.0 / 40320.0 + r * p
    p = 1.0 / 5040.0 + r * p
    p = 1.0 / 720.0 + r * p
    p = 1.0 / 120.0 + r * p
    p = 1.0 / 24.0 + r * p
    p = 1.0 / 6.0 + r * p
    p = 0.5 + r * p
    p = 1.0 + r * p
    p = 1.0 + r * p
    return _select(d > floor, p * _pow2(n), 0.0)


def _exp_f32(d, floor):  # pragma: no cover - compiled
    f = np.float32
    x = max(d, f(floor))
    n = np.floor(x * f(_LOG2E) + f(0.5))
    r = _fma(-n, f(0.693359375), x)
    r = _fma(-n, f(-2.12194440e-4), r)
    p = f(1.9875691500e-4)
    p = f(1.3981999507e-3) + r * p
    p = f(8.3334519073e-3) + r * p
    p = f(4.1665795894e-2) + r * p
    p = f(1.6666665459e-1) + r * p
    p = f(5.0000001201e-1) + r * p
    p = f(1.0) + r + r * r * p
    return _select(d > floor, p * _pow2(n), f(0.0))


@overload(_exp_nonpositive, inline="always")
def _exp_nonpositive_impl(d, floor):  # pragma: no cover - typing runs at compile time
    if isinstance(d, types.Float) and d.bitwidth == 32:
        return _exp_f32
    return _exp_f64


#: float32 rows sum their ``exp`` terms in float32 over runs of this many components, the
#: runs' sums in float64: a float32 sum of thousands of terms loses digits, a float64 one
#: halves the vector width.
_F32_RUN = 256


@numba.njit(cache=True, fastmath=_FASTMATH, nogil=True, error_model="numpy")
def _exp_sum(g, mx, floor):  # pragma: no cover - compiled
    """In place ``g <- exp(g - mx)``; returns the sum, in ``g``'s dtype. A loop of its own
    over a 1-d view: indices LLVM knows are in bounds, so that it vectorises."""
    acc = g.dtype.type(0.0)
    for k in range(g.shape[0]):
        e = _exp_nonpositive(g[k] - mx, floor)
        g[k] = e
        acc += e
    return acc


@numba.njit(cache=True, fastmath=_FASTMATH, nogil=True, error_model="numpy")
def _exp_sum_tempered(g, mx, floor, inv_temp):  # pragma: no cover - compiled
    """As :func:`_exp_sum` with ``g <- exp((g - mx) * inv_temp)``; returns the sums of
    ``exp(g - mx)`` (the T = 1 terms) and of the new ``g``."""
    acc1 = g.dtype.type(0.0)
    acc = g.dtype.type(0.0)
    for k in range(g.shape[0]):
        d = g[k] - mx
        acc1 += _exp_nonpositive(d, floor)
        e = _exp_nonpositive(d * inv_temp, floor)
        g[k] = e
        acc += e
    return acc1, acc


@numba.njit(cache=True, fastmath=_FASTMATH, nogil=True, error_model="numpy", inline="always")
def _row_posterior(G, i, a, b, s, const, inv_temp, ll, floor):  # pragma: no cover
    """Row ``i`` of :func:`tempered_posterior`, in ``G``'s dtype (float32 arithmetic for
    float32 data, as scikit-learn's): its log-densities (:func:`_row_log_density`), then
    their softmax (:func:`_row_softmax`)."""
    _row_log_density(G, i, a, b, s, const)
    _row_softmax(G, i, inv_temp, ll, floor)


@numba.njit(cache=True, fastmath=_FASTMATH, nogil=True, error_model="numpy", inline="always")
def _row_log_density(G, i, a, b, s, const):  # pragma: no cover - compiled
    """In place: ``G[i, k] <- l_ik = const[k] - 0.5 s[k] max(a[i] + G[i, k] + b[k], 0)``, in
    ``G``'s dtype (one vectorised loop)."""
    dt = G.dtype.type
    half = dt(0.5)
    zero = dt(0.0)
    ai = a[i]
    for k in range(G.shape[1]):
        q = max(ai + G[i, k] + b[k], zero)
        G[i, k] = const[k] - half * s[k] * q


@numba.njit(cache=True, fastmath=_FASTMATH, nogil=True, error_model="numpy", inline="always")
def _row_softmax(G, i, inv_temp, ll, floor):  # pragma: no cover - compiled
    """In place: row ``i`` of log-densities ``G`` -> the softmax of ``G[i] * inv_temp``, and
    ``ll[i]`` the T = 1 log-sum-exp. The sum in float64 (float32 runs of :data:`_F32_RUN`
    terms). One loop per pass, each vectorised: the maximum, ``exp`` with the sum, the
    division."""
    n_components = G.shape[1]
    dt = G.dtype.type
    mx = dt(-np.inf)
    for k in range(n_components):
        mx = _fmax(mx, G[i, k])
    fl = dt(floor)
    run = _F32_RUN if G.itemsize == 4 else n_components
    acc = 0.0
    if inv_temp == 1.0:
        for k0 in range(0, n_components, run):
            acc += np.float64(_exp_sum(G[i, k0:k0 + run], mx, fl))
        ll[i] = mx + np.log(acc)
    else:
        it = dt(inv_temp)
        acc1 = 0.0
        for k0 in range(0, n_components, run):
            p1, p = _exp_sum_tempered(G[i, k0:k0 + run], mx, fl, it)
            acc1 += np.float64(p1)
            acc += np.float64(p)
        ll[i] = mx + np.log(acc1)
    inv = dt(1.0 / acc)
    for k in range(n_components):
        G[i, k] *= inv


@numba.njit(parallel=True, cache=True, fastmath=_FASTMATH, nogil=True, error_model="numpy")
def _tempered_posterior_parallel(G, a, b, s, const, inv_temp, ll, floor):  # pragma: no cover
    for i in numba.prange(G.shape[0]):
        _row_posterior(G, i, a, b, s, const, inv_temp, ll, floor)


@numba.njit(cache=True, fastmath=_FASTMATH, nogil=True, error_model="numpy")
def _tempered_posterior_serial(G, a, b, s, const, inv_temp, ll, floor):  # pragma: no cover
    for i in range(G.shape[0]):
        _row_posterior(G, i, a, b, s, const, inv_temp, ll, floor)


#: Below this many (row, component) entries the kernel runs on one thread: numba's threads
#: cost more than they give there, and idle ones spin against BLAS's.
SMALL_KERNEL_WORK = 2**18


def tempered_posterior(G, a, b, s, const, inv_temp, ll) -> None:
    """In place: ``G[n, k] <- r_nk`` and ``ll[n] <- log sum_k exp(l_nk)``.

    With ``q = max(a[n] + G[n, k] + b[k], 0)`` (a squared Mahalanobis distance) the
    log-density is ``l_nk = const[k] - 0.5 * s[k] * q`` and the responsibilities are the
    softmax of ``l_nk * inv_temp``. ``ll`` is always the T = 1 log-likelihood. One ``exp``
    per entry at T = 1 (two while annealing), vectorised (:func:`_exp_nonpositive`); terms
    at or below ``exp(EXP_FLOOR_*)`` are 0; rows in parallel for large work.
    """
    kernel = (
        _tempered_posterior_serial if G.size < SMALL_KERNEL_WORK
        else _tempered_posterior_parallel
    )
    floor = EXP_FLOOR_F32 if G.dtype == np.float32 else EXP_FLOOR_F64
    kernel(G, a, b, s, const, inv_temp, ll, floor)


@numba.njit(parallel=True, cache=True, fastmath=_FASTMATH, nogil=True, error_model="numpy")
def _softmax_rows_parallel(L, inv_temp, ll, floor):  # pragma: no cover - compiled
    for i in numba.prange(L.shape[0]):
        _row_softmax(L, i, inv_temp, ll, floor)


@numba.njit(cache=True, fastmath=_FASTMATH, nogil=True, error_model="numpy")
def _softmax_rows_serial(L, inv_temp, ll, floor):  # pragma: no cover - compiled
    for i in range(L.shape[0]):
        _row_softmax(L, i, inv_temp, ll, floor)


def softmax_rows(L, inv_temp: float):
    """In place: each row of log-densities ``L`` (n, K), C-contiguous, -> the softmax of
    ``L[n] * inv_temp`` (``inv_temp > 0``), by the E-step's row kernel (:func:`_row_softmax`:
    vectorised ``exp``, terms at or below ``exp(EXP_FLOOR_*)`` 0, so no denormal is ever
    made); rows in parallel for large work. Returns each row's T = 1 log-sum-exp (n,)."""
    kernel = _softmax_rows_serial if L.size < SMALL_KERNEL_WORK else _softmax_rows_parallel
    floor = EXP_FLOOR_F32 if L.dtype == np.float32 else EXP_FLOOR_F64
    ll = np.empty(L.shape[0], dtype=L.dtype)
    kernel(L, float(inv_temp), ll, floor)
    return ll


@numba.njit(parallel=True, cache=True, fastmath=_FASTMATH, nogil=True, error_model="numpy")
def log_density(G, a, b, s, const):  # pragma: no cover - compiled
    """In place: ``G[n, k] <- l_nk`` (the weighted log-density, no softmax); rows in
    parallel for large work only (below :data:`SMALL_KERNEL_WORK` entries no parallel region
    starts: on a busy machine its start alone took milliseconds, for one row)."""
    n_samples = G.shape[0]
    if G.size < SMALL_KERNEL_WORK:
        for i in range(n_samples):
            _row_log_density(G, i, a, b, s, const)
    else:
        for i in numba.prange(n_samples):
            _row_log_density(G, i, a, b, s, const)


# ---------------------------------------------------------------------- block kernels
# Numba kernels for :mod:`online_gmm._backends.numba_backend`: one whole E-step + statistics per
# row block.
#
# Each kernel runs its row blocks in a ``prange``; a block is filled, multiplied (``np.dot``:
# single-threaded BLAS, called from numba without the GIL), turned into responsibilities by
# the same row kernel as :func:`tempered_posterior`, and multiplied again
# into the block's raw sums. Buffers come from the caller: the working ones per lane,
# ``(n_lanes, rows, ...)``, the sums per block; a block's rows past the end of the data are
# zero rows that add nothing to any sum.
#
# Block data matrix ``A`` (the columns of :func:`online_gmm._backends.numba_backend.layout`):
#
# - ``diag``: ``[xc*xc, xc, 1]`` with ``rhs = [prec; -2 mu prec; b]``, so ``A @ rhs`` is the
#   squared Mahalanobis distance itself;
# - ``spherical``: ``[xc, |xc|^2, 1]`` with ``rhs = [-2 mu^T; 1; b]``, likewise;
# - ``tied``: ``[xc, 1]``; ``Z = A @ [U; 0]``, then ``Z @ (-2 U^T mu^T) + |Z|^2 + b``.
#
# and the sums ``S = R^T @ (w * A)``: every first and second moment and, from the ones
# column, the masses, in one product.

_JIT = dict(cache=True, nogil=True, error_model="numpy")


@numba.njit(fastmath=_FASTMATH, inline="always", **_JIT)
def _fill(X, lo, hi, shift, kind, A):  # pragma: no cover - compiled
    """Rows ``lo:hi`` of ``X`` minus ``shift`` into ``A`` in the layout of ``kind``
    (0 diag, 1 spherical, 2 tied); the rows after ``hi - lo`` are zeros."""
    rows, n_cols = A.shape
    d = X.shape[1]
    for i in range(rows):
        if lo + i >= hi:
            for j in range(n_cols):
                A[i, j] = 0.0
            continue
        sq = 0.0
        for j in range(d):
            x = X[lo + i, j] - shift[j]
            if kind == 0:
                A[i, j] = x * x
                A[i, d + j] = x
            else:
                A[i, j] = x
                sq += x * x
        if kind == 1:
            A[i, d] = sq
        A[i, n_cols - 1] = 1.0


@numba.njit(parallel=True, fastmath=_FASTMATH, **_JIT)
def block_statistics(X, w, unit, kind, shift, rhs, U, a0, b, s, const, inv_temp, floor,
                     A, B, Z, G, ll, S, S64, x64, T2, loglik, L, keep, costs):  # pragma: no cover
    """Fill the per-block sums: ``S[blk] = R^T @ (w * A)``, ``loglik[blk] = sum w log p``,
    and for ``tied`` (``kind == 2``) the float64 scatter ``T2[blk] = sum w x x^T``; with
    ``keep``, ``L`` (n, K) also gets every row's weighted log-densities ``l_nk`` (the
    E-step's own, before its softmax; a caller's targets from the same E-step). A block
    whose positive responsibilities are few enough for ``costs`` (:func:`sparse_pays`) sums
    over those only (:func:`_sparse_sums`; the others are exactly 0).

    Block ``blk`` holds rows ``blk * rows`` to ``(blk + 1) * rows`` of ``X`` (``rows =
    A.shape[1]``); the blocks that hold data go to the lanes in turn (block ``blk`` to lane
    ``blk % n_lanes``, ``n_lanes = A.shape[0]``, one thread each), whose working buffers
    (``A``, ``B``, ``Z``, ``G``, ``ll``, ``x64``: ``(n_lanes, rows, ...)``) are reused from
    block to block, while the sums (``S``, ``S64``, ``T2``, ``loglik``: at least as many
    as the blocks) are the block's own: a block's sums do not depend on its lane.

    ``a0``/``b`` are the kernel's row and column offsets (zeros where ``rhs`` folds them in);
    ``B`` is used only when not ``unit`` (weights not all one); ``U``, ``Z``, ``x64``,
    ``T2`` only for ``tied``, ``S64`` only for ``tied`` with float32 data (the sums of
    ``S`` in float64: :func:`_tied_float64_sums`).
    """
    n_lanes, rows = A.shape[0], A.shape[1]
    n_used = min(S.shape[0], (X.shape[0] + rows - 1) // rows)
    if n_lanes == 1:  # (no parallel region for one lane: on a busy machine its start
        # alone took milliseconds, 30 times a small step's own work)
        for blk in range(n_used):
            _one_block(np.int64(blk), np.int64(0), X, w, unit, kind, shift, rhs, U, a0, b, s,
                       const, inv_temp, floor, A, B, Z, G, ll, S, S64, x64, T2, loglik, L,
                       keep, costs)
        return
    # the parallel loop holds one call, so numba's parfor passes see a few lines, not the
    # block's whole body; int64 index: the parfor's own (unsigned) index would compile
    # _one_block a second time (each compile ~2.4 s of a cold start)
    for lane in numba.prange(n_lanes):
        _lane_blocks(np.int64(lane), n_lanes, n_used, X, w, unit, kind, shift, rhs, U, a0, b,
                     s, const, inv_temp, floor, A, B, Z, G, ll, S, S64, x64, T2, loglik, L,
                     keep, costs)


@numba.njit(fastmath=_FASTMATH, **_JIT)
def _lane_blocks(lane, n_lanes, n_used, X, w, unit, kind, shift, rhs, U, a0, b, s, const,
                 inv_temp, floor, A, B, Z, G, ll, S, S64, x64, T2, loglik, L, keep,
                 costs):  # pragma: no cover - compiled
    """The blocks of lane ``lane`` of :func:`block_statistics`, in order."""
    for blk in range(lane, n_used, n_lanes):
        _one_block(blk, lane, X, w, unit, kind, shift, rhs, U, a0, b, s, const, inv_temp,
                   floor, A, B, Z, G, ll, S, S64, x64, T2, loglik, L, keep, costs)


@numba.njit(fastmath=_FASTMATH, **_JIT)
def _one_block(blk, lane, X, w, unit, kind, shift, rhs, U, a0, b, s, const, inv_temp, floor,
               A, B, Z, G, ll, S, S64, x64, T2, loglik, L, keep, costs):  # pragma: no cover
    """Row block ``blk`` of :func:`block_statistics`, in the working buffers of ``lane``."""
    n = X.shape[0]
    rows = A.shape[1]
    d = X.shape[1]
    lo = blk * rows
    hi = min(lo + rows, n)
    Ab = A[lane]
    Gb = G[lane]
    llb = ll[lane]
    _fill(X, lo, hi, shift, kind, Ab)
    if kind == 2:
        Zb = Z[lane]
        np.dot(Ab, U, Zb)
        np.dot(Zb, rhs, Gb)
        ab = np.empty(rows, dtype=llb.dtype)
        for i in range(rows):
            acc = 0.0
            for j in range(d):
                acc += Zb[i, j] * Zb[i, j]
            ab[i] = acc
    else:
        np.dot(Ab, rhs, Gb)
        ab = a0
    n_components = Gb.shape[1]
    # (no count where the sparse sums cannot pay even with no positive entry: few columns)
    count = sparse_pays(0, 1, Ab.shape[1], costs[0], costs[1])
    nnz = 0
    for i in range(rows):
        _row_log_density(Gb, i, ab, b, s, const)
        if keep and i < hi - lo:
            for k in range(n_components):
                L[lo + i, k] = Gb[i, k]
        _row_softmax(Gb, i, inv_temp, llb, floor)
        if count and i < hi - lo:
            nnz += _n_positive(Gb[i])
    acc = 0.0
    for i in range(hi - lo):
        if w[lo + i] != 0.0:
            acc += w[lo + i] * np.float64(llb[i])
    loglik[blk] = acc
    if count and sparse_pays(nnz, (hi - lo) * n_components, Ab.shape[1], costs[0], costs[1]):
        _sparse_sums(Gb, Ab, w, lo, hi, unit, S[blk])
    elif unit:
        np.dot(Gb.T, Ab, S[blk])
    else:
        Bb = B[lane]
        for i in range(rows):
            wi = w[lo + i] if lo + i < hi else 0.0
            for j in range(Ab.shape[1]):
                Bb[i, j] = Ab[i, j] * wi
        np.dot(Gb.T, Bb, S[blk])
    if kind == 2:
        xb = x64[lane]
        if Gb.itemsize == 4:
            _tied_float64_sums(Gb, Ab, w, lo, hi, xb, S64[blk])
        else:
            for i in range(rows):
                sw = np.sqrt(np.float64(w[lo + i])) if lo + i < hi else 0.0
                for j in range(d):
                    xb[i, j] = sw * np.float64(Ab[i, j])
        np.dot(xb.T, xb, T2[blk])


@numba.njit(**_JIT)
def sparse_pays(nnz, entries, n_cols, sparse_cost, scan_cost):  # pragma: no cover - compiled
    """Whether a block's statistics cost less by :func:`_sparse_sums` than by the dense
    product, for ``nnz`` positive of ``entries`` responsibilities and ``n_cols`` columns of
    data: a dense product costs ``entries * n_cols`` multiply-adds; the sparse sums ``nnz *
    n_cols`` multiply-adds of ``sparse_cost`` times their cost each, and their scan for
    positive entries ``scan_cost`` of them per entry (``sparse_cost`` 0: never)."""
    if sparse_cost <= 0:
        return False
    return nnz * n_cols * sparse_cost + entries * scan_cost <= entries * n_cols


#: Entries a run of :func:`_sparse_sums`'s scan for positive responsibilities (one maximum).
_SCAN_RUN = 64


@numba.njit(fastmath=_FASTMATH, **_JIT)
def _n_positive(r):  # pragma: no cover - compiled
    """How many entries of the 1-d ``r`` are positive (one vectorised loop)."""
    n = 0
    for k in range(r.shape[0]):
        n += 1 if r[k] > 0 else 0
    return n


@numba.njit(fastmath=_FASTMATH, **_JIT)
def _sparse_sums(Gb, Ab, w, lo, hi, unit, Sb):  # pragma: no cover - compiled
    """``Sb = R^T @ (w * A)`` over the block's rows of data (``hi - lo``), from the positive
    responsibilities only (the others are exactly 0 and add nothing): for each row, each
    component it has weight in gets ``r w a``. The dense product's sums, up to the order of
    the additions (row order here)."""
    Sb[:, :] = 0.0
    K = Gb.shape[1]
    zero = Gb.dtype.type(0.0)
    for i in range(hi - lo):
        wi = Ab.dtype.type(1.0) if unit else w[lo + i]
        if wi == 0:
            continue
        for k0 in range(0, K, _SCAN_RUN):  # runs without a positive entry: one max each
            k1 = min(k0 + _SCAN_RUN, K)
            mx = zero
            for k in range(k0, k1):
                mx = _fmax(mx, Gb[i, k])
            if not mx > 0:
                continue
            for k in range(k0, k1):
                r = Gb[i, k]
                if r > 0:
                    _axpy(r * wi, Ab[i], Sb[k])


@numba.njit(fastmath=_FASTMATH, inline="always", **_JIT)
def _axpy(c, x, y):  # pragma: no cover - compiled
    """``y += c x`` (1-d, one vectorised loop)."""
    for j in range(y.shape[0]):
        y[j] += c * x[j]


@numba.njit(fastmath=_FASTMATH, **_JIT)
def _tied_float64_sums(Gb, Ab, w, lo, hi, xb, S64b):  # pragma: no cover - compiled
    """``tied`` with float32 data: the pieces of the pooled scatter, consistently in float64
    from the float32 responsibilities: ``S64b = (w r)^T [x, 1]`` (first moments and masses)
    and ``xb = sqrt(w sum_k r) x``, so that ``T2 - sum_k S1_k S1_k^T / m_k`` is a sum of
    per-component scatters (positive semi-definite up to float64 rounding). From the
    float32 sums the difference of two large terms is indefinite by float32 rounding (a
    first batch of 32 rows at D = 64, std 3, failed)."""
    rows, K = Gb.shape
    n_cols = Ab.shape[1]
    d = xb.shape[1]
    r64 = np.empty((rows, K))
    a64 = np.empty((rows, n_cols))
    for i in range(rows):
        wi = np.float64(w[lo + i]) if lo + i < hi else 0.0
        tot = 0.0
        for k in range(K):
            r = np.float64(Gb[i, k])
            r64[i, k] = wi * r
            tot += r
        for j in range(n_cols):
            a64[i, j] = np.float64(Ab[i, j])
        sw = np.sqrt(wi * tot)
        for j in range(d):
            xb[i, j] = sw * a64[i, j]
    np.dot(r64.T, a64, S64b)
