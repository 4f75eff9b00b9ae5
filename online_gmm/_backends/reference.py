"""The reference backend: the array-API code, on any namespace and device.

A backend is the one object a step, a prediction or a seeding asks for what may run fast:
the precision factors, the finishing of a chunk's log-densities, a batch's statistics, the
M-step, the finiteness check, the BLAS setting. :class:`ReferenceBackend` answers every one
with the array-API code (NumPy, PyTorch on CPU or CUDA, CuPy, array-api-strict);
:class:`online_gmm._backends.numba_backend.NumbaBackend` overrides them for host NumPy arrays, and
each of its operations is tested against this one. :func:`online_gmm._backends.select_backend`
chooses between them.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any

from .._math import estep as _estep
from .._math import mstep as _mstep
from .._math.array_api import device
from .._math.covariance import PD_MSG, covariance
from .._math.state import BatchStats, MixtureState


class ReferenceBackend:
    """The array-API implementation of every backend operation.

    Parameters
    ----------
    xp : module
        The array namespace (``array_api_compat``'s wrapper of the data's library).
    defer_checks : bool, default=False
        Check nothing that would read device data on the host: the precision factors of a
        covariance that is not positive definite come out NaN or inf instead of raising,
        and :func:`online_gmm._em.online.advance` returns the new state's finiteness as a
        device flag (``StepInfo.nonfinite``) instead of raising. For a caller that reads one
        fused flag per step (the PyTorch bridge on a GPU): every host read stalls a device.
    working_memory : float or None, default=None
        MiB an E-step chunk may use (None: scikit-learn's ``working_memory``, read at each
        chunk plan): a caller whose memory is bounded by its own state sets it, and its
        step then reads no scikit-learn configuration (which ``torch.compile`` cannot
        trace).
    """

    name = "reference"

    def __init__(self, xp: Any, defer_checks: bool = False,
                 working_memory: float | None = None) -> None:
        self.xp = xp
        self.defer_checks = bool(defer_checks)
        self.working_memory = working_memory

    def __repr__(self) -> str:
        return f"{type(self).__name__}({getattr(self.xp, '__name__', self.xp)!r})"

    # ------------------------------------------------------------------ linear algebra
    def spd_upper_factor(self, covariances: Any) -> Any:
        """Upper-triangular precision factors ``inv(L).T`` of one SPD matrix (D, D) or a
        stack (K, D, D), ``L`` the lower Cholesky factor; ``ValueError`` if not SPD."""
        xp = self.xp
        if self.defer_checks and _is_torch(covariances):
            return _torch_upper_factor_unchecked(covariances)
        try:
            chol = xp.linalg.cholesky(covariances)
        except Exception as exc:  # torch raises its own LinAlgError
            raise ValueError(PD_MSG) from exc
        if not bool(xp.all(xp.isfinite(chol))):
            raise ValueError(PD_MSG)
        d = covariances.shape[-1]
        eye = xp.eye(d, dtype=covariances.dtype, device=device(covariances))
        if covariances.ndim == 2:
            return xp.linalg.solve(chol, eye).T
        inv = xp.linalg.solve(chol, xp.broadcast_to(eye, covariances.shape))
        return xp.permute_dims(inv, (0, 2, 1))

    def precision_cholesky(self, covariances: Any, covariance_type: str) -> Any:
        """The covariance type's precision factors (see :mod:`online_gmm._math.covariance`)."""
        return covariance(covariance_type).precision_cholesky(
            covariances, self.xp, self.spd_upper_factor, check=not self.defer_checks
        )

    # ------------------------------------------------------------------ the E-step
    def chunk_itemsize(self, X: Any) -> int:
        """Bytes per entry the chunk sizes are planned with (float64 temporaries here)."""
        return 8

    def blas_threads(self, work: int) -> Any:
        """The BLAS setting for ``work`` multiply-adds: the library's own here."""
        return contextlib.nullcontext()

    def finish(self, G: Any, a: Any, p: Any, inv_temp: float, softmax: bool = True) -> tuple:
        """``(resp or log-density, T = 1 log-likelihood or None)`` of a chunk's pieces (a
        PyTorch chunk without gradient in place, the others by the array-API reference)."""
        if _is_torch(G) and not G.requires_grad:
            return _finish_torch_inplace(G, a, p, inv_temp, softmax)
        return _estep.finish(G, a, p, inv_temp, self.xp, softmax)

    def soften(self, L: Any, inv_temp: float) -> tuple:
        """``(resp, ll)``: the responsibilities at temperature ``1 / inv_temp`` of rows of
        weighted log-densities ``L`` (n, K) and each row's T = 1 log-likelihood
        (:func:`~online_gmm._math.estep.soften`; new arrays)."""
        return _estep.soften(L, inv_temp, self.xp)

    def batch_statistics(self, X: Any, w: Any, p: Any, inv_temp: float,
                         plan: Any = None, on_log_density: Any = None) -> BatchStats:
        """A batch's statistics from laid-out parameters (:class:`~online_gmm._math.estep.
        Prepared`): the E-step at ``1 / inv_temp`` and the weighted sums (``plan``: as for
        :meth:`state_statistics`; ``on_log_density(rows, logp)``: handed the E-step's
        weighted log-densities, as :func:`~online_gmm._math.estep.chunked_statistics`)."""
        return _estep.chunked_statistics(X, w, p, inv_temp, self, on_log_density)

    def state_statistics(self, state: MixtureState, covariance_type: str, X: Any, w: Any,
                         inv_temp: float, plan: Any = None,
                         on_log_density: Any = None) -> BatchStats:
        """The same from the state (the parameters laid out here)."""
        return _estep.state_statistics(state, covariance_type, X, w, inv_temp, self,
                                       on_log_density)

    def step_plan(self, X: Any, n_components: int, covariance_type: str) -> tuple:
        """``(context, plan)``: the BLAS setting a whole step on ``X`` runs under, and the
        plan its statistics follow (``None`` here)."""
        return contextlib.nullcontext(), None

    # ------------------------------------------------------------------ the M-step
    def m_step(self, state: MixtureState, stats: BatchStats, *, eta: float, forgetting: str,
               covariance_type: str, reg_covar: float, consume: bool = False) -> MixtureState:
        """:func:`online_gmm._math.mstep.m_step` (``consume``: made in ``stats``' arrays)."""
        return _mstep.m_step(state, stats, eta=eta, forgetting=forgetting,
                             covariance_type=covariance_type, reg_covar=reg_covar,
                             backend=self, consume=consume)

    # ------------------------------------------------------------------ checks
    def all_finite(self, *arrays: Any) -> bool:
        """Whether every entry of the arrays is finite (one host read for all of them)."""
        return bool(self.finite_flag(*arrays))

    def finite_flag(self, *arrays: Any) -> Any:
        """A 0-d boolean array on the arrays' device: whether every entry of every array is
        finite (read nothing: the caller decides when to bring it to the host)."""
        xp = self.xp
        flags = [_finite(a, xp) for a in arrays]
        return flags[0] if len(flags) == 1 else xp.all(xp.stack(flags))


