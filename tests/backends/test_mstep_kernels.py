"""The numba M-step (``online_gmm._backends.mstep_kernels``) against the generic NumPy
``m_step``."""

import numpy as np
import pytest

from online_gmm import OnlineGaussianMixture
from online_gmm._backends import mstep_kernels as _mstep_kernels
from online_gmm._backends import numba_backend as _numba_backend
from online_gmm.core import BatchStats, MixtureState, select_backend, use_backend

from .._data import blobs

TYPES = ["diag", "spherical"]
MODES = [("responsibility", 0.0), ("responsibility", 0.05), ("responsibility", 0.6),
         ("uniform", 0.0), ("uniform", 0.05), ("uniform", 0.6)]
FIELDS = ("weights", "means", "covariances", "precisions_cholesky", "mass", "nu", "moment",
          "tied_mass", "seeded")


def _moment_shape(ct, K, D):
    return (K, D) if ct == "diag" else (K,)


def _state_and_stats(ct, seed, K=7, D=5, offset=0.0, reg=1e-6):
    """A state with every kind of component, and a batch's statistics for it:

    0: unseeded and no mass in the batch (keeps its placeholder covariance);
    1: seeded, no mass in the batch (keeps everything but forgets nothing);
    2: unseeded, mass in the batch (starts from the batch);
    3: seeded with zero evidence left (mass 0), mass in the batch;
    others: seeded, mass in the batch.
    """
    rng = np.random.default_rng(seed)
    shape = _moment_shape(ct, K, D)
    means = rng.normal(0.0, 3.0, (K, D)) + offset
    mass = rng.uniform(0.5, 50.0, K)
    nu = rng.uniform(0.5, 80.0, K)
    moment = mass.reshape((K,) + (1,) * (len(shape) - 1)) * rng.uniform(0.1, 2.0, shape)
    safe = mass.reshape((K,) + (1,) * (len(shape) - 1))
    cov = moment / safe + reg
    seeded = np.ones(K, dtype=bool)
    for k in (0, 2):
        seeded[k] = False
        mass[k] = nu[k] = 0.0
        means[k] = 0.0
        moment[k] = 0.0
        cov[k] = 1.0
    mass[3] = 0.0
    weights = nu / nu.sum()
    state = MixtureState(
        weights=weights, means=means, covariances=cov, precisions_cholesky=1.0 / np.sqrt(cov),
        mass=mass, nu=nu, moment=moment, tied_mass=np.zeros(1), seeded=seeded,
    )
    m_b = rng.uniform(0.1, 30.0, K)
    m_b[[0, 1]] = 0.0
    mean_b = means + rng.normal(0.0, 1.0, (K, D))
    mean_b[[0, 1]] = 0.0  # as the statistics kernels leave components without mass
    moment_b = m_b.reshape(safe.shape) * rng.uniform(0.1, 2.0, shape)
    stats = BatchStats(mass=m_b, mean=mean_b, moment=moment_b, weight=float(m_b.sum()),
                       loglik=-1.0, n_samples=int(m_b.sum()))
    return state, stats


def m_step(state, stats, *, fast, **kw):
    """The M-step of the numba backend (``fast``) or of the reference."""
    with use_backend("numba" if fast else "reference"):
        backend = select_backend(state.means)
    return backend.m_step(state, stats, **kw)


def _both(state, stats, ct, forgetting, eta, reg=1e-6):
    kw = dict(eta=eta, forgetting=forgetting, covariance_type=ct, reg_covar=reg)
    return m_step(state, stats, fast=True, **kw), m_step(state, stats, fast=False, **kw)


def _assert_match(got, want, rtol=1e-12):
    for name in FIELDS:
        a, b = getattr(got, name), getattr(want, name)
        assert a.shape == b.shape and a.dtype == b.dtype, name
        if b.dtype == bool:
            np.testing.assert_array_equal(a, b, err_msg=name)
        else:
            np.testing.assert_allclose(a, b, rtol=rtol, atol=0.0, err_msg=name)


def _assert_no_alias(new, old):
    for name in ("weights", "means", "covariances", "precisions_cholesky", "mass", "nu",
                 "moment"):
        for f in FIELDS:
            assert not np.shares_memory(getattr(new, name), getattr(old, f)), (name, f)


@pytest.fixture
def kernel_calls(monkeypatch):
    """Counts the calls of the M-step kernel (to know which path ran)."""
    calls = [0]
    original = _mstep_kernels.forgetting_m_step

    def counted(*args):
        calls[0] += 1
        return original(*args)

    monkeypatch.setattr(_mstep_kernels, "forgetting_m_step", counted)
    return calls


