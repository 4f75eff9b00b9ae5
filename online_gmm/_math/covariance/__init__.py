"""The covariance types: one module each, with the same functions, and the registry that
dispatches on ``covariance_type``.

Every piece of math that depends on the covariance parametrisation lives in the type's own
module (as scikit-learn's per-type ``_estimate_gaussian_covariances_*`` functions, at module
size): :mod:`.full`, :mod:`.tied`, :mod:`.diag`, :mod:`.spherical`. Callers never branch on
the type's name; they ask :func:`covariance` for the module and call its functions:

- shapes and identities: ``shape``, ``identity``, ``expand``, ``n_parameters``,
  ``mean_variance`` (each component's scale);
- precision factors: ``precision_cholesky``, ``precisions_from_cholesky``,
  ``covariances_from_precisions``, ``log_det_cholesky``, ``check_precisions``;
- the E-step: ``layout`` (``(rhs, b, s)``: the per-batch right-hand side of the one big
  product, the distances' offsets and scales) and
  ``quadratic_pieces`` (the squared Mahalanobis distances' pieces);
- statistics and the M-step: ``chunk_sums`` (a chunk's additive sums: a batch's are the
  sum of its chunks'; with ``SUMS_PER_COMPONENT``, every sum has the components as its
  first axis, and a large mixture's are made a block of components at a time),
  ``sums_moments`` (the means and centred moments from them),
  ``outer_term``, ``scale_moment``, ``fold_tied_mass``, ``covariances_from_moments``
  (the old covariances kept where there is no mass),
  ``moved_moment`` (a merge of two components' statistics), ``reordered`` (the
  components permuted);
- seeding: ``weighted_variance``, ``has_spread``, ``regularised``, ``pooled_variance``,
  ``seed``, ``initial_moment``, ``moment_from_covariances``, ``unregularised``;
- the variational mixture (:mod:`online_gmm._math.variational`): ``degrees_of_freedom``,
  ``posterior_covariances`` (the Normal-Wishart posterior's, scikit-learn's
  ``covariances_``), ``check_covariance_prior``;
- ``KERNEL_KIND``: the code the numba kernels know the type by (``None``: no block kernel).

Conventions are scikit-learn's: for ``full`` and ``tied`` the precision Cholesky factor
``U`` is upper triangular with ``precision = U @ U.T``; ``diag`` and ``spherical`` store
``1 / sqrt(variance)``. Moment layout (``M`` in the contract): ``full`` (K, D, D) centred
scatter matrices; ``diag`` (K, D) centred sums of squares; ``spherical`` (K,) centred sums of
squares averaged over the D features; ``tied`` (D, D) pooled within-component scatter, with
its own mass (``tied_mass``).
"""

from __future__ import annotations

from typing import cast

from . import diag, full, spherical, tied
from ._common import PD_MSG
from .protocol import CovarianceType

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")

_REGISTRY: dict[str, CovarianceType] = {
    "full": cast(CovarianceType, full),
    "tied": cast(CovarianceType, tied),
    "diag": cast(CovarianceType, diag),
    "spherical": cast(CovarianceType, spherical),
}


def covariance(covariance_type: str) -> CovarianceType:
    """The module holding ``covariance_type``'s math.

    Parameters
    ----------
    covariance_type : {"full", "tied", "diag", "spherical"}

    Returns
    -------
    CovarianceType
        The type's module (:class:`~online_gmm._math.covariance.protocol.CovarianceType`);
        its functions are listed in this package's docstring.

    Examples
    --------
    >>> from online_gmm._math.covariance import covariance
    >>> covariance("diag").shape(3, 2)
    (3, 2)
    """
    try:
        return _REGISTRY[covariance_type]
    except (KeyError, TypeError):
        raise ValueError(
            f"covariance_type must be one of {list(COVARIANCE_TYPES)}, got {covariance_type!r}."
        ) from None


__all__ = ["COVARIANCE_TYPES", "PD_MSG", "CovarianceType", "covariance"]
