"""Balanced teacher targets: Sinkhorn-Knopp over the batch, as SwAV and DINOv2 balance theirs.

:func:`sinkhorn_knopp` turns a batch of log-scores (for :class:`~ssl_bridge.GMMPrototypes`,
the mixture's log-posterior divided by a temperature) into soft assignments whose rows sum to
1 and whose columns (prototypes) get, after enough iterations, equal shares of the batch.
It is what ``GMMPrototypes.targets(..., balance="sinkhorn")`` runs.
"""

from __future__ import annotations

import math
from numbers import Integral

import torch
from torch import Tensor

from . import _distributed

__all__ = ["sinkhorn_knopp"]

_LOW_PRECISION = (torch.float16, torch.bfloat16)


def _column_log_sums(log_q: Tensor, distributed: bool) -> Tensor:
    """``log sum_b exp(log_q[b, k])`` of every column, over every rank's rows when
    ``distributed``: the column maxima are max-reduced first and subtracted, so the sums
    that are all-reduced never overflow. Shape (1, K); ``-inf`` for a column of zeros."""
    if not distributed:
        return torch.logsumexp(log_q, dim=0, keepdim=True)
    n_rows, n_cols = log_q.shape
    peak = (log_q.amax(dim=0, keepdim=True) if n_rows
            else log_q.new_full((1, n_cols), -math.inf))
    peak = _distributed.all_reduce(peak, "max")
    shift = torch.where(torch.isfinite(peak), peak, torch.zeros_like(peak))
    total = _distributed.all_reduce(torch.exp(log_q - shift).sum(dim=0, keepdim=True), "sum")
    return torch.log(total) + shift


def _check(log_scores: object, n_iterations: object, distributed: bool) -> Tensor:
    if not isinstance(log_scores, Tensor):
        raise TypeError(f"log_scores must be a torch.Tensor; got {type(log_scores).__name__}.")
    if not log_scores.is_floating_point():
        raise ValueError(f"log_scores must be floating point; got dtype {log_scores.dtype}.")
    if log_scores.dim() != 2 or log_scores.shape[1] < 1:
        raise ValueError(
            f"log_scores must have shape (batch, n_prototypes); got {tuple(log_scores.shape)}."
        )
    if isinstance(n_iterations, bool) or not isinstance(n_iterations, Integral) or (
        n_iterations < 0
    ):
        raise ValueError(f"n_iterations must be an integer >= 0; got {n_iterations!r}.")
    x = log_scores.detach()
    bad = bool((torch.isnan(x) | torch.isposinf(x)).any() | torch.isneginf(x).all(dim=1).any())
    if _distributed.any_rank(bad) if distributed else bad:
        raise ValueError(
            "log_scores must be finite or -inf, with a finite entry in every row"
            + ("" if bad else " (on another rank)") + "."
        )
    return x.float() if x.dtype in _LOW_PRECISION else x


@torch.no_grad()
def sinkhorn_knopp(
    log_scores: Tensor,
    n_iterations: int = 3,
    *,
    distributed: bool | None = None,
) -> Tensor:
    """Balance soft assignments over a batch by Sinkhorn-Knopp, in the log domain.

    ``Q = exp(log_scores)`` is alternately rescaled so that every column (prototype) holds
    the same total mass and every row (sample) sums to 1: each iteration takes

    ``log Q <- log Q - logsumexp_b log Q[b, :]`` (columns), then
    ``log Q <- log Q - logsumexp_k log Q[:, k]`` (rows),

    and the result is ``exp(log Q)``. This is DINOv2's ``sinkhorn_knopp_teacher`` and SwAV's
    ``sinkhorn`` (with ``log_scores = scores / temperature``), written with log-sum-exps so
    that nothing overflows or underflows to an all-zero column in float32, whatever the
    scale of the scores (a near one-hot posterior has log-scores hundreds apart). Their
    ``1 / K`` and ``1 / B`` factors are constants that the next normalisation removes, so
    they do not appear: the batch size is not needed, under ``torch.distributed`` either.
    The last step normalises the rows, so the rows sum to 1 exactly (up to rounding) and
    the column sums approach ``B / K`` as the iterations go on (three, DINOv2's default,
    already move a skewed batch most of the way). A column that is ``-inf`` in every row
    (a prototype that cannot be assigned) stays 0 and the others share its mass.

    Parameters
    ----------
    log_scores : Tensor of shape (B, K)
        Unnormalised log-probabilities of each sample's assignment (e.g. logits divided by
        a temperature). Finite or ``-inf``, with a finite entry in every row. float16 and
        bfloat16 are computed in float32.
    n_iterations : int, default=3
        Column-then-row normalisations (>= 0; 0 gives the plain row softmax).
    distributed : bool or None, default=None
        Balance the columns over the union of every ``torch.distributed`` rank's batch:
        the column maxima are max-reduced and the column sums sum-reduced at each
        iteration (rows stay local). None: when a process group of more than one rank is
        initialised. Every rank must then call it, in the same order, with the same
        ``K`` and ``n_iterations``; batch sizes may differ (an empty one included).

    Returns
    -------
    Tensor of shape (B, K)
        Non-negative, rows summing to 1; float32 for float16/bfloat16 input, else the
        input's dtype (autocast does not change it); detached (no gradient flows).

    Raises
    ------
    TypeError
        If ``log_scores`` is not a tensor.
    ValueError
        If it is not a floating-point (B, K) tensor, holds NaN or ``+inf`` or a row with
        no finite entry (under ``distributed`` on any rank: every rank raises), or
        ``n_iterations`` is not an integer >= 0.

    Examples
    --------
    >>> import torch
    >>> from ssl_bridge.balance import sinkhorn_knopp
    >>> scores = torch.tensor([[4.0, 0.0], [4.0, 0.0], [4.0, 0.0], [0.0, 4.0]])
    >>> torch.softmax(scores, dim=1).sum(dim=0)  # prototype 0 takes most of the batch
    tensor([2.9640, 1.0360])
    >>> q = sinkhorn_knopp(scores, n_iterations=50)
    >>> q.sum(dim=1)  # every row is an assignment
    tensor([1.0000, 1.0000, 1.0000, 1.0000])
    >>> q.sum(dim=0)  # the two prototypes share the batch: B / K = 2 each
    tensor([2.0000, 2.0000])
    """
    dist_on = _distributed.is_active() if distributed is None else bool(distributed)
    return balanced(_check(log_scores, n_iterations, dist_on), int(n_iterations), dist_on)


def balanced(x: Tensor, n_iterations: int, distributed: bool,
             excluded: Tensor | None = None) -> Tensor:
    """:func:`sinkhorn_knopp`'s iterations on checked log-scores ``x`` (B, K): no check,
    so no host read (``GMMPrototypes`` balances log-posteriors that are finite or -inf by
    construction; on a GPU each check is a synchronisation). ``excluded`` (B,) bool: rows
    that take no part in the column sums (rows dropped without a host read; their own
    rows are still normalised, and meaningless)."""
    dist_on = distributed
    with torch.autocast(device_type=x.device.type, enabled=False):
        log_q = x
        for _ in range(int(n_iterations)):
            counted = (log_q if excluded is None
                       else log_q.masked_fill(excluded[:, None], -math.inf))
            col = _column_log_sums(counted, dist_on)
            col = torch.where(torch.isneginf(col), torch.zeros_like(col), col)  # 0 stays 0
            log_q = log_q - col
            log_q = log_q - torch.logsumexp(log_q, dim=1, keepdim=True)
        return torch.softmax(log_q, dim=1)
