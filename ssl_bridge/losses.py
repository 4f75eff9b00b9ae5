"""Self-supervised losses over prototype scores and embeddings, as pure torch functions.

Every function takes plain tensors and returns a scalar tensor, differentiable with respect to
every floating-point input. Low-precision inputs (float16, bfloat16) are upcast to float32
before any softmax, logarithm or exponential, and the result is then float32; float32 and
float64 inputs are computed and returned in their own precision (float64 is what
:func:`torch.autograd.gradcheck` needs). Shapes are validated with clear ``ValueError``
messages.

Conventions for shapes: ``B`` is the batch size, ``K`` the number of prototypes and ``D`` the
embedding dimension.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "alignment_loss",
    "correlation_loss",
    "cross_view_cross_entropy",
    "koleo_loss",
    "proto_nce_loss",
    "swapped_prediction_loss",
    "uniformity_loss",
]

_LOW_PRECISION = (torch.float16, torch.bfloat16)


def _float(x: object, name: str) -> Tensor:
    """Check that ``x`` is a floating-point tensor; upcast float16/bfloat16 to float32."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor; got {type(x).__name__}.")
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor; got dtype {x.dtype}.")
    return x.float() if x.dtype in _LOW_PRECISION else x


def _matrix(x: object, name: str, *, min_rows: int = 1) -> Tensor:
    """Check that ``x`` is a floating-point (rows, columns) tensor with enough rows."""
    x = _float(x, name)
    if x.dim() != 2:
        raise ValueError(f"{name} must be 2-D (batch, features); got shape {tuple(x.shape)}.")
    if x.shape[0] < min_rows or x.shape[1] < 1:
        raise ValueError(
            f"{name} must have at least {min_rows} row(s) and one column; "
            f"got shape {tuple(x.shape)}."
        )
    return x


