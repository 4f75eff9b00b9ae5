"""One math on any array library: the NumPy/numba fast path against the generic array-API
code (on NumPy itself, on array-api-strict, and on PyTorch CPU tensors)."""

import numpy as np
import pytest
import sklearn

import online_gmm._math.array_api as array_api
from online_gmm import OnlineGaussianMixture, core

from .._data import blobs

TYPES = ["full", "tied", "diag", "spherical"]
PARAMS = dict(forgetting_rate=0.02, temperature_init=2.0, anneal_steps=3, random_state=0)


def _stream(dtype=np.float64):
    X, _, _ = blobs(n=1200, K=4, D=5, seed=2, dtype=dtype)
    return np.array_split(X, 6)


def _fit(batches, covariance_type, convert=lambda a: a):
    model = OnlineGaussianMixture(4, covariance_type=covariance_type, **PARAMS)
    for b in batches:
        model.partial_fit(convert(b))
    return model


def _np(a):
    return array_api.to_numpy(a)


def _assert_close(fast, other, rtol):
    for attr in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        np.testing.assert_allclose(
            _np(getattr(other, attr)), getattr(fast, attr), rtol=rtol, atol=rtol, err_msg=attr
        )
    assert fast.n_steps_ == other.n_steps_


@pytest.mark.parametrize("covariance_type", TYPES)
def test_generic_path_on_numpy_matches_numba_path(covariance_type):
    batches = _stream()
    fast = _fit(batches, covariance_type)
    with core.use_backend("reference"):
        generic = _fit(batches, covariance_type)
    _assert_close(fast, generic, 1e-9)
    X = batches[0]
    with core.use_backend("reference"):
        generic_scores = generic.score_samples(X)
    np.testing.assert_allclose(generic_scores, fast.score_samples(X), rtol=1e-9)


@pytest.mark.parametrize("covariance_type", TYPES)
def test_array_api_strict_matches_numba_path(covariance_type):
    xps = pytest.importorskip("array_api_strict", reason="array-api-strict is a test extra")
    batches = _stream()
    fast = _fit(batches, covariance_type)
    with sklearn.config_context(array_api_dispatch=True):
        strict = _fit(batches, covariance_type, convert=xps.asarray)
        assert type(strict.means_).__module__.startswith("array_api_strict")
        proba = strict.predict_proba(xps.asarray(batches[0]))
    np.testing.assert_allclose(_np(proba), fast.predict_proba(batches[0]), atol=1e-9)
    _assert_close(fast, strict, 1e-9)


@pytest.mark.parametrize("covariance_type", TYPES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_torch_cpu_matches_numba_path(covariance_type, dtype):
    torch = pytest.importorskip("torch", reason="torch is the optional 'torch' extra")
    batches = _stream(dtype)
    fast = _fit(batches, covariance_type)
    with sklearn.config_context(array_api_dispatch=True):
        on_torch = _fit(batches, covariance_type, convert=torch.from_numpy)
        assert isinstance(on_torch.means_, torch.Tensor)
        out = on_torch.predict_proba(torch.from_numpy(batches[0]))
        assert out.dtype == (torch.float32 if dtype == np.float32 else torch.float64)
    _assert_close(fast, on_torch, 1e-9 if dtype == np.float64 else 2e-4)
