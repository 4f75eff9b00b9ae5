"""Learnable prototype heads.

:class:`JointPrototypes` is the DINO-style last layer: prototypes learned jointly with the
encoder by back-propagation. It is the baseline whose prototypes collapse (many rows point
the same way), which :func:`online_gmm.diagnostics.collapse_report` measures on
:attr:`JointPrototypes.prototypes`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["JointPrototypes"]


def _weight_norm(module: nn.Linear) -> nn.Linear:
    """Weight-normalise ``module.weight`` row-wise (dim 0), with either torch API."""
    parametrizations = getattr(nn.utils, "parametrizations", None)
    if parametrizations is not None and hasattr(parametrizations, "weight_norm"):
        return parametrizations.weight_norm(module, name="weight", dim=0)
    return nn.utils.weight_norm(module, name="weight", dim=0)  # torch without parametrizations


class JointPrototypes(nn.Module):
    """DINO-style learnable prototypes: a weight-normalised linear layer without bias.

    The scores of an embedding ``z`` are ``w_k . z / ||z||`` for the K prototype vectors
    ``w_k = g_k v_k / ||v_k||``. With ``norm_last_layer=True`` (DINO's default) the magnitudes
    ``g_k`` are fixed at 1 and frozen, so the logits are the cosine similarities between
    ``z`` and the prototypes; with ``False`` the magnitudes start at 1 and are learned.

    Parameters
    ----------
    dim : int
        Embedding dimension D.
    n_prototypes : int
        Number of prototypes K.
    norm_last_layer : bool, default=True
        Fix the prototype norms at 1 (frozen weight-norm magnitude).

    Attributes
    ----------
    last_layer : torch.nn.Linear
        The weight-normalised layer. On torch versions with
        ``torch.nn.utils.parametrizations.weight_norm`` its magnitude is
        ``last_layer.parametrizations.weight.original0`` (shape (K, 1)) and its direction
        ``original1`` (shape (K, D)); on older ones, ``weight_g`` and ``weight_v``.

    Examples
    --------
    >>> import torch
    >>> from ssl_bridge.heads import JointPrototypes
    >>> _ = torch.manual_seed(0)
    >>> head = JointPrototypes(dim=8, n_prototypes=5)
    >>> logits = head(torch.randn(3, 8))
    >>> logits.shape
    torch.Size([3, 5])
    >>> bool(logits.abs().max() <= 1.0 + 1e-6)  # cosine similarities
    True
    >>> head.prototypes.shape, torch.allclose(head.prototypes.norm(dim=1), torch.ones(5))
    (torch.Size([5, 8]), True)
    """

    def __init__(self, dim: int, n_prototypes: int, norm_last_layer: bool = True) -> None:
        super().__init__()
        for name, value in (("dim", dim), ("n_prototypes", n_prototypes)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer; got {value!r}.")
        self.dim = dim
        self.n_prototypes = n_prototypes
        self.norm_last_layer = bool(norm_last_layer)
        self.last_layer = _weight_norm(nn.Linear(dim, n_prototypes, bias=False))
        magnitude = self._magnitude()
        with torch.no_grad():
            magnitude.fill_(1.0)
        if self.norm_last_layer:
            magnitude.requires_grad_(False)

    def _magnitude(self) -> nn.Parameter:
        """The weight-norm magnitude parameter g, shape (K, 1)."""
        if hasattr(self.last_layer, "parametrizations"):
            return self.last_layer.parametrizations.weight.original0
        return self.last_layer.weight_g

    def _direction(self) -> nn.Parameter:
        """The weight-norm direction parameter v, shape (K, D)."""
        if hasattr(self.last_layer, "parametrizations"):
            return self.last_layer.parametrizations.weight.original1
        return self.last_layer.weight_v

    @property
    def weight(self) -> Tensor:
        """Current (K, D) prototype vectors ``g_k v_k / ||v_k||`` (differentiable)."""
        v = self._direction()
        return self._magnitude() * v / torch.linalg.vector_norm(v, dim=1, keepdim=True)

    @property
    def prototypes(self) -> Tensor:
        """The (K, D) prototype directions, rows L2-normalised, detached from the graph.

        Ready for :func:`online_gmm.diagnostics.collapse_report`. With
        ``norm_last_layer=True`` these are exactly the vectors the logits are computed with.
        """
        with torch.no_grad():
            return F.normalize(self.weight, p=2, dim=1).detach()

    def forward(self, z: Tensor) -> Tensor:
        """Score embeddings against the prototypes.

        Parameters
        ----------
        z : Tensor of shape (B, D) (or (..., D))
            Embeddings; they are L2-normalised here (and cast to the layer's dtype).

        Returns
        -------
        Tensor of shape (B, K) (or (..., K))
            Logits ``w_k . z / ||z||``.

        Examples
        --------
        >>> import torch
        >>> from ssl_bridge import JointPrototypes
        >>> head = JointPrototypes(dim=4, n_prototypes=8)
        >>> z = torch.randn(5, 4, requires_grad=True)
        >>> logits = head(z)
        >>> logits.shape
        torch.Size([5, 8])
        >>> logits.sum().backward()  # learned jointly: the prototypes get gradients too
        >>> head.prototypes.shape
        torch.Size([8, 4])
        """
        if not isinstance(z, Tensor) or not z.is_floating_point():
            raise ValueError("z must be a floating-point torch.Tensor.")
        if z.dim() < 1 or z.shape[-1] != self.dim:
            raise ValueError(f"z must have shape (B, {self.dim}); got shape {tuple(z.shape)}.")
        z = z.to(self._direction().dtype)
        return self.last_layer(F.normalize(z, p=2, dim=-1))

    def extra_repr(self) -> str:
        return (
            f"dim={self.dim}, n_prototypes={self.n_prototypes}, "
            f"norm_last_layer={self.norm_last_layer}"
        )
