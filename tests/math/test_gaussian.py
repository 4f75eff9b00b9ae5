"""Covariance <-> precision-factor conversions (the covariance modules, through the numba
backend's batched factors and the reference's)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

from online_gmm.core import select_backend, use_backend


def _precision_cholesky(covs, covariance_type, backend="numba"):
    with use_backend(backend):
        return select_backend(covs).precision_cholesky(covs, covariance_type)


def _reference(cov):
    """scikit-learn's per-matrix recipe: the lower Cholesky factor's inverse, transposed."""
    chol = scipy.linalg.cholesky(cov, lower=True)
    return scipy.linalg.solve_triangular(chol, np.eye(cov.shape[0]), lower=True).T


def _covariances(K, D, seed=0, condition=1e-3):
    A = np.random.default_rng(seed).standard_normal((K, D, 2 * D))
    return A @ np.swapaxes(A, 1, 2) / (2 * D) + condition * np.eye(D)


@pytest.mark.parametrize("K, D", [(1, 1), (5, 3), (32, 32)])
def test_full_precision_factors_match_the_per_matrix_recipe(K, D):
    covs = _covariances(K, D, condition=1e-6)  # badly conditioned
    got = _precision_cholesky(covs, "full")
    want = np.stack([_reference(c) for c in covs])
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12 * np.abs(want).max())
    assert np.array_equal(got, np.triu(got))  # upper triangular, exactly
    # the factor inverts the covariance: U U^T = inv(Sigma)
    eye = np.broadcast_to(np.eye(D), covs.shape)
    np.testing.assert_allclose(got @ np.swapaxes(got, 1, 2) @ covs, eye, atol=1e-6)


def test_tied_precision_factor_is_one_matrix():
    cov = _covariances(1, 6, seed=3)[0]
    np.testing.assert_allclose(_precision_cholesky(cov, "tied"), _reference(cov),
                               rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("covariance_type", ["full", "tied"])
def test_the_numba_factors_match_the_reference(covariance_type):
    covs = _covariances(7, 5, seed=4)
    covs = covs[0] if covariance_type == "tied" else covs
    got = _precision_cholesky(covs, covariance_type)
    want = _precision_cholesky(covs, covariance_type, backend="reference")
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-13 * np.abs(want).max())


@pytest.mark.parametrize("backend", ["numba", "reference"])
@pytest.mark.parametrize("bad", ["indefinite", "nan"])
def test_ill_defined_covariances_are_refused(bad, backend):
    covs = _covariances(4, 3)
    if bad == "indefinite":
        covs[2] = -np.eye(3)
    else:
        covs[1, 0, 0] = np.nan
    with pytest.raises(ValueError, match="ill-defined empirical covariance"):
        _precision_cholesky(covs, "full", backend)
