"""Numba kernels: the NumPy fast path of the E-step (prediction and the ``full`` type; the
``diag``/``spherical``/``tied`` update runs :mod:`online_gmm._block_kernels`, which shares
:func:`_row_posterior`).

Matrix products stay with BLAS; what numba fuses is everything around them: assembling the
log-densities from the quadratic-form pieces, the tempered softmax and the log-likelihood, row
by row while the row is in cache, in place (no extra ``(n_samples, n_components)``
temporaries), in the data's dtype. Each pass over a row is a loop LLVM vectorises: the
maximum through ``llvm.maxnum`` (:func:`_fmax`), ``exp`` as a polynomial with the power of two
made from the bits (:func:`_exp_nonpositive`, :func:`_pow2`).
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic, overload

# no "nnan"/"ninf": -inf marks unseeded components
_FASTMATH = {"nsz", "contract", "reassoc", "arcp"}


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
    the rounded arguments, ``tests/test_kernels.py``). Compiled only (an
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
    float32 data, as scikit-learn's); the softmax's sum in float64 (float32 runs of
    :data:`_F32_RUN` terms). One loop per pass, each vectorised: log-densities, their
    maximum, ``exp`` with the sum, the division."""
    n_components = G.shape[1]
    dt = G.dtype.type
    half = dt(0.5)
    zero = dt(0.0)
    ai = a[i]
    for k in range(n_components):
        q = max(ai + G[i, k] + b[k], zero)
        G[i, k] = const[k] - half * s[k] * q
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
def log_density(G, a, b, s, const):  # pragma: no cover - compiled
    """In place: ``G[n, k] <- l_nk`` (the weighted log-density, no softmax)."""
    n_samples, n_components = G.shape
    for i in numba.prange(n_samples):
        ai = a[i]
        for k in range(n_components):
            q = ai + G[i, k] + b[k]
            if q < 0.0:
                q = 0.0
            G[i, k] = const[k] - 0.5 * s[k] * q


@numba.njit(cache=True, fastmath=_FASTMATH, nogil=True, error_model="numpy")
def _zero_if_finite(a):  # pragma: no cover - compiled
    """``sum(a * 0)``: 0 when every entry of the 1-d ``a`` is finite, NaN otherwise (inf * 0
    is NaN; without the ``nnan``/``ninf`` flags LLVM may not fold ``x * 0`` to 0). Never
    overflows, unlike a plain sum; vectorises."""
    zero = a.dtype.type(0.0)
    acc = zero
    for k in range(a.shape[0]):
        acc += a[k] * zero
    return acc


def all_finite(a: np.ndarray) -> bool:
    """Whether every entry of the float NumPy array ``a`` is finite: one vectorised pass,
    no temporary (``np.isfinite(a).all()`` makes a boolean array of ``a``'s size)."""
    if not (a.flags.c_contiguous or a.flags.f_contiguous):
        return bool(np.isfinite(a).all())
    return bool(_zero_if_finite(a.ravel(order="K")) == 0)
