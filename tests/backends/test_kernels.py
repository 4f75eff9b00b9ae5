"""The numba E-step kernel against plain NumPy, on both dtypes and both code paths."""

import numba
import numpy as np
import pytest

from online_gmm._backends import check_kernels as _checks
from online_gmm._backends import kernels as _kernels


def _exp_loop(d, floor):
    out = np.empty_like(d)
    for i in range(d.shape[0]):
        out[i] = _kernels._exp_nonpositive(d[i], floor)
    return out


# as the kernels compile it (their fast-math flags: LLVM may reassociate), and without
_EXPS = {
    "fastmath": numba.njit(fastmath=_kernels._FASTMATH, error_model="numpy")(_exp_loop),
    "strict": numba.njit(_exp_loop),
}


@pytest.mark.parametrize("flags", list(_EXPS))
@pytest.mark.parametrize(
    "dtype, floor, rtol",
    [(np.float64, _kernels.EXP_FLOOR_F64, 4 * np.finfo(np.float64).eps),
     (np.float32, _kernels.EXP_FLOOR_F32, 2 * np.finfo(np.float32).eps)],
)
def test_vectorisable_exp_matches_libm(dtype, floor, rtol, flags):
    _exp = _EXPS[flags]
    d = -np.concatenate([np.linspace(0, 1, 20001), np.geomspace(1, -floor, 20001)[:-1]])
    d = d.astype(dtype)
    got = _exp(d, dtype(floor))
    assert got.dtype == dtype
    # against float64 libm on the same (rounded) arguments: the polynomial's own error
    np.testing.assert_allclose(got, np.exp(d.astype(np.float64)), rtol=rtol, atol=0)
    edge = np.array([floor, floor - 0.5, -np.inf, 0.0, -0.0], dtype=dtype)
    assert _exp(edge, dtype(floor)).tolist() == [0.0, 0.0, 0.0, 1.0, 1.0]


def _reference(G, a, b, s, const, inv_temp):
    q = np.maximum(a[:, None] + G.astype(np.float64) + b, 0)
    logp = const - 0.5 * s * q
    mx = logp.max(axis=1, keepdims=True)
    ll = (mx + np.log(np.exp(logp - mx).sum(axis=1, keepdims=True)))[:, 0]
    t = logp * inv_temp
    r = np.exp(t - t.max(axis=1, keepdims=True))
    return r / r.sum(axis=1, keepdims=True), ll


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("inv_temp", [1.0, 0.25])
@pytest.mark.parametrize("shape", [(7, 5), (300, 1200)])  # serial and parallel kernels
def test_tempered_posterior_matches_numpy(dtype, inv_temp, shape):
    rng = np.random.default_rng(0)
    n, K = shape
    G = (rng.standard_normal((n, K)) * 50).astype(dtype)
    a = rng.uniform(0, 10, n).astype(dtype)
    b = rng.uniform(0, 10, K).astype(dtype)
    s = rng.uniform(0.5, 2, K).astype(dtype)
    const = rng.normal(0, 3, K).astype(dtype)
    const[1] = -np.inf  # an unseeded component gets nothing
    r_ref, ll_ref = _reference(G, a, b, s, const.astype(np.float64), inv_temp)
    ll = np.empty(n, dtype=dtype)
    _kernels.tempered_posterior(G, a, b, s, const, inv_temp, ll)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(G, r_ref, rtol=tol, atol=tol)
    np.testing.assert_allclose(ll, ll_ref, rtol=tol)
    assert np.all(G[:, 1] == 0)
    assert G.dtype == dtype


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 3), (7, 5), (300, 1200)])  # serial and parallel rows
def test_log_density_matches_numpy(dtype, shape):
    rng = np.random.default_rng(1)
    n, K = shape
    G = (rng.standard_normal((n, K)) * 50).astype(dtype)
    a = rng.uniform(0, 10, n).astype(dtype)
    b = rng.uniform(0, 10, K).astype(dtype)
    s = rng.uniform(0.5, 2, K).astype(dtype)
    const = rng.normal(0, 3, K).astype(dtype)
    expected = const - 0.5 * s * np.maximum(a[:, None] + G.astype(np.float64) + b, 0)
    assert (G.size < _kernels.SMALL_KERNEL_WORK) == (n < 300)
    _kernels.log_density(G, a, b, s, const)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(G, expected, rtol=tol, atol=tol)
    assert G.dtype == dtype


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_all_finite_finds_every_nan_and_inf_in_any_layout(dtype):
    rng = np.random.default_rng(3)
    X = rng.standard_normal((257, 9)).astype(dtype)
    views = [lambda a: a, lambda a: a.T, lambda a: np.asfortranarray(a), lambda a: a[::2, 1:]]
    for view in views:
        assert _checks.all_finite(view(X))
    huge = np.full(1000, np.finfo(dtype).max, dtype)  # a plain sum would overflow
    assert _checks.all_finite(huge) and _checks.all_finite(np.empty((0, 3), dtype))
    for bad in (np.nan, np.inf, -np.inf):
        for i, j in [(0, 0), (128, 4), (256, 8)]:
            Y = X.copy()
            Y[i, j] = bad
            for view in views[:3]:
                assert not _checks.all_finite(view(Y))
        Y = X.copy()
        Y[2, 3] = bad
        assert not _checks.all_finite(Y[::2, 1:])
