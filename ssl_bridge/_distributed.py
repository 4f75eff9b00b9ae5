"""torch.distributed plumbing for :class:`~ssl_bridge.GMMPrototypes`: gather a batch from
every rank (for seeding), merge the ranks' batch statistics, agree on a decision, reduce a
tensor (the Sinkhorn-Knopp balancing's column sums)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from online_gmm.core import BatchStats, merge_stats


def is_active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _comm_device() -> torch.device:
    """NCCL communicates CUDA tensors; gloo CPU ones."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _all_gather_rows(t: torch.Tensor) -> list[torch.Tensor]:
    """All ranks' tensors of shape (n_rank, ...), n_rank may differ between ranks."""
    dev = _comm_device()
    n = torch.tensor([t.shape[0]], device=dev, dtype=torch.int64)
    sizes = [torch.zeros_like(n) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, n)
    sizes = [int(s.item()) for s in sizes]
    width = max(sizes)
    padded = torch.zeros((width, *t.shape[1:]), dtype=t.dtype, device=dev)
    padded[: t.shape[0]] = t.to(dev)
    out = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(out, padded)
    return [o[:s].to(t.device) for o, s in zip(out, sizes, strict=True)]


def _as_torch(a: Any) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a)) if isinstance(a, np.ndarray) else a


def _like(t: torch.Tensor, proto: Any) -> Any:
    return t.cpu().numpy() if isinstance(proto, np.ndarray) else t


def gather_batch(X: Any, w: Any) -> tuple[Any, Any]:
    """The concatenation, in rank order, of every rank's (X, w)."""
    Xs = _all_gather_rows(_as_torch(X))
    ws = _all_gather_rows(_as_torch(w))
    return _like(torch.cat(Xs), X), _like(torch.cat(ws), w)


def reduce_stats(stats: BatchStats, covariance_type: str, xp: Any) -> BatchStats:
    """Every rank's statistics merged by the pairwise rule, in rank order, so that all ranks
    hold bit-identical results equal to one process on the concatenated batch."""
    tensors = [_as_torch(a).unsqueeze(0) for a in (stats.mass, stats.mean, stats.moment)]
    scalars = torch.tensor(
        [[stats.weight, stats.loglik, float(stats.n_samples)]],
        dtype=torch.float64,
        device=tensors[0].device,
    )
    gathered = [_all_gather_rows(t) for t in (*tensors, scalars)]
    merged = None
    for rank in range(len(gathered[0])):
        sc = gathered[3][rank][0]
        part = BatchStats(
            mass=_like(gathered[0][rank][0], stats.mass),
            mean=_like(gathered[1][rank][0], stats.mean),
            moment=_like(gathered[2][rank][0], stats.moment),
            weight=float(sc[0]),
            loglik=float(sc[1]),
            n_samples=int(sc[2]),
        )
        merged = part if merged is None else merge_stats(merged, part, covariance_type, xp)
    return merged


def any_rank(flag: bool, device: torch.device | None = None) -> bool:
    """True on every rank if ``flag`` is True on any rank (so all take the same branch)."""
    if not is_active():
        return flag
    t = torch.tensor([1 if flag else 0], device=_comm_device(), dtype=torch.int64)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def all_reduce(t: torch.Tensor, op: str = "sum") -> torch.Tensor:
    """``t`` reduced element-wise over every rank (``op`` "sum" or "max"), on ``t``'s device
    and in its dtype; ``t`` itself when no process group is active. ``t`` is not modified."""
    if not is_active():
        return t
    ops = {"sum": dist.ReduceOp.SUM, "max": dist.ReduceOp.MAX}
    out = t.detach().to(_comm_device(), copy=True)
    dist.all_reduce(out, op=ops[op])
    return out.to(t.device)
