"""The E-step: log-densities, tempered responsibilities, and a batch's sufficient statistics.

Written once against the array API (``backend.xp``); what differs between the backends is
how a chunk's log-densities are finished (``backend.finish``: the numba row kernel or the
array-API softmax below) and how many rows a chunk holds. Every function works chunk by
chunk, so the working memory is bounded by scikit-learn's ``working_memory``, not the batch.

Numerics: all quadratic forms are taken on data shifted by the mixture mean (so an offset of
1e8 does not cancel), squared distances are clipped at zero, the softmax is a log-sum-exp, and
the chunks' statistics are additive sums of the shifted rows (the type's ``chunk_sums``,
in the data's dtype or float64), added up in place and turned into float64 centred moments
once per batch (``sums_moments``).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import array_api_compat
import numpy as np
from array_api_compat import is_numpy_namespace

from .array_api import LOG_2PI, chunk_rows, device, logsumexp
from .covariance import covariance
from .state import BatchStats, empty_stats


@dataclass(frozen=True)
class Prepared:
    """Parameters laid out for the quadratic forms, in the data's dtype and device."""

    covariance_type: str
    shift: Any  # (D,) float64: the mixture mean
    shift_dt: Any  # (D,) data dtype
    mu_c: Any  # (K, D) means minus shift (None unless the type's E_STEP_NEEDS "means")
    prec_chol: Any  # the precision factors (None unless it needs "factors")
    const: Any  # (K,) log pi_k + log|U_k| - D/2 log 2 pi (-inf for weightless components;
    #             the variational mixture's expected log-weights in place of log pi_k)
    rhs: Any  # right-hand side of the one big matmul (or None for full)
    b: Any  # (K,)
    s: Any  # (K,)

    @property
    def n_components(self) -> int:
        return self.const.shape[0]


def prepare(weights, means, prec_chol, covariance_type: str, dtype, xp,
            log_weights=None) -> Prepared:
    """Precompute the per-component pieces once per batch (``O(K D)`` or ``O(K D^2)``).

    ``log_weights`` (K,), float64: what the E-step adds to each component's log-density in
    place of ``log(weights)`` (the variational mixture's expected log-weights and Wishart
    terms, :mod:`online_gmm._math.variational`); ``weights`` then only centre the data.
    """
    cov = covariance(covariance_type)
    n_features = means.shape[1]
    shift = weights @ means / xp.sum(weights)
    mu_c64 = means - shift
    if log_weights is not None:
        logw = log_weights
    else:
        with _quiet_log(xp):
            logw = xp.log(weights)
    const64 = logw + cov.log_det_cholesky(prec_chol, n_features, xp)
    const64 = const64 - 0.5 * n_features * LOG_2PI
    # float64 arithmetic, one rounding to the data's dtype at the end (as the numba
    # backend's layout kernels compute the same values)
    rhs, b, s = cov.layout(mu_c64, prec_chol, dtype, xp)
    return Prepared(
        covariance_type,
        shift,
        xp.astype(shift, dtype),
        xp.astype(mu_c64, dtype) if "means" in cov.E_STEP_NEEDS else None,
        xp.astype(prec_chol, dtype) if "factors" in cov.E_STEP_NEEDS else None,
        xp.astype(const64, dtype),
        rhs,
        b,
        s,
    )


def _quiet_log(xp):
    """NumPy's divide warning off for ``log(0) = -inf`` (other libraries do not warn; a
    plain context there, which ``torch.compile`` traces through)."""
    if is_numpy_namespace(xp):
        return np.errstate(divide="ignore")
    return contextlib.nullcontext()


def state_prepared(state, covariance_type: str, dtype, xp) -> Prepared:
    """:func:`prepare` of a :class:`~online_gmm._math.state.MixtureState`."""
    return prepare(state.weights, state.means, state.precisions_cholesky, covariance_type,
                   dtype, xp)


def quadratic_pieces(Xc, p: Prepared, xp):
    """``(G, a)`` with the squared Mahalanobis distance ``q = max(a[:, None] + G + b, 0)``."""
    return covariance(p.covariance_type).quadratic_pieces(Xc, p, xp)


def finish(G, a, p: Prepared, inv_temp: float, xp, softmax: bool = True):
    """Responsibilities (or log-densities) and the T = 1 log-likelihood of each row: the
    array-API reference of ``backend.finish``."""
    q = xp.maximum(a[:, None] + G + p.b, xp.zeros_like(G))
    logp = p.const - 0.5 * p.s * q
    if not softmax:
        return logp, None
    return soften(logp, inv_temp, xp)


