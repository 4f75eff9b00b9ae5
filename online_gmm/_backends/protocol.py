"""The interface of a backend (:class:`~online_gmm._backends.reference.ReferenceBackend`,
:class:`~online_gmm._backends.numba_backend.NumbaBackend`): the operations the math and the
steps ask of the arrays' implementation. :func:`online_gmm._backends.select_backend` returns
one; the tests check both classes against it."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Backend(Protocol):
    """The operations whose implementation depends on where the arrays live."""

    name: str
    xp: Any  # the arrays' namespace

    def spd_upper_factor(self, covariances: Any) -> Any: ...

    def precision_cholesky(self, covariances: Any, covariance_type: str) -> Any: ...

    def chunk_itemsize(self, X: Any) -> int: ...

    def blas_threads(self, work: int) -> Any: ...

    def finish(self, G: Any, a: Any, p: Any, inv_temp: float, softmax: bool = True) -> tuple:
        ...

    def soften(self, L: Any, inv_temp: float) -> tuple: ...

    def batch_statistics(self, X: Any, w: Any, p: Any, inv_temp: float,
                         plan: Any = None, on_log_density: Any = None) -> Any: ...

    def state_statistics(self, state: Any, covariance_type: str, X: Any, w: Any,
                         inv_temp: float, plan: Any = None,
                         on_log_density: Any = None) -> Any: ...

    def step_plan(self, X: Any, n_components: int, covariance_type: str) -> tuple: ...

    def m_step(self, state: Any, stats: Any, *, eta: float, forgetting: str,
               covariance_type: str, reg_covar: float, consume: bool = False) -> Any: ...

    def all_finite(self, *arrays: Any) -> bool: ...
