"""Numba kernel: the NumPy fast path of :func:`online_gmm._math.mstep.m_step` for ``diag`` and
``spherical``.

One pass over the components folds a batch's statistics into the state with forgetting
(the contract's M-step) and derives the parameters, instead of some thirty NumPy operations
on ``(K, D)`` arrays, each with its own temporary. Float64 throughout, the same formulas in
the same order as the generic code (sums of ``D`` or ``K`` terms are added sequentially
instead of pairwise: a difference of rounding only). Every output is a new array: the old
state's arrays are read, never written, and never returned.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True, error_model="numpy")
def forgetting_m_step(kind, rho, rho_time, reg_covar, mass_b, mean_b, moment_b, weights, means,
                      covariances, mass, nu, moment):  # pragma: no cover - compiled
    """``(weights, means, covariances, prec_chol, mass, nu, moment, positive)``: the new
    state's arrays from the old state (``weights`` .. ``moment``) and the batch statistics
    (``mass_b``, ``mean_b``, ``moment_b``).

    ``kind``: 0 ``diag`` (``covariances``, ``moment``, ``moment_b`` are (K, D)), 1
    ``spherical`` (the same as (K, 1) columns). ``rho`` (K,): the evidence each component
    keeps, ``rho_time`` the weights' factor (:func:`online_gmm._math.mstep.forgetting_factors`).
    Components whose new mass is not positive keep
    their covariance; when the total weight mass is not positive the weights are kept.
    ``positive`` is False when a covariance is not positive (the caller raises).
    """
    K, d = means.shape
    n_cov = covariances.shape[1]
    new_weights = np.empty(K)
    new_means = np.empty((K, d))
    new_cov = np.empty((K, n_cov))
    prec_chol = np.empty((K, n_cov))
    new_mass = np.empty(K)
    new_nu = np.empty(K)
    new_moment = np.empty((K, n_cov))
    nu_total = 0.0
    positive = True
    for k in range(K):
        m = mass_b[k]
        rho_k = rho[k]
        n_old = mass[k]
        n_new = rho_k * n_old + m
        has = n_new > 0
        safe = n_new if has else 1.0
        got = m > 0
        step = m / safe if got else 0.0
        coef = rho_k * n_old * (m / safe) if got else 0.0  # (m / safe <= 1: no overflow)
        sq = 0.0
        for j in range(d):
            dj = mean_b[k, j] - means[k, j]
            new_means[k, j] = means[k, j] + dj * step
            if kind == 0:
                new_moment[k, j] = rho_k * moment[k, j] + moment_b[k, j] + coef * dj * dj
            else:
                sq += dj * dj
        if kind == 1:
            new_moment[k, 0] = rho_k * moment[k, 0] + moment_b[k, 0] + coef * sq / d
        for j in range(n_cov):
            c = new_moment[k, j] / safe + reg_covar if has else covariances[k, j]
            new_cov[k, j] = c
            if c <= 0.0:
                positive = False
            prec_chol[k, j] = 1.0 / np.sqrt(c)
        new_mass[k] = n_new
        nu_k = rho_time * nu[k] + m
        new_nu[k] = nu_k
        nu_total += nu_k
    for k in range(K):
        new_weights[k] = new_nu[k] / nu_total if nu_total > 0 else weights[k]
    return new_weights, new_means, new_cov, prec_chol, new_mass, new_nu, new_moment, positive
