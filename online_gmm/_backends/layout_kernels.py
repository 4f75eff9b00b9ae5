"""Numba kernels of the numba backend's per-batch layouts: the E-step's parameters laid out
for the block kernels (:func:`prepare_diag`, :func:`prepare_spherical`: the values of
:func:`online_gmm._math.estep.prepare`, into the caller's buffers) and the blocks' raw sums
turned into centred float64 moments (:func:`centred_moments`). Called from Python only (no
kernel of :mod:`~online_gmm._backends.kernels` inlines them), so they live apart: numba's
cache checks only the file that defines a kernel.
"""

from __future__ import annotations

import math

import numba
import numpy as np

_JIT = dict(cache=True, nogil=True, error_model="numpy")
_LN2 = math.log(2.0)


@numba.njit(**_JIT)
def _shift(weights, means, shift_dt):  # pragma: no cover - compiled
    """The mixture mean (float64), also written to ``shift_dt`` in the data's dtype."""
    K, d = means.shape
    total = 0.0
    for k in range(K):
        total += weights[k]
    shift = np.zeros(d)
    for k in range(K):
        for j in range(d):
            shift[j] += weights[k] * means[k, j]
    for j in range(d):
        shift[j] /= total
        shift_dt[j] = shift[j]
    return shift


@numba.njit(**_JIT)
def prepare_diag(weights, means, prec_chol, logdet, log_2pi, rhs_t, b, s, const, shift_dt):
    """The E-step's per-batch layout for ``diag``, into the caller's buffers (data dtype):
    ``rhs_t = [prec, -2 mu prec, b]`` (K, 2D + 1), the transpose of the module docstring's
    ``rhs``; ``b`` zeros (folded into ``rhs``), ``s`` ones, ``const = log pi + logdet -
    D/2 log 2 pi``; returns the float64 shift. Float64 arithmetic, one rounding to the data's
    dtype: the values of :func:`online_gmm._math.estep.prepare`.

    ``logdet``: ``log|U|`` per component, or ``None``: computed here as the log of the
    product of ``U``'s diagonal, one ``log`` per component instead of ``D`` (numba's and,
    without AVX-512, NumPy's ``log`` are scalar libm calls). Factors within ``[1e-100,
    1e100]`` are multiplied, the running product kept within ``[1e-100, 1e100]`` by moving
    its binary exponent out (``frexp``, exact), so nothing overflows or underflows; factors
    outside are added as logs. About ``D`` roundings of relative size ``eps``: the accuracy
    of a sum of ``D`` logs."""  # pragma: no cover - compiled
    K, d = means.shape
    shift = _shift(weights, means, shift_dt)
    for k in range(K):
        bk = 0.0
        p = 1.0
        e2 = 0
        extra = 0.0
        for j in range(d):
            pc = prec_chol[k, j]
            prec = pc * pc
            mu = means[k, j] - shift[j]
            rhs_t[k, j] = prec
            rhs_t[k, d + j] = -2.0 * mu * prec
            bk += mu * mu * prec
            if logdet is None:
                if pc >= 1e-100 and pc <= 1e100:
                    p *= pc
                    if p > 1e100 or p < 1e-100:
                        p, e = math.frexp(p)
                        e2 += e
                else:
                    extra += np.log(pc)  # also propagates NaN
        rhs_t[k, 2 * d] = bk
        b[k] = 0.0
        s[k] = 1.0
        logw = np.log(weights[k]) if weights[k] > 0 else -np.inf
        if logdet is None:
            ld = np.log(p) + e2 * _LN2 + extra
        else:
            ld = logdet[k]
        const[k] = logw + ld - 0.5 * d * log_2pi
    return shift


@numba.njit(**_JIT)
def prepare_spherical(weights, means, prec_chol, log_2pi, rhs_t, b, s, const, shift_dt):
    """As :func:`prepare_diag` for ``spherical``: ``rhs_t = [-2 mu, 1, b]`` (K, D + 2),
    ``s = 1 / variance``."""  # pragma: no cover - compiled
    K, d = means.shape
    shift = _shift(weights, means, shift_dt)
    for k in range(K):
        bk = 0.0
        for j in range(d):
            mu = means[k, j] - shift[j]
            rhs_t[k, j] = -2.0 * mu
            bk += mu * mu
        rhs_t[k, d] = 1.0
        rhs_t[k, d + 1] = bk
        b[k] = 0.0
        pc = prec_chol[k]
        s[k] = pc * pc
        logw = np.log(weights[k]) if weights[k] > 0 else -np.inf
        const[k] = logw + d * np.log(pc) - 0.5 * d * log_2pi
    return shift


@numba.njit(**_JIT)
def centred_moments(S, n_used, kind, shift):
    """``(mass, mean, moment)`` in float64 from the first ``n_used`` blocks' raw sums ``S``
    (``diag``: kind 0, ``spherical``: 1; the centred moment per the layout of
    :mod:`online_gmm._math.state`). Components without mass get a zero mean (as merging into empty
    statistics gives). The blocks' sums are added in block order, row by row (the loops over
    the features vectorise)."""
    _, K, n_cols = S.shape
    d = shift.shape[0]
    mass = np.zeros(K)
    mean = np.zeros((K, d))
    moment = np.zeros((K, d)) if kind == 0 else np.zeros((K, 1))
    first = d if kind == 0 else 0
    s1 = np.empty(d)
    s2 = np.empty(d)
    for k in range(K):
        m = 0.0
        for blk in range(n_used):
            m += np.float64(S[blk, k, n_cols - 1])
        mass[k] = m
        if not m > 0:
            continue
        s1[:] = 0.0
        s2[:] = 0.0
        spherical_s2 = 0.0
        for blk in range(n_used):
            for j in range(d):
                s1[j] += np.float64(S[blk, k, first + j])
            if kind == 0:
                for j in range(d):
                    s2[j] += np.float64(S[blk, k, j])
            else:
                spherical_s2 += np.float64(S[blk, k, d])
        if kind == 0:
            for j in range(d):
                xb = s1[j] / m
                mean[k, j] = xb + shift[j]
                moment[k, j] = max(s2[j] - m * xb * xb, 0.0)
        else:
            sq_sum = 0.0
            for j in range(d):
                xb = s1[j] / m
                mean[k, j] = xb + shift[j]
                sq_sum += xb * xb
            moment[k, 0] = max(spherical_s2 - m * sq_sum, 0.0) / d
    return mass, mean, moment