def _positive(value: object, name: str) -> float:
    """Check that ``value`` is a finite positive real number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a positive real number; got {value!r}.")
    value = float(value)
    if not (0.0 < value < math.inf):
        raise ValueError(f"{name} must be positive and finite; got {value!r}.")
    return value


def _common_dtype(*tensors: Tensor) -> torch.dtype:
    dtype = tensors[0].dtype
    for t in tensors[1:]:
        dtype = torch.promote_types(dtype, t.dtype)
    return dtype


def _soft_cross_entropy(targets: Tensor, logits: Tensor, temperature: float) -> Tensor:
    """``mean_b -sum_k targets[b, k] log softmax(logits[b] / temperature)[k]``."""
    log_p = F.log_softmax(logits / temperature, dim=-1)
    return -(targets * log_p).sum(dim=-1).mean()


def cross_view_cross_entropy(
    student_logits: Sequence[Tensor],
    teacher_targets: Sequence[Tensor],
    student_temperature: float = 0.1,
) -> Tensor:
    """Cross-entropy between teacher targets and student predictions of the other views.

    The DINO / CARP multi-crop loss: the mean, over all pairs ``(i, j)`` with ``i != j``, of

    ``CE(t_j, softmax(s_i / tau)) = mean_b -sum_k t_j[b, k] log softmax(s_i[b] / tau)[k]``

    where ``s_i`` are the student logits of view ``i`` and ``t_j`` the teacher targets of
    view ``j``. There may be more student views than teacher views (local crops, seen by the
    student only): the first ``len(teacher_targets)`` student views must be the global views
    that the teacher saw, in the same order, and each teacher view ``j`` is paired with every
    student view ``i != j``. That gives ``V_t * V_s - V_t`` terms for ``V_t`` teacher and
    ``V_s`` student views.

    Parameters
    ----------
    student_logits : sequence of Tensor, each of shape (B, K)
        Student logits (before the temperature), one tensor per view.
    teacher_targets : sequence of Tensor, each of shape (B, K)
        Teacher target distributions (each row non-negative and summing to 1: already
        centred, sharpened or balanced by the caller), one tensor per global view. They are
        not detached here: detach them if the teacher must get no gradient.
    student_temperature : float, default=0.1
        Temperature ``tau > 0`` of the student softmax.

    Returns
    -------
    Tensor
        Scalar loss (float32 for float16/bfloat16 input).

    Raises
    ------
    ValueError
        If a view is not a (B, K) floating-point tensor, the views' shapes differ, there are
        fewer student than teacher views, there is no pair ``i != j`` or the temperature is
        not positive.

    Examples
    --------
    >>> import torch
    >>> from ssl_bridge.losses import cross_view_cross_entropy
    >>> student = [torch.zeros(2, 4), torch.zeros(2, 4), torch.zeros(2, 4)]
    >>> teacher = [torch.full((2, 4), 0.25), torch.tensor([[1.0, 0, 0, 0], [0, 1.0, 0, 0]])]
    >>> loss = cross_view_cross_entropy(student, teacher)  # uniform student: CE = log 4
    >>> round(loss.item(), 4) == round(torch.log(torch.tensor(4.0)).item(), 4)
    True
    """
    students = [_matrix(s, f"student_logits[{i}]") for i, s in enumerate(student_logits)]
    teachers = [_matrix(t, f"teacher_targets[{j}]") for j, t in enumerate(teacher_targets)]
    tau = _positive(student_temperature, "student_temperature")
    if not teachers:
        raise ValueError("teacher_targets must contain at least one view.")
    if len(students) < len(teachers):
        raise ValueError(
            f"There must be at least as many student views as teacher views (the first "
            f"student views are the global views); got {len(students)} student and "
            f"{len(teachers)} teacher views."
        )
    if len(students) == 1:
        raise ValueError("A single student and teacher view give no pair (i, j) with i != j.")
    shape = students[0].shape
    for name, views in (("student_logits", students), ("teacher_targets", teachers)):
        for v, x in enumerate(views):
            if x.shape != shape:
                raise ValueError(
                    f"All views must have the same shape (B, K) = {tuple(shape)}; "
                    f"{name}[{v}] has shape {tuple(x.shape)}."
                )
    dtype = _common_dtype(*students, *teachers)
    log_probs = [F.log_softmax(s.to(dtype) / tau, dim=-1) for s in students]
    total = None
    n_terms = 0
    for j, t in enumerate(teachers):
        t = t.to(dtype)
        for i, log_p in enumerate(log_probs):
            if i == j:
                continue
            term = -(t * log_p).sum(dim=-1).mean()
            total = term if total is None else total + term
            n_terms += 1
    return total / n_terms


def swapped_prediction_loss(
    logits_a: Tensor,
    logits_b: Tensor,
    targets_a: Tensor,
    targets_b: Tensor,
    temperature: float = 0.1,
) -> Tensor:
    """SwAV swapped-prediction loss between two views.

    ``L = (CE(q_b, softmax(z_a / tau)) + CE(q_a, softmax(z_b / tau))) / 2``: each view's
    prototype scores predict the *other* view's codes, with
    ``CE(q, p) = mean_b -sum_k q[b, k] log p[b, k]``. The factor 1/2 averages the two terms
    (as lightly's ``SwaVLoss`` does), so this equals :func:`cross_view_cross_entropy` with
    two student and two teacher views.

    Parameters
    ----------
    logits_a, logits_b : Tensor of shape (B, K)
        Prototype scores of views a and b (before the temperature).
    targets_a, targets_b : Tensor of shape (B, K)
        Codes of views a and b (e.g. from Sinkhorn-Knopp; rows summing to 1). Not detached.
    temperature : float, default=0.1
        Softmax temperature ``tau > 0``.

    Returns
    -------
    Tensor
        Scalar loss (float32 for float16/bfloat16 input).

    Raises
    ------
    ValueError
        If the four tensors are not floating-point (B, K) tensors of one shape, or the
        temperature is not positive.

    Examples
    --------
    >>> import torch
    >>> from ssl_bridge.losses import swapped_prediction_loss
    >>> z = torch.tensor([[10.0, 0.0], [0.0, 10.0]])
    >>> q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    >>> swapped_prediction_loss(z, z, q, q, temperature=1.0) < 1e-4  # codes predicted
    tensor(True)
    >>> swapped_prediction_loss(z, z, q.flip(1), q.flip(1), temperature=1.0) > 9.9
    tensor(True)
    """
    names = ("logits_a", "logits_b", "targets_a", "targets_b")
    za, zb, qa, qb = (
        _matrix(x, n)
        for x, n in zip((logits_a, logits_b, targets_a, targets_b), names, strict=True)
    )
    for x, n in zip((zb, qa, qb), names[1:], strict=True):
        if x.shape != za.shape:
            raise ValueError(
                f"{n} must have the shape of logits_a {tuple(za.shape)}; got {tuple(x.shape)}."
            )
    tau = _positive(temperature, "temperature")
    dtype = _common_dtype(za, zb, qa, qb)
    za, zb, qa, qb = (x.to(dtype) for x in (za, zb, qa, qb))
    return 0.5 * (_soft_cross_entropy(qb, za, tau) + _soft_cross_entropy(qa, zb, tau))


def proto_nce_loss(
    embeddings: Tensor,
    prototypes: Tensor,
    assignments: Tensor,
    concentration: Tensor | float,
    n_negatives: int | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """ProtoNCE prototype term of Prototypical Contrastive Learning (Li et al., 2021).

    For a sample ``z`` assigned to prototype ``s``,

    ``l(z) = -log exp(z . c_s / phi_s) / sum_{j in {s} + N} exp(z . c_j / phi_j)``

    where ``phi_j`` is the concentration (a per-prototype temperature) and ``N`` is either
    every other prototype (``n_negatives=None``) or a random subset of ``n_negatives`` of
    them, drawn for each sample uniformly without replacement among the ``K - 1`` prototypes
    other than its own (so the positive is never drawn as a negative). The loss is the mean
    of ``l`` over the batch. The sampled version is the plain (uncorrected) sampled softmax
    of PCL. Inputs are used as given: PCL uses L2-normalised embeddings and prototypes.

    Parameters
    ----------
    embeddings : Tensor of shape (B, D)
        Sample embeddings ``z``.
    prototypes : Tensor of shape (K, D)
        Prototypes ``c_j`` (e.g. cluster means).
    assignments : Tensor of shape (B,), integer
        Index in ``[0, K)`` of each sample's prototype ``s``.
    concentration : float or Tensor of shape (K,)
        Concentrations ``phi_j > 0``; a float (or 0-d tensor) is shared by all prototypes.
    n_negatives : int or None, default=None
        Number of negative prototypes per sample, in ``[1, K - 1]``; ``None`` uses all.
    generator : torch.Generator or None, default=None
        Random generator for drawing the negatives (on the embeddings' device); ``None``
        uses torch's global generator.

    Returns
    -------
    Tensor
        Scalar loss (float32 for float16/bfloat16 input).

    Raises
    ------
    ValueError
        On shape mismatches, assignments out of range or not integer, non-positive or
        non-finite concentrations, or ``n_negatives`` out of range.

    Examples
    --------
    >>> import torch
    >>> from ssl_bridge.losses import proto_nce_loss
    >>> z = torch.tensor([[1.0, 0.0]])
    >>> c = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    >>> loss = proto_nce_loss(z, c, torch.tensor([0]), concentration=1.0)
    >>> expected = -torch.log_softmax(torch.tensor([1.0, 0.0, -1.0]), dim=0)[0]
    >>> torch.allclose(loss, expected)
    True
    >>> g = torch.Generator().manual_seed(0)
    >>> proto_nce_loss(z, c, torch.tensor([0]), 1.0, n_negatives=1, generator=g) < loss
    tensor(True)
    """
    z = _matrix(embeddings, "embeddings")
    c = _matrix(prototypes, "prototypes")
    B, D = z.shape
    K = c.shape[0]
    if c.shape[1] != D:
        raise ValueError(
            f"prototypes must have D = {D} columns like embeddings; got shape {tuple(c.shape)}."
        )
    dtype = _common_dtype(z, c)

    if isinstance(concentration, Tensor):
        phi = _float(concentration, "concentration")
        if phi.dim() == 0:
            phi = phi.expand(K)
        elif phi.shape != (K,):
            raise ValueError(
                f"concentration must be a float or have shape ({K},); got {tuple(phi.shape)}."
            )
        dtype = torch.promote_types(dtype, phi.dtype)
        phi = phi.to(dtype)
    else:
        phi = torch.full(
            (K,), _positive(concentration, "concentration"), dtype=dtype, device=z.device
        )
    if not bool(torch.all(torch.isfinite(phi) & (phi > 0))):
        raise ValueError("concentration must be positive and finite.")

    if not isinstance(assignments, Tensor):
        raise TypeError(f"assignments must be a torch.Tensor; got {type(assignments).__name__}.")
    if (
        assignments.is_floating_point()
        or assignments.is_complex()
        or (assignments.dtype == torch.bool)
    ):
        raise ValueError(f"assignments must be an integer tensor; got dtype {assignments.dtype}.")
    if assignments.shape != (B,):
        raise ValueError(
            f"assignments must have shape ({B},), one per embedding; "
            f"got {tuple(assignments.shape)}."
        )
    s = assignments.long()
    if bool(torch.any((s < 0) | (s >= K))):
        raise ValueError(f"assignments must lie in [0, {K}).")

    logits = (z.to(dtype) @ c.to(dtype).T) / phi  # (B, K)
    if n_negatives is None:
        return F.cross_entropy(logits, s)
    if isinstance(n_negatives, bool) or not isinstance(n_negatives, int):
        raise ValueError(f"n_negatives must be an int or None; got {n_negatives!r}.")
    if not (1 <= n_negatives <= K - 1):
        raise ValueError(f"n_negatives must be in [1, K - 1] = [1, {K - 1}]; got {n_negatives}.")
    # One uniform draw of n_negatives distinct values in {0, ..., K - 2}; for each sample the
    # map v -> v + (v >= s) is a bijection onto the K - 1 prototypes other than s, so every
    # sample gets a uniformly random subset of its own negatives.
    base = torch.randperm(K - 1, generator=generator, device=z.device)[:n_negatives]
    negatives = base.unsqueeze(0) + (base.unsqueeze(0) >= s.unsqueeze(1)).long()  # (B, r)
    selected = logits.gather(1, torch.cat([s.unsqueeze(1), negatives], dim=1))
    return F.cross_entropy(selected, torch.zeros(B, dtype=torch.long, device=z.device))


def alignment_loss(z_a: Tensor, z_b: Tensor, alpha: float = 2.0) -> Tensor:
    """Alignment of positive pairs (Wang & Isola, 2020): ``mean_b ||z_a[b] - z_b[b]||^alpha``.

    Used by PAUC (prototypical contrastive learning with alignment, uniformity and
    correlation) on prototype-level features of the two views of each sample.

    Parameters
    ----------
    z_a, z_b : Tensor of shape (B, D)
        Features of the two members of each positive pair (normally L2-normalised; not
        normalised here).
    alpha : float, default=2.0
        Exponent ``alpha > 0``.

    Returns
    -------
    Tensor
        Scalar loss (float32 for float16/bfloat16 input).

    Raises
    ------
    ValueError
        If the inputs are not floating-point (B, D) tensors of one shape or ``alpha`` is not
        positive.

    Examples
    --------
    >>> import torch
    >>> from ssl_bridge.losses import alignment_loss
    >>> a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    >>> b = torch.tensor([[0.0, 1.0], [0.0, 1.0]])
    >>> alignment_loss(a, b)  # (2 + 0) / 2
    tensor(1.)
    >>> alignment_loss(a, b, alpha=1.0)  # (sqrt(2) + 0) / 2
    tensor(0.7071)
    """
    a = _matrix(z_a, "z_a")
    b = _matrix(z_b, "z_b")
    if a.shape != b.shape:
        raise ValueError(
            f"z_a and z_b must have the same shape; got {tuple(a.shape)} and {tuple(b.shape)}."
        )
    alpha = _positive(alpha, "alpha")
    dtype = _common_dtype(a, b)
    diff = a.to(dtype) - b.to(dtype)
    if alpha == 2.0:
        return diff.pow(2).sum(dim=1).mean()
    return torch.linalg.vector_norm(diff, dim=1).pow(alpha).mean()


def uniformity_loss(z: Tensor, t: float = 2.0) -> Tensor:
    """Uniformity (Wang & Isola, 2020): ``log mean_{i<j} exp(-t ||z_i - z_j||^2)``.

    Computed from :func:`torch.pdist` with a log-sum-exp, so that it stays finite for large
    ``t``. Lower is more uniform; on the unit sphere it is bounded below by the value for a
    uniform distribution.

    Parameters
    ----------
    z : Tensor of shape (B, D), B >= 2
        Features (normally L2-normalised; not normalised here).
    t : float, default=2.0
        Scale ``t > 0`` of the Gaussian potential.

    Returns
    -------
    Tensor
        Scalar loss (float32 for float16/bfloat16 input).

    Raises
    ------
    ValueError
        If ``z`` is not a floating-point (B, D) tensor with ``B >= 2`` or ``t`` is not
        positive.

    Examples
    --------
    >>> import torch
    >>> from ssl_bridge.losses import uniformity_loss
    >>> z = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])  # one pair at squared distance 4
    >>> uniformity_loss(z, t=2.0)
    tensor(-8.)
    """
    x = _matrix(z, "z", min_rows=2)
    t = _positive(t, "t")
    sq = torch.pdist(x, p=2).pow(2)
    return torch.logsumexp(-t * sq, dim=0) - math.log(sq.numel())


def correlation_loss(z: Tensor, eps: float = 1e-5) -> Tensor:
    """Mean squared off-diagonal correlation between feature dimensions of a batch.

    With column means ``m_d`` and population variances ``v_d`` over the batch, the
    standardised features are ``y[b, d] = (z[b, d] - m_d) / sqrt(v_d + eps)`` and the
    correlation matrix is ``R = y^T y / B`` (D x D). The loss is

    ``sum_{d != e} R[d, e]^2 / (D (D - 1))``,

    the mean of the squared Pearson correlations over the ``D (D - 1)`` ordered pairs of
    distinct dimensions: 0 for decorrelated features, close to 1 when every dimension is an
    affine function of one factor. ``eps`` keeps constant dimensions finite (they count as
    uncorrelated). Used as the decorrelation term of PAUC.

    Parameters
    ----------
    z : Tensor of shape (B, D), B >= 2 and D >= 2
        Batch of features.
    eps : float, default=1e-5
        Added to each variance, ``eps > 0``.

    Returns
    -------
    Tensor
        Scalar loss in ``[0, 1)`` (float32 for float16/bfloat16 input).

    Raises
    ------
    ValueError
        If ``z`` is not a floating-point (B, D) tensor with ``B >= 2`` and ``D >= 2`` or
        ``eps`` is not positive.

    Examples
    --------
    >>> import torch
    >>> from ssl_bridge.losses import correlation_loss
    >>> x = torch.tensor([[1.0], [2.0], [3.0], [4.0]])
    >>> round(correlation_loss(torch.cat([x, 2 * x + 1], dim=1)).item(), 4)  # correlated
    1.0
    >>> z = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]])
    >>> correlation_loss(z)  # uncorrelated
    tensor(0.)
    """
    x = _matrix(z, "z", min_rows=2)
    if x.shape[1] < 2:
        raise ValueError(f"z must have at least 2 features (columns); got {tuple(x.shape)}.")
    eps = _positive(eps, "eps")
    B, D = x.shape
    centred = x - x.mean(dim=0, keepdim=True)
    y = centred / torch.sqrt(centred.pow(2).mean(dim=0, keepdim=True) + eps)
    corr = (y.T @ y) / B
    off_diagonal = corr.pow(2).sum() - torch.diagonal(corr).pow(2).sum()
    return off_diagonal / (D * (D - 1))


def koleo_loss(z: Tensor, eps: float = 1e-8) -> Tensor:
    """KoLeo regulariser (Sablayrolles et al., 2019; DINOv2): spread out nearest neighbours.

    ``L = -mean_i log(min_{j != i} ||u_i - u_j|| + eps)`` with ``u = z / ||z||`` (rows
    L2-normalised, as in DINOv2). The nearest neighbour of each row is searched without
    gradient (largest cosine similarity); the gradient flows through the distance to it.

    Parameters
    ----------
    z : Tensor of shape (B, D), B >= 2
        Batch of features.
    eps : float, default=1e-8
        Added to the distances (and used in the normalisation), ``eps > 0``: duplicated
        rows give the finite value ``-log(eps)``.

    Returns
    -------
    Tensor
        Scalar loss (float32 for float16/bfloat16 input).

    Raises
    ------
    ValueError
        If ``z`` is not a floating-point (B, D) tensor with ``B >= 2`` or ``eps`` is not
        positive.

    Examples
    --------
    >>> import torch
    >>> from ssl_bridge.losses import koleo_loss
    >>> z = torch.tensor([[2.0, 0.0], [0.0, 3.0], [-1.0, 0.0]])  # nearest distances sqrt(2)
    >>> round(koleo_loss(z).item(), 4) == round(-0.5 * torch.log(torch.tensor(2.0)).item(), 4)
    True
    """
    x = _matrix(z, "z", min_rows=2)
    eps = _positive(eps, "eps")
    u = F.normalize(x, p=2, dim=1, eps=eps)
    with torch.no_grad():
        sims = u @ u.T
        sims.fill_diagonal_(-math.inf)
        nearest = sims.argmax(dim=1)
    distances = torch.linalg.vector_norm(u - u[nearest], dim=1)
    return -torch.log(distances + eps).mean()