def soften(logp, inv_temp: float, xp):
    """``(resp, ll)`` of a chunk's log-densities ``logp`` (n, K): the responsibilities at
    temperature ``1 / inv_temp`` and each row's T = 1 log-likelihood."""
    ll = logsumexp(logp, xp, axis=1)
    if inv_temp == 1.0:
        return xp.exp(logp - ll[:, None]), ll
    lt = logp * inv_temp
    return xp.exp(lt - logsumexp(lt, xp, axis=1)[:, None]), ll


def _chunks(n_samples: int, n_components: int, n_features: int, itemsize: int,
            covariance_type: str = "diag", working_memory: float | None = None):
    """Row slices of chunks whose working set fits ``working_memory`` MiB (None:
    scikit-learn's ``working_memory``)."""
    row_bytes = covariance(covariance_type).row_bytes(n_components, n_features, itemsize)
    step = chunk_rows(n_samples, row_bytes, working_memory)
    for start in range(0, n_samples, step):
        yield slice(start, min(start + step, n_samples))


def _pieces(X, p: Prepared, backend):
    """``(slice, Xc, G, a)`` of every chunk of ``X``."""
    n, d = X.shape
    K = p.n_components
    for sl in _chunks(n, K, d, backend.chunk_itemsize(X), p.covariance_type,
                      getattr(backend, "working_memory", None)):
        Xc = X[sl, ...] - p.shift_dt
        G, a = quadratic_pieces(Xc, p, backend.xp)
        yield sl, Xc, G, a
        del Xc, G, a  # (not held while the next chunk's are made)


def posterior(X, p: Prepared, backend, inv_temp: float = 1.0):
    """``(resp, log_likelihood)`` of every row, in the data's dtype."""
    n, d = X.shape
    xp = backend.xp
    resp_parts, ll_parts = [], []
    with backend.blas_threads(n * p.n_components * d):
        for _, _, G, a in _pieces(X, p, backend):
            r, ll = backend.finish(G, a, p, inv_temp)
            resp_parts.append(r)
            ll_parts.append(ll)
    if len(resp_parts) == 1:
        return resp_parts[0], ll_parts[0]
    return xp.concat(resp_parts, axis=0), xp.concat(ll_parts, axis=0)


def responsibility_chunks(X, p: Prepared, backend):
    """``(slice, resp)`` of every chunk of ``X`` at T = 1 (the working memory of one
    chunk, not of the batch)."""
    for sl, _, G, a in _pieces(X, p, backend):
        yield sl, backend.finish(G, a, p, 1.0)[0]


def weighted_log_density(X, p: Prepared, backend):
    """``log pi_k + log N(x_n | mu_k, Sigma_k)`` for every row and component."""
    n, d = X.shape
    parts = []
    with backend.blas_threads(n * p.n_components * d):
        for _, _, G, a in _pieces(X, p, backend):
            parts.append(backend.finish(G, a, p, 1.0, softmax=False)[0])
    return parts[0] if len(parts) == 1 else backend.xp.concat(parts, axis=0)


def chunked_statistics(X, w, p: Prepared, inv_temp: float, backend,
                       on_log_density: Any = None) -> BatchStats:
    """E-step at temperature ``1 / inv_temp`` and the batch's weighted sufficient statistics,
    chunk by chunk (each chunk's sums added to the first's in place, so the statistics'
    memory is one chunk's, whatever the number of chunks).

    ``w`` is the (n,) sample weight in the data's dtype. The returned masses, means and
    centred moments are float64; the log-likelihood is taken at T = 1.
    ``on_log_density(rows, logp)``: called with each chunk's rows (a slice) and their
    weighted log-densities ``log pi_k + log N(x | mu_k, Sigma_k)`` (n_chunk, K), before the
    responsibilities are formed from them (in place: copy what you keep), so a caller gets
    them from this E-step instead of a second one.
    """
    return _chunked(X, w, p, inv_temp, backend, entropy=False,
                    on_log_density=on_log_density)[0]


def state_statistics(state, covariance_type: str, X, w, inv_temp: float, backend,
                     on_log_density: Any = None) -> BatchStats:
    """:func:`chunked_statistics` of the state's own layout, which goes (the data-dtype
    copies of the means and factors) before the sums are made into moments: a large
    mixture's step holds one of the two at a time."""
    total, _, layout = _accumulate(
        X, w, state_prepared(state, covariance_type, X.dtype, backend.xp), inv_temp,
        backend, False, on_log_density)
    return _stats(total, X, layout, backend.xp)