@pytest.mark.parametrize("covariance_type", TYPES)
@pytest.mark.parametrize("forgetting,eta", MODES)
@pytest.mark.parametrize("offset", [0.0, 1e6])
def test_kernel_equals_numpy_m_step(kernel_calls, covariance_type, forgetting, eta, offset):
    state, stats = _state_and_stats(covariance_type, seed=int(eta * 100), offset=offset)
    before = {f: np.copy(getattr(state, f)) for f in FIELDS}
    got, want = _both(state, stats, covariance_type, forgetting, eta)
    assert kernel_calls[0] == 1  # the fast call, not the generic one
    _assert_match(got, want)
    _assert_no_alias(got, state)
    for f in FIELDS:  # the old state is untouched
        np.testing.assert_array_equal(getattr(state, f), before[f], err_msg=f)
    # the special components behave as the contract says
    np.testing.assert_array_equal(got.covariances[0], state.covariances[0])  # no evidence
    np.testing.assert_array_equal(got.means[0], state.means[0])
    np.testing.assert_array_equal(got.means[1], state.means[1])  # no mass: kept
    if forgetting == "responsibility":  # and forgets nothing
        np.testing.assert_array_equal(got.moment[1], state.moment[1])
        assert got.mass[1] == state.mass[1]
    else:
        assert got.mass[1] == pytest.approx((1 - eta) ** stats.weight * state.mass[1])
    np.testing.assert_allclose(got.means[2], stats.mean[2], rtol=1e-15)  # from the batch
    np.testing.assert_allclose(got.means[3], stats.mean[3], rtol=1e-15)
    np.testing.assert_allclose(got.weights.sum(), 1.0, rtol=1e-14)
    assert np.all(got.precisions_cholesky > 0)


@pytest.mark.parametrize("covariance_type", TYPES)
def test_kernel_keeps_the_weights_when_no_mass_is_left(covariance_type):
    state, stats = _state_and_stats(covariance_type, seed=1)
    state = state.replace(nu=np.zeros_like(state.nu))
    zero = BatchStats(mass=np.zeros_like(stats.mass), mean=np.zeros_like(stats.mean),
                      moment=np.zeros_like(stats.moment), weight=0.0, loglik=0.0, n_samples=0)
    got, want = _both(state, zero, covariance_type, "responsibility", 0.1)
    _assert_match(got, want)
    np.testing.assert_array_equal(got.weights, state.weights)
    np.testing.assert_array_equal(got.covariances, state.covariances)
    _assert_no_alias(got, state)


@pytest.mark.parametrize("covariance_type", TYPES)
def test_kernel_refuses_a_non_positive_covariance_as_numpy_does(covariance_type):
    state, stats = _state_and_stats(covariance_type, seed=2)
    stats = BatchStats(mass=stats.mass, mean=stats.mean, moment=np.zeros_like(stats.moment),
                       weight=stats.weight, loglik=0.0, n_samples=stats.n_samples)
    state = state.replace(moment=np.zeros_like(state.moment))
    for fast in (True, False):
        with pytest.raises(ValueError, match="ill-defined empirical covariance"):
            m_step(state, stats, eta=0.0, forgetting="responsibility",
                   covariance_type=covariance_type, reg_covar=0.0, fast=fast)


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_the_generic_path_and_other_types_do_not_use_the_kernel(kernel_calls, covariance_type):
    X, _, _ = blobs(n=200, K=3, D=3, seed=4)
    model = OnlineGaussianMixture(3, covariance_type=covariance_type, random_state=0)
    model.partial_fit(X[:100])
    st = model._state
    stats = BatchStats(mass=st.mass, mean=st.means, moment=st.moment, weight=float(st.mass.sum()),
                       loglik=0.0, n_samples=100)
    kernel_calls[0] = 0
    m_step(st, stats, eta=0.1, forgetting="responsibility", covariance_type=covariance_type,
           reg_covar=1e-6, fast=False)
    assert kernel_calls[0] == 0
    m_step(st, stats, eta=0.1, forgetting="responsibility", covariance_type=covariance_type,
           reg_covar=1e-6, fast=True)
    assert kernel_calls[0] == (covariance_type in TYPES)


@pytest.mark.parametrize("covariance_type", TYPES)
@pytest.mark.parametrize("forgetting", ["responsibility", "uniform"])
def test_a_stream_through_the_kernel_matches_the_numpy_m_step(monkeypatch, covariance_type,
                                                               forgetting):
    """Whole ``partial_fit`` streams (seeding, reseeding, forgetting, annealing): the fast
    M-step against the NumPy one, everything else the same."""
    X, _, _ = blobs(n=1200, K=4, D=6, seed=7)

    def run():
        model = OnlineGaussianMixture(6, covariance_type=covariance_type, forgetting=forgetting,
                                      forgetting_rate=0.05, temperature_init=2.0,
                                      anneal_steps=4, dead_threshold=0.3, random_state=0)
        for part in np.array_split(X, 12):
            model.partial_fit(part)
        return model

    fast = run()
    monkeypatch.setattr(_numba_backend, "MSTEP_KINDS", ())
    slow = run()
    assert fast.n_reseeded_ == slow.n_reseeded_
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        np.testing.assert_allclose(getattr(fast, name), getattr(slow, name), rtol=1e-9,
                                   err_msg=name)
