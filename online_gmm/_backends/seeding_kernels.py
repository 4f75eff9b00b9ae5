"""The warm-up's seeding kernels (numba, NumPy rows): its restarts' greedy k-means++ and
Lloyd iterations, every restart in one call, a step at a time, so that one matrix product
per block of rows serves the candidates (or centres) of all of them.

The algorithms are :mod:`online_gmm._em.warmup`'s array-API versions (which any namespace
runs): the same uniforms, candidates, choices and float64 arithmetic (squared distances
``|c|^2 - 2 x.c + |x|^2`` of rows about their mean, floored at 0), so both pick the same
seeds and centres up to ties within rounding (the candidates' potentials are scored in
float32, the distances to the chosen seeds kept in float64). Rows go in fixed blocks of
:data:`BLOCK_ROWS`, whose sums are added in block order, and a centre's sums in row order:
the results do not depend on the number of threads.
"""

from __future__ import annotations

import numba
import numpy as np

_FASTMATH = {"nsz", "contract", "reassoc", "arcp"}
#: Rows of a block (one product per block and step).
BLOCK_ROWS = 256
#: Bound on a float32 squared distance's error, relative to ``|x|^2 + |c|^2`` (a float32
#: dot product of D terms errs by at most about ``D eps |x| |c|``; 1e-5 covers D = 64 ten
#: times over and larger D in practice, where the terms' signs cancel).
F32_MARGIN = 1e-5


@numba.njit(cache=True, nogil=True)
def _search(cs, value, last):  # pragma: no cover - compiled
    """The first index ``i`` with ``cs[i] > value`` (``searchsorted(side="right")``), at
    most ``last``."""
    lo, hi = 0, cs.shape[0]
    while lo < hi:
        mid = (lo + hi) // 2
        if cs[mid] > value:
            hi = mid
        else:
            lo = mid + 1
    return min(lo, last)


@numba.njit(cache=True, fastmath=_FASTMATH, nogil=True)
def _block_distances(X, xx, C, cc, lo, hi, out):  # pragma: no cover - compiled
    """``out[t, i - lo]``: the squared distance of row ``i`` (``lo <= i < hi``) of ``X`` to
    ``C[t]`` (norm form, floored at 0)."""
    G = np.dot(C, X[lo:hi].T)  # (T, rows): BLAS
    for t in range(C.shape[0]):
        for i in range(hi - lo):
            d = (cc[t] - 2.0 * G[t, i]) + xx[lo + i]
            out[t, i] = d if d > 0.0 else 0.0


@numba.njit(cache=True, fastmath=_FASTMATH, nogil=True)
def _rows_of(X, idx):  # pragma: no cover - compiled
    C = np.empty((idx.shape[0], X.shape[1]))
    for t in range(idx.shape[0]):
        C[t, :] = X[idx[t], :]
    return C


