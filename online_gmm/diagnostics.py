"""Collapse diagnostics for prototype sets.

A set of prototypes ``C`` (one prototype per row) has *collapsed* when many of its rows point
in (nearly) the same direction. This module measures that with the number of unique
prototypes ``U(C, eps)``: the size of a greedy cover in which every prototype lies within
cosine distance ``eps`` of a chosen representative (``1 - cos < eps``), reported at several
thresholds together with the entropy of the mixing weights and the effective number of
components ``exp(H(pi))``.

The module is pure NumPy and standalone. Torch tensors are accepted without importing torch
(anything with a ``detach`` method is converted with ``.detach().cpu().numpy()``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

__all__ = ["DEFAULT_EPS", "collapse_report", "format_report", "unique_prototypes"]

#: Cosine-distance thresholds reported by default (the first one is the paper's).
DEFAULT_EPS: tuple[float, ...] = (0.025, 0.1, 0.25, 0.5)

# Upper bound on the number of float elements of one similarity chunk (32 MiB in float64).
_CHUNK_ELEMENTS = 1 << 22


def _to_numpy(C: Any) -> np.ndarray:
    """Convert ``C`` to a NumPy array, accepting torch tensors without importing torch."""
    if hasattr(C, "detach") and callable(C.detach):
        t = C.detach()
        if hasattr(t, "cpu"):
            t = t.cpu()
        try:
            return np.asarray(t.numpy())
        except (TypeError, RuntimeError):
            # dtypes NumPy has no equivalent for (e.g. bfloat16): widen first.
            return np.asarray(t.double().numpy())
    return np.asarray(C)


def _check_prototypes(C: Any) -> np.ndarray:
    """Validate a prototype matrix and return it as a 2-D float array."""
    X = _to_numpy(C)
    if X.dtype == np.bool_:
        X = X.astype(np.float64)
    if not (np.issubdtype(X.dtype, np.integer) or np.issubdtype(X.dtype, np.floating)):
        raise ValueError(f"C must be a real numeric array; got dtype {X.dtype}.")
    if X.ndim != 2:
        raise ValueError(f"C must be 2-D with shape (n_prototypes, dim); got shape {X.shape}.")
    if X.shape[1] == 0:
        raise ValueError(f"C must have at least one column; got shape {X.shape}.")
    if X.dtype != np.float64:
        X = X.astype(np.float64)
    if not np.all(np.isfinite(X)):
        raise ValueError("C must contain only finite values (no NaN or inf).")
    return X


def _check_eps(eps: Any) -> float:
    """Validate a cosine-distance threshold."""
    if isinstance(eps, bool) or not isinstance(eps, (int, float, np.integer, np.floating)):
        raise ValueError(f"eps must be a real number in (0, 2]; got {eps!r}.")
    value = float(eps)
    if not (0.0 < value <= 2.0):  # also rejects NaN
        raise ValueError(f"eps must be in (0, 2] (a cosine distance); got {value!r}.")
    return value


def _normalise_rows(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the unit-norm non-zero rows of ``X`` and the mask of non-zero rows.

    Each row is first divided by its largest absolute entry so that neither huge nor tiny
    (subnormal) rows overflow or underflow when their norm is computed.
    """
    scale = np.max(np.abs(X), axis=1)
    nonzero = scale > 0
    Y = X[nonzero] / scale[nonzero, None]
    Y /= np.linalg.norm(Y, axis=1, keepdims=True)
    return Y, nonzero


def _resolve_block(G: np.ndarray, thresh: float) -> np.ndarray:
    """Greedy cover inside one block; return the boolean mask of its representatives.

    ``G`` is the (B, B) cosine matrix of the block's rows, in row order. Row ``i`` is a
    representative unless an earlier representative ``r`` has ``G[r, i] > thresh``.
    """
    hits = G > thresh
    np.fill_diagonal(hits, False)
    covered = np.zeros(G.shape[0], dtype=bool)
    # Rows without any hit cover nobody: only rows with hits need the sequential pass.
    for i in np.flatnonzero(hits.any(axis=1)):
        if not covered[i]:
            covered[i + 1 :] |= hits[i, i + 1 :]
    return ~covered