def statistics_and_entropy(X, w, p: Prepared, backend,
                           inv_temp: float = 1.0) -> tuple[BatchStats, float]:
    """:func:`chunked_statistics` (at T = 1 unless ``inv_temp`` says otherwise) and the
    responsibilities' weighted entropy,
    ``-sum_n w_n sum_k r_nk log r_nk`` (float; what the variational mixture's evidence lower
    bound adds to its posterior's terms, :func:`online_gmm._math.variational.lower_bound`)."""
    return _chunked(X, w, p, inv_temp, backend, entropy=True)


def _chunked(X, w, p: Prepared, inv_temp: float, backend, entropy: bool,
             on_log_density: Any = None) -> tuple:
    total, h, layout = _accumulate(X, w, p, inv_temp, backend, entropy, on_log_density)
    return _stats(total, X, layout, backend.xp), h


def _accumulate(X, w, p: Prepared, inv_temp: float, backend, entropy: bool,
                on_log_density: Any) -> tuple:
    """``(sums, entropy, (covariance type, shift, K, centre))``: the E-step's chunks'
    additive sums (:func:`_add_chunk`: float64 totals, each chunk's sums added in place: one
    chunk's memory whatever the number of chunks), or None for no rows."""
    n, d = X.shape
    xp = backend.xp
    cov = covariance(p.covariance_type)
    total = None
    h = 0.0
    with backend.blas_threads(n * p.n_components * d):
        for sl, Xc, G, a in _pieces(X, p, backend):
            if on_log_density is None:
                R, ll = backend.finish(G, a, p, inv_temp)
            else:
                logp = backend.finish(G, a, p, 1.0, softmax=False)[0]
                on_log_density(sl, logp)
                R, ll = backend.soften(logp, inv_temp)  # (the rows' softmax of finish)
                del logp
            total = _add_chunk(total, Xc, w[sl], R, ll, cov, p.mu_c, xp)
            if entropy:
                R64 = xp.astype(R, xp.float64)
                r_log_r = xp.where(R64 > 0, R64 * xp.log(xp.where(R64 > 0, R64, 1.0)), 0.0)
                h -= float(xp.sum(xp.astype(w[sl], xp.float64) * xp.sum(r_log_r, axis=1)))
                del R64, r_log_r
            del Xc, G, a, R  # (a chunk's arrays go before the next chunk's are made)
    return total, h, _layout(p)


def chunk_statistics(Xc, w, R, ll, p: Prepared, xp) -> BatchStats:
    """One chunk's :class:`BatchStats` from its shifted rows and responsibilities."""
    cov = covariance(p.covariance_type)
    return _stats(_add_chunk(None, Xc, w, R, ll, cov, p.mu_c, xp), Xc, _layout(p), xp)


def responsibility_statistics(X, w, R, covariance_type: str, xp) -> BatchStats:
    """The :class:`BatchStats` of rows ``X`` (n, D) with weights ``w`` (n,) under given
    responsibilities ``R`` (n, K) (an initialisation's, as scikit-learn's ``_initialize``
    takes them); no log-likelihood."""
    shift = xp.mean(xp.astype(X, xp.float64), axis=0)
    Xc = X - xp.astype(shift, X.dtype)
    cov = covariance(covariance_type)  # (centred on the batch's own means: one chunk)
    return _stats(_add_chunk(None, Xc, w, xp.astype(R, X.dtype), None, cov, None, xp), X,
                  (covariance_type, shift, R.shape[1], None), xp)


def _layout(p: Prepared) -> tuple:
    """What :func:`_stats` needs of ``p`` (not ``p``, whose layout can then go):
    ``(covariance type, shift, K, centre)``."""
    return p.covariance_type, p.shift, p.n_components, p.mu_c