@numba.njit(cache=True, fastmath=_FASTMATH, nogil=True)
def _candidate_block(b, X32, xx32, w32, closest32, C, cc, T, part, D32):  # pragma: no cover
    """Row block ``b`` of :func:`_candidates`: ``part[b, k]`` the block's share of candidate
    ``k``'s potential (summed in float32, then float64), its distances into ``D32``."""
    n = X32.shape[0]
    lo = b * BLOCK_ROWS
    hi = min(lo + BLOCK_ROWS, n)
    G = np.dot(C, X32[lo:hi].T)  # (m, rows): BLAS, float32
    two = np.float32(2.0)
    wb = w32[lo:hi]
    xb = xx32[lo:hi]
    for k in range(C.shape[0]):
        c_k = cc[k]
        row = G[k]
        near = closest32[k // T, lo:hi]
        acc = np.float32(0.0)
        out = D32[k, lo:hi]
        for i in range(hi - lo):
            d = (c_k - two * row[i]) + xb[i]
            out[i] = d
            c = near[i]
            acc += wb[i] * (d if d < c else c)
        part[b, k] = np.float64(acc)


@numba.njit(cache=True, fastmath=_FASTMATH, nogil=True, parallel=True)
def _candidate_blocks_parallel(X32, xx32, w32, closest32, C, cc, T, part,
                               D32):  # pragma: no cover - compiled
    for b in numba.prange(part.shape[0]):
        _candidate_block(np.int64(b), X32, xx32, w32, closest32, C, cc, T, part, D32)


#: Below this many multiply-adds a step (candidates x rows x D), its blocks run on one
#: thread (a parallel region costs more than it gives there). Numba reads it when it
#: compiles: setting it at run time changes nothing.
MIN_PARALLEL_CANDIDATES = 2**21


@numba.njit(cache=True, fastmath=_FASTMATH, nogil=True)
def _candidates(X32, xx32, w32, closest32, idx, T, pot, D32):  # pragma: no cover - compiled
    """``pot[k]``: the potential with candidate row ``idx[k]`` added to the seeds of its
    restart (``k // T``), ``sum w min(closest, d)``, in float32 (``X32``, ``xx32``, ``w32``,
    ``closest32``: the rows, their squared norms, weights and distances to their nearest
    seed in float32), each block's sum added in float64 in block order; ``D32[k]`` the
    distances. The row blocks run in parallel for large work (their sums are added after,
    in block order: the result does not depend on the threads)."""
    n = X32.shape[0]
    m = idx.shape[0]
    C = np.empty((m, X32.shape[1]), dtype=np.float32)
    cc = np.empty(m, dtype=np.float32)
    for k in range(m):
        C[k, :] = X32[idx[k], :]
        cc[k] = xx32[idx[k]]
    n_blocks = (n + BLOCK_ROWS - 1) // BLOCK_ROWS
    part = np.empty((n_blocks, m))
    if n_blocks > 1 and m * n * X32.shape[1] >= MIN_PARALLEL_CANDIDATES:
        _candidate_blocks_parallel(X32, xx32, w32, closest32, C, cc, T, part, D32)
    else:
        for b in range(n_blocks):
            _candidate_block(np.int64(b), X32, xx32, w32, closest32, C, cc, T, part, D32)
    pot[:] = 0.0
    for b in range(n_blocks):  # (blocks outside: each potential's additions in block order)
        for k in range(m):
            pot[k] += part[b, k]


@numba.njit(cache=True, fastmath=_FASTMATH, nogil=True)
def _distances(X, xx, c, out):  # pragma: no cover - compiled
    """``out[i]``: the squared distance (float64) of row ``i`` of ``X`` to row ``c``."""
    g = np.dot(X, X[c])
    cc = xx[c]
    for i in range(X.shape[0]):
        d = (cc - 2.0 * g[i]) + xx[i]
        out[i] = d if d > 0.0 else 0.0


@numba.njit(cache=True, fastmath=_FASTMATH, nogil=True)
def _closer(X, xx, c, d32, closest, closest32):  # pragma: no cover - compiled
    """Rows that row ``c`` is closer to than their nearest seed, in place: the float32
    distances ``d32`` pick the rows that may be (within :data:`F32_MARGIN` of their scale),
    whose float64 distance then decides."""
    n, D = X.shape
    cc = xx[c]
    for i in range(n):
        if np.float64(d32[i]) - F32_MARGIN * (xx[i] + cc) < closest[i]:
            g = 0.0
            for d in range(D):
                g += X[i, d] * X[c, d]
            d64 = (cc - 2.0 * g) + xx[i]
            if d64 < 0.0:
                d64 = 0.0
            if d64 < closest[i]:
                closest[i] = d64
                closest32[i] = np.float32(d64)


@numba.njit(cache=True, fastmath=_FASTMATH, nogil=True)
def greedy_kmeanspp(X, xx, w, u, out):  # pragma: no cover - compiled
    """Greedy D^2 sampling, ``u.shape[0]`` restarts at once: restart ``r`` chooses
    ``out.shape[1]`` rows of ``X`` (n, D) float64 (about their mean; ``xx`` their squared
    norms) with weights ``w`` (n,) (a row of zero weight is never chosen), ``u.shape[2]``
    candidates a seed drawn with the uniforms ``u[r, j]``: the one that leaves the lowest
    potential is kept; its rows in ``out[r]``. Returns the rows each restart chose (fewer
    when the rows of positive weight run out) and the potential each ended with."""
    n = X.shape[0]
    R, n_new, T = u.shape
    count = np.zeros(R, dtype=np.int64)
    potential = np.zeros(R)
    last = -1
    for i in range(n):
        if w[i] > 0:
            last = i
    if last < 0 or n_new == 0:
        return count, potential
    X32 = X.astype(np.float32)
    xx32 = xx.astype(np.float32)
    w32 = w.astype(np.float32)
    cs = np.empty(n)
    acc = 0.0
    for i in range(n):
        acc += w[i]
        cs[i] = acc
    closest = np.empty((R, n))
    taken = np.zeros((R, n), dtype=np.bool_)
    for r in range(R):
        c = _search(cs, u[r, 0, 0] * acc, last)
        out[r, 0] = c
        taken[r, c] = True
        count[r] = 1
        _distances(X, xx, c, closest[r])
    closest32 = closest.astype(np.float32)
    cand = np.empty(R * T, dtype=np.int64)
    pot = np.empty(R * T)
    D32 = np.empty((R * T, n), dtype=np.float32)
    single = np.zeros(R, dtype=np.bool_)
    stopped = np.zeros(R, dtype=np.bool_)
    for j in range(1, n_new):
        for r in range(R):
            single[r] = False
            if stopped[r]:
                for t in range(T):
                    cand[r * T + t] = out[r, 0]
                continue
            acc = 0.0
            lastp = -1
            for i in range(n):
                p = w[i] * closest[r, i]
                if p > 0:
                    lastp = i
                acc += p
                cs[i] = acc
            if not acc > 0:  # every row sits on a seed: by weight, among the rows not taken
                single[r] = True
                acc = 0.0
                lastp = -1
                for i in range(n):
                    if w[i] > 0 and not taken[r, i]:
                        acc += w[i]
                        lastp = i
                    cs[i] = acc
                if lastp < 0:
                    stopped[r] = True
                    c = out[r, 0]
                else:
                    c = _search(cs, u[r, j, 0] * acc, lastp)
                for t in range(T):
                    cand[r * T + t] = c
                continue
            for t in range(T):
                cand[r * T + t] = _search(cs, u[r, j, t] * acc, lastp)
        _candidates(X32, xx32, w32, closest32, cand, T, pot, D32)
        for r in range(R):
            if stopped[r]:
                continue
            best = 0
            if not single[r]:
                best_pot = np.inf
                for t in range(T):
                    if pot[r * T + t] < best_pot:
                        best_pot = pot[r * T + t]
                        best = t
            idx = cand[r * T + best]
            out[r, j] = idx
            taken[r, idx] = True
            count[r] = j + 1
            _closer(X, xx, idx, D32[r * T + best], closest[r], closest32[r])
    for r in range(R):
        acc = 0.0
        for i in range(n):
            acc += w[i] * closest[r, i]
        potential[r] = acc
    return count, potential


@numba.njit(cache=True, fastmath=_FASTMATH, nogil=True, parallel=True)
def _assign(X, xx, w, flat, cc, R, K, labels, part, changed):  # pragma: no cover - compiled
    """One assignment over fixed blocks of rows (in parallel): ``labels[r]`` each row's
    nearest centre of restart ``r``; block ``b``'s inertia in ``part[b, r]`` and whether a
    label moved in ``changed[b]``."""
    n = X.shape[0]
    for b in numba.prange(part.shape[0]):
        lo = b * BLOCK_ROWS
        hi = min(lo + BLOCK_ROWS, n)
        G = np.dot(X[lo:hi], flat.T)  # (rows, R K): BLAS
        changed[b] = False
        for r in range(R):
            acc = 0.0
            for i in range(hi - lo):
                best = 0
                best_d = np.inf
                for k in range(K):
                    d = cc[r * K + k] - 2.0 * G[i, r * K + k]
                    if d < best_d:
                        best_d = d
                        best = k
                row = lo + i
                if labels[r, row] != best:
                    changed[b] = True
                    labels[r, row] = best
                dist = best_d + xx[row]
                acc += w[row] * (dist if dist > 0.0 else 0.0)
            part[b, r] = acc


@numba.njit(cache=True, fastmath=_FASTMATH, nogil=True)
def lloyd(X, xx, w, C, n_iter, labels, inertia):  # pragma: no cover - compiled
    """Up to ``n_iter`` Lloyd iterations of ``C.shape[0]`` restarts at once, in place:
    ``C[r]`` (K, D) the centres of restart ``r``, ``labels[r]`` (n,) each row's nearest
    centre at the last assignment and ``inertia[r]`` its weighted sum of squared distances.
    Rows of ``X`` (n, D) float64 about their mean, ``xx`` their squared norms, ``w`` their
    weights. A centre no row chose stays where it was. Stops once no label moved (the
    centres are then fixed). Returns the assignments made."""
    n, D = X.shape
    R, K, _ = C.shape
    n_blocks = (n + BLOCK_ROWS - 1) // BLOCK_ROWS
    cc = np.empty(R * K)
    sums = np.empty((K, D))
    mass = np.empty(K)
    part = np.empty((n_blocks, R))
    changed = np.empty(n_blocks, dtype=np.bool_)
    done = 0
    for it in range(n_iter):
        flat = C.reshape(R * K, D)
        for k in range(R * K):
            acc = 0.0
            for d in range(D):
                acc += flat[k, d] * flat[k, d]
            cc[k] = acc
        _assign(X, xx, w, flat, cc, R, K, labels, part, changed)
        done = it + 1
        for r in range(R):
            acc = 0.0
            for b in range(n_blocks):
                acc += part[b, r]
            inertia[r] = acc
        if not changed.any():
            break
        for r in range(R):  # the centres: sums in row order
            sums[:] = 0.0
            mass[:] = 0.0
            for i in range(n):
                k = labels[r, i]
                wi = w[i]
                mass[k] += wi
                for d in range(D):
                    sums[k, d] += wi * X[i, d]
            for k in range(K):
                if mass[k] > 0:
                    for d in range(D):
                        C[r, k, d] = sums[k, d] / mass[k]
    return done


# ---------------------------------------------------------------------- a step's k-means++
@numba.njit(cache=True, nogil=True)
def _cdf(p, cdf):  # pragma: no cover - compiled
    """What NumPy's ``RandomState.choice(n, p=p / p.sum())`` searches, into ``cdf``: the
    normalised probabilities cumulated, over their last sum. False when ``p`` sums to no
    positive finite value (NumPy would refuse it)."""
    n = p.shape[0]
    s = 0.0
    for i in range(n):
        s += p[i]
    if not (s > 0.0 and s < np.inf):
        return False
    acc = 0.0
    for i in range(n):
        acc += p[i] / s
        cdf[i] = acc
    last = cdf[n - 1]
    for i in range(n):
        cdf[i] /= last
    return True


@numba.njit(cache=True, nogil=True)
def _sq_rows(Xc, xx, cand, d):  # pragma: no cover - compiled
    """``d[t]``: the squared distances (norm form, floored at 0) of every row to row
    ``cand[t]``, as :func:`online_gmm._em.seeding._pairwise_sq` forms them (one product of
    the rows by the candidates' transpose)."""
    C = _rows_of(Xc, cand)
    G = np.dot(Xc, C.T)  # (n, T): BLAS
    for t in range(cand.shape[0]):
        cc = xx[cand[t]]
        for i in range(Xc.shape[0]):
            v = (cc - 2.0 * G[i, t]) + xx[i]
            d[t, i] = v if v > 0.0 else 0.0


@numba.njit(cache=True, nogil=True)
def greedy_d2(Xc, xx, w, closest, u, n_new, T, by_weight, out):  # pragma: no cover
    """:func:`online_gmm._em.seeding._greedy_d2` (the step's greedy D^2 sampling) for NumPy
    rows, with its draws given: ``u`` the uniforms its ``RandomState`` would draw (one for
    the first seed when ``by_weight``, no centre yet; then ``T`` a seed), ``closest`` (n,)
    each row's squared distance to its nearest centre (float64, changed in place), ``Xc``
    the rows about their mean, ``xx`` their squared norms, ``w`` the weights. The chosen
    rows go to ``out``; returns how many, or -1 where the reference draws otherwise (every
    row on a centre: one uniform by weight) or NumPy would refuse the probabilities: the
    caller then runs the reference from the same generator state."""
    n = Xc.shape[0]
    p = np.empty(n)
    cdf = np.empty(n)
    d = np.empty((T, n))
    cand = np.empty(T, dtype=np.int64)
    pos = 0
    for j in range(n_new):
        best = 0
        if j == 0 and by_weight:
            for i in range(n):
                p[i] = w[i]
            if not _cdf(p, cdf):
                return -1
            cand[0] = _search(cdf, u[pos], n - 1)
            pos += 1
            _sq_rows(Xc, xx, cand[:1], d)
        else:
            for i in range(n):
                p[i] = w[i] * closest[i]
            if not _cdf(p, cdf):
                return -1
            for t in range(T):
                cand[t] = _search(cdf, u[pos + t], n - 1)
            pos += T
            _sq_rows(Xc, xx, cand, d)
            best_pot = np.inf
            for t in range(T):
                acc = 0.0
                for i in range(n):
                    v = d[t, i]
                    acc += (v if v < closest[i] else closest[i]) * w[i]
                if acc < best_pot:
                    best_pot = acc
                    best = t
        out[j] = cand[best]
        for i in range(n):
            if d[best, i] < closest[i]:
                closest[i] = d[best, i]
    return n_new