def unique_prototypes(C: Any, eps: float, *, block_size: int = 1024) -> int:
    """Count the unique prototypes of ``C`` at cosine distance ``eps``.

    ``U(C, eps)`` is the size of the greedy cover built in row order: the first prototype not
    yet covered becomes a representative and covers every prototype ``j`` with
    ``1 - cos(c_rep, c_j) < eps``; repeat until every prototype is covered.

    Parameters
    ----------
    C : array-like of shape (n_prototypes, dim)
        Prototype matrix, one prototype per row. Anything :func:`numpy.asarray` accepts, or a
        torch tensor (converted with ``.detach().cpu().numpy()``; torch is never imported).
        Rows are L2-normalised here, so the result does not depend on their lengths. A row of
        zeros has no direction: it covers nothing, is covered by nothing, and so counts as
        one unique prototype of its own.
    eps : float
        Cosine-distance threshold in ``(0, 2]``. Two prototypes are merged when their cosine
        similarity is strictly greater than ``1 - eps``: ``eps = 1`` does not merge
        orthogonal vectors, ``eps = 2`` merges everything except exactly opposite vectors.
    block_size : int, default=1024
        Number of not-yet-covered candidates resolved at once. The result does not depend on
        it; it trades Python overhead against the size of the ``(block_size, block_size)``
        similarity matrix. Memory stays ``O(K * D + block_size**2)``: no ``K x K`` matrix is
        ever formed.

    Returns
    -------
    int
        The number of representatives, between 1 and ``n_prototypes`` (0 for an empty ``C``).

    Raises
    ------
    ValueError
        If ``C`` is not a finite real 2-D array, ``eps`` is not in ``(0, 2]`` or
        ``block_size`` is not a positive integer.

    Notes
    -----
    Rows are normalised in float64 and the result does not depend on the input dtype: the
    large matrix products run in float32 for speed, and every pair whose float32 similarity
    lies within the float32 rounding bound of the threshold is re-decided in float64.
    The algorithm works block-wise: the first ``block_size`` uncovered rows are resolved
    greedily on their small cosine matrix (every earlier representative has already removed
    the rows it covers, so these rows are exactly the next candidates in row order); then
    the block's representatives remove the rows they cover from the remainder with one
    chunked matrix product. The worst case (every prototype unique) costs about
    ``K**2 * D / 2`` multiply-adds in BLAS matrix products.

    Examples
    --------
    >>> import numpy as np
    >>> from online_gmm.diagnostics import unique_prototypes
    >>> C = np.array([[1.0, 0.0], [1.0, 0.01], [0.0, 1.0], [0.0, 3.0]])
    >>> unique_prototypes(C, eps=0.025)
    2
    >>> unique_prototypes(np.eye(4), eps=0.5)
    4
    >>> unique_prototypes(np.eye(4), eps=1.5)
    1
    """
    X = _check_prototypes(C)
    thresh_eps = _check_eps(eps)
    if (
        isinstance(block_size, bool)
        or not isinstance(block_size, (int, np.integer))
        or block_size < 1
    ):
        raise ValueError(f"block_size must be a positive integer; got {block_size!r}.")
    block_size = int(block_size)

    Y, nonzero = _normalise_rows(X.astype(np.float64, copy=False))
    n_zero = int(X.shape[0] - np.count_nonzero(nonzero))
    thresh = 1.0 - thresh_eps
    # Bulk products run in float32; a pair whose float32 similarity is within ``tol`` of the
    # threshold is re-decided in float64. ``tol`` bounds the float32 rounding error of a dot
    # product of two unit vectors of length D (with a safety factor of 2).
    tol = 2.0 * (Y.shape[1] + 2) * float(np.finfo(np.float32).eps)

    n_unique = 0
    remaining = Y  # the still-uncovered unit rows, in their original order
    remaining32 = Y.astype(np.float32)
    while remaining.shape[0] > 0:
        block = remaining[:block_size]
        is_rep = _resolve_block(block @ block.T, thresh)
        reps, reps32 = block[is_rep], remaining32[:block_size][is_rep]
        n_unique += reps.shape[0]

        rest, rest32 = remaining[block_size:], remaining32[block_size:]
        if rest.shape[0] == 0:
            break
        keep = np.ones(rest.shape[0], dtype=bool)
        chunk = max(1, _CHUNK_ELEMENTS // reps.shape[0])
        for start in range(0, rest.shape[0], chunk):
            stop = min(start + chunk, rest.shape[0])
            sims = rest32[start:stop] @ reps32.T
            hit = np.any(sims > thresh + tol, axis=1)
            unsure = np.flatnonzero(~hit & np.any(sims >= thresh - tol, axis=1))
            if unsure.size:
                r, c = np.nonzero(sims[unsure] >= thresh - tol)
                rows = start + unsure[r]
                exact = np.einsum("ij,ij->i", rest[rows], reps[c]) > thresh
                hit[unsure[r[exact]]] = True
            keep[start:stop] = ~hit
        # Only copy when something was removed: in the all-unique case ``rest`` is a view.
        if keep.all():
            remaining, remaining32 = rest, rest32
        else:
            remaining, remaining32 = rest[keep], rest32[keep]
    return n_unique + n_zero


def _entropy(weights: Any, n_prototypes: int) -> float:
    """Validate mixing weights and return their entropy in nats."""
    if weights is None:
        return math.log(n_prototypes) if n_prototypes > 0 else 0.0
    w = _to_numpy(weights)
    if not (np.issubdtype(w.dtype, np.integer) or np.issubdtype(w.dtype, np.floating)):
        raise ValueError(f"weights must be a real numeric array; got dtype {w.dtype}.")
    w = w.astype(np.float64)
    if w.shape != (n_prototypes,):
        raise ValueError(
            f"weights must have shape ({n_prototypes},), one per prototype; got {w.shape}."
        )
    if not np.all(np.isfinite(w)):
        raise ValueError("weights must contain only finite values (no NaN or inf).")
    if np.any(w < 0):
        raise ValueError("weights must be non-negative.")
    # Rescale first so that the sum cannot overflow, then normalise to sum to 1.
    w_max = w.max() if w.size else 0.0
    if w_max <= 0:
        raise ValueError("weights must have a positive sum.")
    p = w / w_max
    p /= p.sum()
    p = p[p > 0]  # 0 log 0 = 0
    return float(max(0.0, -np.sum(p * np.log(p))))


def collapse_report(
    C: Any,
    weights: Any = None,
    eps: float | Iterable[float] = DEFAULT_EPS,
) -> dict[str, Any]:
    """Summarise how collapsed a prototype set is.

    Parameters
    ----------
    C : array-like of shape (n_prototypes, dim)
        Prototype matrix (see :func:`unique_prototypes`); a torch tensor is accepted.
    weights : array-like of shape (n_prototypes,), default=None
        Non-negative mixing weights (any positive total; normalised to sum to 1 here).
        ``None`` means uniform weights.
    eps : float or iterable of float, default=(0.025, 0.1, 0.25, 0.5)
        Cosine-distance thresholds in ``(0, 2]`` at which to count unique prototypes.

    Returns
    -------
    dict
        ``"n_prototypes"`` : int, the number of prototypes K.
        ``"unique"`` : dict mapping each eps (float) to ``U(C, eps)`` (int).
        ``"unique_fraction"`` : dict mapping each eps to ``U(C, eps) / K`` (float).
        ``"weight_entropy"`` : float, ``H(pi) = -sum_k pi_k log pi_k`` in nats (natural log,
        with ``0 log 0 = 0``).
        ``"effective_components"`` : float, ``exp(H(pi))``, between 1 and K.

    Raises
    ------
    ValueError
        If ``C``, ``weights`` or ``eps`` are invalid, or ``C`` has no rows.

    Examples
    --------
    >>> import numpy as np
    >>> from online_gmm.diagnostics import collapse_report
    >>> C = np.array([[1.0, 0.0], [1.0, 0.01], [0.0, 1.0], [-1.0, 0.0]])
    >>> report = collapse_report(C, weights=[0.5, 0.5, 0.0, 0.0], eps=(0.025, 1.5))
    >>> report["n_prototypes"]
    4
    >>> report["unique"]
    {0.025: 3, 1.5: 2}
    >>> report["unique_fraction"]
    {0.025: 0.75, 1.5: 0.5}
    >>> print(f"{report['weight_entropy']:.6f}")  # log(2): two equal non-zero weights
    0.693147
    >>> round(report["effective_components"], 6)
    2.0
    """
    X = _check_prototypes(C)
    K = X.shape[0]
    if K == 0:
        raise ValueError("C must contain at least one prototype.")
    if isinstance(eps, (str, bytes)) or not isinstance(eps, Iterable):
        eps_list = [_check_eps(eps)]
    else:
        eps_list = [_check_eps(e) for e in eps]
    if not eps_list:
        raise ValueError("eps must contain at least one threshold.")
    entropy = _entropy(weights, K)
    # U(C, e) = K means that no pair lies within cosine distance e, hence none within any
    # smaller distance either: going from the largest eps down, the expensive all-unique
    # case is computed once.
    computed: dict[float, int] = {}
    for e in sorted(set(eps_list), reverse=True):
        all_unique = any(u == K for u in computed.values())
        computed[e] = K if all_unique else unique_prototypes(X, e)
    unique = {e: computed[e] for e in eps_list}
    return {
        "n_prototypes": int(K),
        "unique": unique,
        "unique_fraction": {e: u / K for e, u in unique.items()},
        "weight_entropy": entropy,
        "effective_components": float(math.exp(entropy)),
    }


def format_report(report: Mapping[str, Any]) -> str:
    """Format a :func:`collapse_report` result as a small text table.

    Parameters
    ----------
    report : mapping
        The dictionary returned by :func:`collapse_report`.

    Returns
    -------
    str
        A header line with the number of prototypes, the weight entropy and the effective
        number of components, then one row per threshold: eps, unique count and fraction.

    Examples
    --------
    >>> import numpy as np
    >>> from online_gmm.diagnostics import collapse_report, format_report
    >>> C = np.array([[1.0, 0.0], [1.0, 0.01], [0.0, 1.0], [-1.0, 0.0]])
    >>> print(format_report(collapse_report(C, eps=(0.025, 1.5))))
    prototypes: 4   weight entropy: 1.3863 nats   effective components: 4.00
      eps  unique  fraction
    0.025       3    0.7500
    1.500       2    0.5000
    """
    try:
        K = report["n_prototypes"]
        unique = report["unique"]
        fractions = report["unique_fraction"]
        entropy = report["weight_entropy"]
        effective = report["effective_components"]
    except KeyError as exc:
        raise ValueError(f"report is missing the key {exc.args[0]!r}.") from None
    header = (
        f"prototypes: {K}   weight entropy: {entropy:.4f} nats   "
        f"effective components: {effective:.2f}"
    )
    width = max(6, len(str(K)))
    lines = [header, f"{'eps':>5}  {'unique':>{width}}  fraction"]
    for e, u in unique.items():
        lines.append(f"{e:>5.3f}  {u:>{width}d}  {fractions[e]:>8.4f}")
    return "\n".join(lines)