def _add_chunk(total: list | None, Xc, w, R, ll, cov, centre, xp) -> list:
    """``total`` (None: the first chunk's, made here) plus a chunk's additive sums,
    ``[mass, weight, loglik, *the type's chunk_sums]``, in float64, added in place
    (``centre``: the E-step's (K, D) means about the shift, or None; see ``chunk_sums``).

    A large mixture's sums are made a block of components at a time
    (:func:`_component_blocks`) and each added to its total before the next is made: one
    chunk holds a block's sums, not a (K, D) array beside the totals. The same sums as the
    whole chunk's, to the products' rounding (a block's product may sum in another order)."""
    f64 = xp.float64
    w64 = xp.astype(w, f64)
    mass = xp.astype(w @ R, f64)
    weight = xp.sum(w64)
    loglik = 0.0 if ll is None else xp.sum(w64 * xp.astype(ll, f64))
    if total is None:
        total = [mass, weight, loglik]
    else:  # (0-d arrays and floats, and a (K,) vector: nothing to gain in place)
        total[0], total[1], total[2] = total[0] + mass, total[1] + weight, total[2] + loglik
    wX = Xc * w[:, None]
    K = R.shape[1]
    for blk in _component_blocks(cov, K, Xc.shape[1]):
        sums = cov.chunk_sums(Xc, w, wX, R[:, blk], None if centre is None else centre[blk, ...],
                              xp)
        for i, value in enumerate(sums):
            if len(total) == 3 + i:  # (the first chunk's first block: the totals made)
                shape = value.shape if blk == _WHOLE else (K, *value.shape[1:])
                total.append(xp.zeros(shape, dtype=f64, device=device(value)))
            _add_into(total[3 + i][blk, ...], value)
        del sums, value  # (a block's sums go before the next block's are made)
    return total


#: The one block of :func:`_component_blocks` when the sums are not split.
_WHOLE = slice(None)

#: Blocks of components a large mixture's chunk sums are made in (a fixed number: the
#: operations of a step do not grow with K; a block's sums are 1 / 8 of the totals), and
#: the size of the (K, D) sums, in entries, from which they are split.
_SUM_BLOCKS = 8
_SPLIT_FROM = 2**20


def _component_blocks(cov, n_components: int, n_features: int) -> list:
    """Slices of the components whose chunk sums are made together: all of them (one
    block) for a small mixture and for a type with sums over all components (``tied``)."""
    if not cov.SUMS_PER_COMPONENT or n_components * n_features < _SPLIT_FROM:
        return [_WHOLE]
    step = -(-n_components // _SUM_BLOCKS)
    return [slice(k, min(k + step, n_components)) for k in range(0, n_components, step)]


def _add_into(target, value) -> None:
    """``target += value`` in place (``target``: a float64 view of a total). A float32
    ``value`` on the CPU is added in row blocks: PyTorch's CPU path casts an operand of
    another dtype by a temporary copy of it first. On an accelerator the kernel casts as it
    reads (no copy), so it is one op there: each op is a kernel launch."""
    if value.dtype == target.dtype or _on_accelerator(value):
        target += value
        return
    n = value.shape[0]
    step = -(-n // _MIXED_ADD_BLOCKS)
    for start in range(0, n, step):
        stop = min(start + step, n)
        # (a slice is a writeable view in NumPy, PyTorch, CuPy and array-api-strict: adding
        # to it adds to the total; tested for each but CuPy)
        block = target[start:stop, ...]
        block += value[start:stop, ...]


def _on_accelerator(x) -> bool:
    """Whether ``x`` is a PyTorch tensor off the CPU or a CuPy array."""
    if array_api_compat.is_torch_array(x):
        return x.device.type != "cpu"
    return array_api_compat.is_cupy_array(x)


#: Row blocks of a mixed-dtype in-place add (a fixed number: the operations of a step do
#: not grow with K; the temporary is 1 / 8 of a sum's size).
_MIXED_ADD_BLOCKS = 8


def _stats(total: list | None, X, layout: tuple, xp) -> BatchStats:
    """The :class:`BatchStats` of the rows ``X`` from their summed chunk sums (``total``,
    emptied here; None: no rows): float64 masses, means about the origin and centred
    moments (a component without mass has mean 0, as the numba backend's). ``layout``:
    ``(covariance type, shift, K, centre)``."""
    covariance_type, shift, n_components, centre = layout
    if total is None:
        return empty_stats(n_components, X.shape[1], covariance_type, xp, device(X))
    m, weight, loglik, *sums = total
    total.clear()  # (the sums go as soon as the moments are made from them)
    safe = xp.where(m > 0, m, xp.ones_like(m))
    xbc, Mb = covariance(covariance_type).sums_moments(tuple(sums), m, safe, centre, xp)
    del sums
    xbc += shift  # (sums_moments' arrays are its own: the means made in place)
    xbc *= xp.astype(m > 0, xp.float64)[:, None]
    if is_numpy_namespace(xp):  # host floats; elsewhere 0-d arrays on the device (a float
        weight, loglik = float(weight), float(loglik)  # would be a host read per chunk)
    return BatchStats(mass=m, mean=xbc, moment=Mb, weight=weight, loglik=loglik,
                      n_samples=int(X.shape[0]))
