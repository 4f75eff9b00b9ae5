"""The numba backend: the reference's operations for host NumPy arrays, compiled.

:class:`NumbaBackend` overrides the :class:`~online_gmm._reference.ReferenceBackend`
operations that have a fast form, and nothing else:

- statistics: the types with a block kernel (``KERNEL_KIND`` not None) run
  block-parallel (:mod:`online_gmm._blocked`); ``full`` runs chunk by chunk with BLAS and
  the numba row kernel;
- ``finish``: the row kernel (:func:`online_gmm._kernels.tempered_posterior`);
- the M-step of ``diag``/``spherical``: one kernel (:mod:`online_gmm._mstep_kernels`);
- precision factors: one batched LAPACK call for a stack of matrices;
- the finiteness check: one vectorised pass; the BLAS setting: one thread for small work.

Each is tested against the reference (``tests/test_backends.py`` and the tests named there).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _blocked, _kernels, _mstep_kernels
from ._array_api import blas_threads_for
from ._covariance import PD_MSG, covariance
from ._estep import chunked_statistics
from ._mstep import forgetting_factors
from ._reference import ReferenceBackend
from ._stats import BatchStats, MixtureState

#: The kernel kinds the M-step kernel computes (``diag``, ``spherical``).
MSTEP_KINDS = (_kernels.DIAG, _kernels.SPHERICAL)


class NumbaBackend(ReferenceBackend):
    """The numba CPU implementation of the backend operations (NumPy arrays only)."""

    name = "numba"

    # ------------------------------------------------------------------ linear algebra
    def spd_upper_factor(self, covariances: np.ndarray) -> np.ndarray:
        """The upper-triangular precision factors ``inv(L).T`` of ``covariances`` (D, D) or
        (K, D, D): LAPACK's ``potrf``, then a solve against the identity, on each matrix in
        one C loop over the stack (NumPy's ``linalg`` gufuncs; no Python loop)."""
        try:
            chol = np.linalg.cholesky(covariances)
        except np.linalg.LinAlgError as exc:
            raise ValueError(PD_MSG) from exc
        if not np.isfinite(chol).all():  # NaN input passes potrf in some LAPACKs
            raise ValueError(PD_MSG)
        d = covariances.shape[-1]
        inv = np.linalg.solve(chol, np.broadcast_to(np.eye(d), covariances.shape))
        # (solve's LU of a triangular matrix may pivot: its rounding above the diagonal goes)
        return np.triu(np.swapaxes(inv, -1, -2))

    # ------------------------------------------------------------------ the E-step
    def chunk_itemsize(self, X: np.ndarray) -> int:
        return X.dtype.itemsize

    def blas_threads(self, work: int) -> Any:
        return blas_threads_for(work)

    def finish(self, G, a, p, inv_temp: float, softmax: bool = True) -> tuple:
        G = np.ascontiguousarray(G)
        if not softmax:
            _kernels.log_density(G, a, p.b, p.s, p.const)
            return G, None
        ll = np.empty(G.shape[0], dtype=G.dtype)
        _kernels.tempered_posterior(G, a, p.b, p.s, p.const, float(inv_temp), ll)
        return G, ll

    def batch_statistics(self, X, w, p, inv_temp: float, plan=None) -> BatchStats:
        if _blocked.kernel_kind(p.covariance_type) is None:
            return chunked_statistics(X, w, p, inv_temp, self)
        return _blocked.batch_statistics(X, w, p, inv_temp, plan)

    def state_statistics(self, state, covariance_type: str, X, w, inv_temp: float,
                         plan=None) -> BatchStats:
        if _blocked.kernel_kind(covariance_type) is None:
            return super().state_statistics(state, covariance_type, X, w, inv_temp)
        return _blocked.state_statistics(state, covariance_type, X, w, inv_temp, plan)

    def step_plan(self, X: np.ndarray, n_components: int, covariance_type: str) -> tuple:
        """One BLAS setting for the whole step (idle BLAS threads woken by any product spin
        against the blocks' threads), and the block plan made once: it sets BLAS's threads
        here and the blocks in :mod:`online_gmm._blocked`."""
        n, d = X.shape
        plan = None
        work = n * n_components * d
        if _blocked.kernel_kind(covariance_type) is not None:
            itemsize = X.dtype.itemsize
            plan = _blocked.block_plan(n, n_components, d, itemsize)
            work = _blocked.blas_work(n, n_components, d, itemsize, plan=plan)
        return blas_threads_for(work), plan

    # ------------------------------------------------------------------ the M-step
    def m_step(self, state: MixtureState, stats: BatchStats, *, eta: float, forgetting: str,
               covariance_type: str, reg_covar: float) -> MixtureState:
        kind = covariance(covariance_type).KERNEL_KIND
        if kind not in MSTEP_KINDS or not _float64_numpy(state, stats):
            return super().m_step(state, stats, eta=eta, forgetting=forgetting,
                                  covariance_type=covariance_type, reg_covar=reg_covar)
        return _m_step_kernel(state, stats, eta, forgetting, kind, reg_covar)

    # ------------------------------------------------------------------ checks
    def all_finite(self, a: np.ndarray) -> bool:
        return _kernels.all_finite(a)


_STATE_ARRAYS = ("weights", "means", "covariances", "mass", "nu", "moment")


def _float64_numpy(state: MixtureState, stats: BatchStats) -> bool:
    """Whether every array the M-step kernel reads is a float64 NumPy array."""
    f64 = np.float64
    for a in (stats.mass, stats.mean, stats.moment, *(getattr(state, n) for n in _STATE_ARRAYS)):
        if type(a) is not np.ndarray or a.dtype != f64:
            return False
    return True


def _m_step_kernel(state: MixtureState, stats: BatchStats, eta: float, forgetting: str,
                   kind: int, reg_covar: float) -> MixtureState:
    """:func:`online_gmm._mstep.m_step` for float64 NumPy ``diag``/``spherical``: the
    forgetting factors as there, the rest in one numba call
    (:func:`online_gmm._mstep_kernels.forgetting_m_step`): the same values, to rounding.
    Every returned array is new (none aliases ``state``'s) but ``tied_mass`` and ``seeded``,
    which the step does not change (as there)."""
    rho, rho_time = forgetting_factors(stats, eta, forgetting, np)
    K = state.means.shape[0]
    moment_b, covariances, moment = stats.moment, state.covariances, state.moment
    spherical = kind == _kernels.SPHERICAL
    if spherical:  # (K,) as (K, 1) columns
        moment_b, covariances, moment = (a.reshape(K, 1) for a in (moment_b, covariances,
                                                                    moment))
    weights, means, cov, prec_chol, mass, nu, moment, positive = (
        _mstep_kernels.forgetting_m_step(
            kind, rho, float(rho_time), float(reg_covar), stats.mass, stats.mean, moment_b,
            state.weights, state.means, covariances, state.mass, state.nu, moment,
        )
    )
    if not positive:
        raise ValueError(PD_MSG)
    if spherical:
        cov, prec_chol, moment = cov.reshape(K), prec_chol.reshape(K), moment.reshape(K)
    return MixtureState(  # (dataclasses.replace costs a few microseconds more)
        weights=weights,
        means=means,
        covariances=cov,
        precisions_cholesky=prec_chol,
        mass=mass,
        nu=nu,
        moment=moment,
        tied_mass=state.tied_mass,
        seeded=state.seeded,
    )