def _finite(a: Any, xp: Any) -> Any:
    """Whether every entry of ``a`` is finite, as a 0-d array: its largest and smallest
    entries are (two reductions, NaN propagating: no temporary of ``a``'s size, where
    ``isfinite`` makes one, and PyTorch's two)."""
    if math.prod(a.shape) == 0 or not xp.isdtype(a.dtype, "real floating"):
        return xp.all(xp.isfinite(a))
    return xp.all(xp.isfinite(xp.stack([xp.max(a), xp.min(a)])))


def _is_torch(x) -> bool:
    import array_api_compat

    return array_api_compat.is_torch_array(x)


def _torch_upper_factor_unchecked(covariances):
    """:meth:`ReferenceBackend.spd_upper_factor` without a host read: ``cholesky_ex`` (no
    error check) and a batched triangular solve; a matrix that is not positive definite
    gets a NaN factor (caught by the step's one finiteness flag)."""
    import torch

    chol, info = torch.linalg.cholesky_ex(covariances)
    bad = info != 0
    chol = torch.where(bad[..., None, None], torch.full_like(chol, float("nan")), chol)
    eye = torch.eye(covariances.shape[-1], dtype=covariances.dtype,
                    device=covariances.device).expand_as(covariances)
    inv = torch.linalg.solve_triangular(chol, eye, upper=False)
    return inv.transpose(-1, -2)


def _finish_torch_inplace(G, a, p: Any, inv_temp: float, softmax: bool):
    """PyTorch (CUDA) specialisation of :func:`finish`: the same math, in place on ``G``
    with fused reductions, so no (n, K) temporary is allocated."""
    import torch

    logp = G.add_(a[:, None]).add_(p.b).clamp_(min=0).mul_(-0.5 * p.s).add_(p.const)
    if not softmax:
        return logp, None
    ll = torch.logsumexp(logp, dim=1)
    if inv_temp == 1.0:
        return logp.sub_(ll[:, None]).exp_(), ll
    logp.mul_(inv_temp)
    return logp.sub_(torch.logsumexp(logp, dim=1)[:, None]).exp_(), ll
