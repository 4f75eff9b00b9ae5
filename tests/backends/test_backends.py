"""The backend interface: one rule chooses the implementation, and every operation of the
numba backend equals the reference's (the array-API code) to rounding.

Operations tested elsewhere against the reference: the block statistics
(``test_blocked.py``), the M-step kernel (``test_mstep_kernels.py``), the batched precision
factors (``test_gaussian.py``), whole streams (``test_array_api.py``)."""

from __future__ import annotations

import numpy as np
import pytest

from online_gmm import OnlineGaussianMixture, core

from .._data import blobs

TYPES = list(core.COVARIANCE_TYPES)


def _backends(X):
    with core.use_backend("reference"):
        reference = core.select_backend(X)
    return core.select_backend(X), reference


def test_one_rule_chooses_the_backend():
    torch = pytest.importorskip("torch", reason="torch is the torch extra")
    X = np.zeros((3, 2))
    assert core.select_backend(X).name == "numba"
    assert core.select_backend(torch.zeros(3, 2)).name == "reference"
    with core.use_backend("reference"):
        assert core.select_backend(X).name == "reference"
        assert core.host_view(torch.zeros(3, 2)).__class__ is torch.Tensor
        with core.use_backend("numba"):
            assert core.select_backend(X).name == "numba"
    assert isinstance(core.host_view(torch.zeros(3, 2)), np.ndarray)
    with pytest.raises(ValueError, match="backend"):
        with core.use_backend("gpu"):
            pass


@pytest.mark.parametrize("covariance_type", TYPES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("inv_temp", [1.0, 0.4])
def test_finish_and_statistics_equal_the_reference(covariance_type, dtype, inv_temp):
    X, _, _ = blobs(n=300, K=4, D=5, seed=3)
    X = X.astype(dtype)
    model = OnlineGaussianMixture(4, covariance_type=covariance_type, random_state=0)
    model.partial_fit(X[:150])
    fast, ref = _backends(X)
    p = core.state_prepared(model._state, covariance_type, X.dtype, fast.xp)
    rtol = 2e-4 if dtype == np.float32 else 1e-10
    r_fast, ll_fast = core.posterior(X, p, fast, inv_temp)
    r_ref, ll_ref = core.posterior(X, p, ref, inv_temp)
    assert r_fast.dtype == r_ref.dtype == dtype
    np.testing.assert_allclose(r_fast, r_ref, rtol=rtol, atol=rtol * 1e-3)
    np.testing.assert_allclose(ll_fast, ll_ref, rtol=rtol)
    np.testing.assert_allclose(core.weighted_log_density(X, p, fast),
                               core.weighted_log_density(X, p, ref), rtol=rtol)
    w = np.random.default_rng(1).uniform(0, 2, len(X)).astype(dtype)
    got = fast.state_statistics(model._state, covariance_type, X, w, inv_temp)
    want = ref.state_statistics(model._state, covariance_type, X, w, inv_temp)
    np.testing.assert_allclose(got.mass, want.mass, rtol=rtol)
    np.testing.assert_allclose(got.mean, want.mean, rtol=rtol, atol=rtol)
    scale = float(np.sum(w[:, None] * np.asarray(X, np.float64) ** 2))
    np.testing.assert_allclose(got.moment, want.moment, rtol=rtol, atol=rtol * scale * 1e-3)
    assert got.loglik == pytest.approx(want.loglik, rel=rtol)


def test_all_finite_agrees():
    fast, ref = _backends(np.zeros(1))
    for a in (np.ones((3, 4)), np.array([1.0, np.nan]), np.array([np.inf]),
              np.array([-np.inf, 1.0]), np.array([np.nan, np.inf, -np.inf]),
              np.full(5, np.nan), np.array([np.finfo(np.float64).max, -1e308]),
              np.ones((4, 3), dtype=np.float32).T, np.zeros((0, 3)), np.arange(4),
              np.array([True, False])):
        assert fast.all_finite(a) == ref.all_finite(a) == bool(np.isfinite(a).all()), a
    torch = pytest.importorskip("torch", reason="torch is the torch extra")
    with core.use_backend("reference"):
        on_torch = core.select_backend(torch.zeros(1))
    for a in (torch.tensor([1.0, float("nan")]), torch.tensor([[2.0], [float("-inf")]]),
              torch.ones(3, dtype=torch.float32), torch.zeros(0)):
        assert bool(on_torch.finite_flag(a)) == bool(torch.isfinite(a).all())


@pytest.mark.parametrize("covariance_type", TYPES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_statistics_over_many_chunks_equal_one_chunk(covariance_type, dtype):
    """The reference E-step's chunks' sums, added up in place (one chunk's memory), are the
    statistics of the batch in one chunk, to rounding."""
    X, _, _ = blobs(n=300, K=4, D=5, seed=3)
    X = X.astype(dtype)
    model = OnlineGaussianMixture(4, covariance_type=covariance_type, random_state=0)
    model.partial_fit(X[:150])
    w = np.random.default_rng(1).uniform(0, 2, len(X)).astype(dtype)
    row_bytes = core.covariance(covariance_type).row_bytes(4, 5, 8)
    chunks = []
    results = []
    for working_memory in (None, 11 * row_bytes / 2**20):  # one chunk, and chunks of 11 rows
        with core.use_backend("reference"):
            ref = core.select_backend(X, working_memory=working_memory)
        results.append(ref.state_statistics(
            model._state, covariance_type, X, w, 0.7,
            on_log_density=lambda rows, logp: chunks.append(rows)))
    assert len(chunks) == 1 + 28
    one, many = results
    # (float32: the raw sums' rounding, as between the two backends above; from one chunk
    # the centred moments are no more exact than from 28)
    rtol = 2e-4 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(many.mass, one.mass, rtol=rtol)
    np.testing.assert_allclose(many.mean, one.mean, rtol=rtol, atol=rtol)
    scale = float(np.sum(w[:, None] * np.asarray(X, np.float64) ** 2))
    np.testing.assert_allclose(many.moment, one.moment, rtol=rtol, atol=rtol * scale * 1e-3)
    assert many.loglik == pytest.approx(one.loglik, rel=rtol)
    assert many.weight == pytest.approx(one.weight, rel=1e-12)
    assert many.n_samples == one.n_samples == len(X)


@pytest.mark.parametrize("covariance_type", TYPES)
def test_an_m_step_made_in_the_statistics_arrays_is_the_same_step(covariance_type):
    """``m_step(..., consume=True)`` (the step's own statistics, made into the new means and
    moment in place) gives the same state, to the bit, as the M-step that leaves them be;
    neither changes the state, and the latter not the statistics."""
    import copy

    X, _, _ = blobs(n=300, K=4, D=5, seed=3)
    model = OnlineGaussianMixture(4, covariance_type=covariance_type, random_state=0)
    model.partial_fit(X[:150])
    state = model._state
    before = copy.deepcopy(state)
    with core.use_backend("reference"):
        ref = core.select_backend(X)
    kw = dict(eta=0.05, forgetting="responsibility", covariance_type=covariance_type,
              reg_covar=1e-6)
    kept = ref.state_statistics(state, covariance_type, X[150:], np.ones(150), 1.0)
    kept_copy = copy.deepcopy(kept)
    own = ref.state_statistics(state, covariance_type, X[150:], np.ones(150), 1.0)
    a = ref.m_step(state, kept, **kw)
    b = ref.m_step(state, own, consume=True, **kw)
    for name in core.STATE_FIELDS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
        np.testing.assert_array_equal(getattr(state, name), getattr(before, name))
    np.testing.assert_array_equal(kept.mean, kept_copy.mean)
    np.testing.assert_array_equal(kept.moment, kept_copy.moment)
    assert b.means is own.mean and b.moment is own.moment  # (made in place)
    assert a.means is not kept.mean and a.moment is not kept.moment


@pytest.mark.parametrize("covariance_type", TYPES)
def test_a_step_of_either_backend_is_the_same_step(covariance_type):
    """``advance`` on the numba and the reference backend: the same new state (to rounding),
    the same counters, the same RNG draws."""
    X, _, _ = blobs(n=400, K=4, D=3, seed=5)
    results = []
    for name in ("numba", "reference"):
        with core.use_backend(name):
            backend = core.select_backend(X)
        rng = np.random.RandomState(0)
        state = core.empty_state(4, 3, covariance_type, backend.xp, "cpu")
        config = core.EMConfig(4, covariance_type=covariance_type)
        for part in np.array_split(X, 4):
            state, info = core.advance(state, part, np.ones(len(part)), config=config,
                                          schedules=core.Schedules(forgetting_rate=0.01),
                                          step=0, rng=rng, backend=backend)
        results.append((state, info, rng.randint(1 << 30)))
    (a, ia, ra), (b, ib, rb) = results
    assert ra == rb and ia.n_seeded == ib.n_seeded
    for name in core.STATE_FIELDS:
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=1e-9, atol=1e-12,
                                   err_msg=name)


def test_both_backends_and_every_covariance_type_implement_their_interfaces():
    from online_gmm._backends.numba_backend import NumbaBackend
    from online_gmm._backends.protocol import Backend
    from online_gmm._backends.reference import ReferenceBackend
    from online_gmm._math.covariance import COVARIANCE_TYPES, CovarianceType, covariance

    for cls in (ReferenceBackend, NumbaBackend):
        assert isinstance(cls(np), Backend), cls
    for name in COVARIANCE_TYPES:
        assert isinstance(covariance(name), CovarianceType), name
    assert not isinstance(np, CovarianceType)  # (the check can fail)


@pytest.mark.parametrize("covariance_type", ["diag", "spherical"])
def test_many_float32_chunks_keep_the_centred_moments_digits(covariance_type):
    """Float32 rows in 300 chunks of one row: the chunks' sums are added in float64, so the
    centred moments keep the accuracy of the pairwise merge (in float32, totals over many
    chunks lost about 1000x of it, from the raw sums' cancellation)."""
    rng = np.random.default_rng(0)
    K, D, n = 3, 4, 300
    mu = rng.normal(size=(K, D)) * 30.0 + 1e3
    X = (mu[rng.integers(0, K, n)] + rng.normal(size=(n, D))).astype(np.float32)
    state = core.empty_state(K, D, covariance_type, np, "cpu").replace(
        weights=np.full(K, 1 / K), means=mu, seeded=np.ones(K, bool),
        covariances=core.covariance(covariance_type).identity(K, D, np, "cpu"),
        precisions_cholesky=core.covariance(covariance_type).identity(K, D, np, "cpu"))
    row_bytes = core.covariance(covariance_type).row_bytes(K, D, 8)
    with core.use_backend("reference"):
        chunked = core.select_backend(X, working_memory=row_bytes / 2**20)
        got = chunked.state_statistics(state, covariance_type, X, np.ones(n, np.float32), 1.0)
        exact = core.select_backend(X.astype(np.float64)).state_statistics(
            state, covariance_type, X.astype(np.float64), np.ones(n), 1.0)
    err = np.max(np.abs(got.moment - exact.moment) / np.abs(exact.moment))
    assert err < 1e-5, err


def test_full_scatters_of_far_apart_tight_components_do_not_cancel():
    """``full``'s scatters are summed about the components' own means (the E-step's), not
    the mixture's: components 1e3 apart with spreads of 0.01 keep their scatters to ~1e-9
    relative (about the mixture's mean, to ~1e-7)."""
    rng = np.random.default_rng(3)
    K, D, n = 4, 3, 4_000
    mu = rng.normal(size=(K, D)) * 1e3
    sd = rng.uniform(1e-2, 1, size=(K, D))
    z = rng.integers(0, K, n)
    X = mu[z] + sd[z] * rng.normal(size=(n, D))
    state = core.empty_state(K, D, "full", np, "cpu").replace(
        weights=np.full(K, 1 / K), means=mu, seeded=np.ones(K, bool),
        covariances=np.stack([np.diag(s**2) for s in sd]),
        precisions_cholesky=np.stack([np.diag(1 / s) for s in sd]))
    with core.use_backend("reference"):
        backend = core.select_backend(X, working_memory=1.0)  # (several chunks)
        R = np.asarray(core.posterior(X, core.state_prepared(state, "full", X.dtype, np),
                                      backend)[0])
        stats = backend.state_statistics(state, "full", X, np.ones(n), 1.0)
    mean = (R.T @ X) / R.sum(0)[:, None]
    for k in range(K):
        want = ((X - mean[k]) * R[:, k:k + 1]).T @ (X - mean[k])
        err = np.abs(stats.moment[k] - want).max() / np.diag(want).min()
        assert err < 1e-9, (k, err)


@pytest.mark.parametrize(("backend_name", "covariance_type"), [
    ("numba", "full"), ("reference", "full"), ("reference", "diag"),  # (numba's diag M-step
])                                                                     # is its own kernel)
def test_a_hook_s_statistics_are_not_taken_over_by_the_m_step(backend_name, covariance_type):
    """Statistics a ``reduce`` hook returns (read-only, or kept by the hook) are not made into
    the new state in place, as the step's own are: the step works, the hook's arrays are
    unchanged, and the committed state does not change with the next step."""
    import dataclasses

    rng = np.random.default_rng(0)
    X = rng.normal(size=(256, 3)) + 3 * rng.integers(0, 3, size=(256, 1))
    with core.use_backend(backend_name):
        backend = core.select_backend(X)
    config = core.EMConfig(3, covariance_type=covariance_type)

    def advance(state, step, hooks=core.NO_HOOKS):
        return core.advance(state, X, np.ones(256), config=config, schedules=core.Schedules(),
                            step=step, rng=np.random.RandomState(0), backend=backend,
                            hooks=hooks)[0]

    state = advance(core.empty_state(3, 3, covariance_type, np, "cpu"), 0)

    def read_only(stats):  # (as statistics received from another process would be)
        arrays = {}
        for name in ("mean", "moment"):
            a = np.array(getattr(stats, name))
            a.flags.writeable = False
            arrays[name] = a
        return dataclasses.replace(stats, **arrays)

    new = advance(state, 1, core.Hooks(reduce=read_only))
    before = {name: np.copy(getattr(new, name)) for name in core.STATE_FIELDS}
    advance(new, 2, core.Hooks(reduce=read_only))
    for name in core.STATE_FIELDS:
        np.testing.assert_array_equal(getattr(new, name), before[name], err_msg=name)


@pytest.mark.parametrize("covariance_type", TYPES)
def test_a_component_without_mass_has_a_zero_batch_mean_on_either_backend(covariance_type):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 3))
    K = 3
    state = core.empty_state(K, 3, covariance_type, np, "cpu").replace(
        weights=np.array([0.5, 0.5, 0.0]), means=np.array([[0.0] * 3, [1.0] * 3, [9.0] * 3]),
        seeded=np.array([True, True, False]))
    means = []
    for name in ("numba", "reference"):
        with core.use_backend(name):
            backend = core.select_backend(X)
        stats = backend.state_statistics(state, covariance_type, X, np.ones(50), 1.0)
        assert stats.mass[2] == 0.0
        means.append(stats.mean[2])
    np.testing.assert_array_equal(means[0], np.zeros(3))
    np.testing.assert_array_equal(means[1], np.zeros(3))


def test_float32_chunks_add_up_on_array_api_strict_for_any_k():
    """The float32 chunks' sums added into the float64 totals in row blocks (K = 13: blocks
    of 2, the last one short) on array-api-strict, whose slices are views that refuse a stop
    past the end: the same statistics as one chunk."""
    xps = pytest.importorskip("array_api_strict", reason="array-api-strict is a test extra")
    rng = np.random.default_rng(0)
    K, D, n = 13, 3, 120
    X = rng.normal(size=(n, D)).astype(np.float32)
    for covariance_type in ("diag", "spherical"):
        state = core.empty_state(K, D, covariance_type, np, "cpu").replace(
            weights=np.full(K, 1 / K), means=rng.normal(size=(K, D)), seeded=np.ones(K, bool))
        strict = core.MixtureState(*(xps.asarray(getattr(state, f)) for f in core.STATE_FIELDS))
        Xs, w = xps.asarray(X), xps.ones(n, dtype=xps.float32)
        row_bytes = core.covariance(covariance_type).row_bytes(K, D, 8)
        results = []
        with core.use_backend("reference"):
            for working_memory in (None, 7 * row_bytes / 2**20):
                backend = core.select_backend(Xs, working_memory=working_memory)
                results.append(backend.state_statistics(strict, covariance_type, Xs, w, 1.0))
        one, many = results
        for name in ("mass", "mean", "moment"):
            np.testing.assert_allclose(np.asarray(getattr(many, name)),
                                       np.asarray(getattr(one, name)), rtol=2e-4, atol=1e-5,
                                       err_msg=name)


def test_row_sq_norms_without_the_linalg_extension():
    import types

    from online_gmm._math.covariance._common import row_sq_norms

    x = np.random.default_rng(0).normal(size=(5, 4))
    plain = types.SimpleNamespace(sum=np.sum)  # (a namespace without ``linalg``)
    np.testing.assert_allclose(row_sq_norms(x, plain), np.sum(x * x, axis=1), rtol=0)
    import array_api_compat.numpy as npx

    np.testing.assert_allclose(row_sq_norms(x, npx), np.sum(x * x, axis=1), rtol=1e-14)


def test_large_sums_are_made_a_block_of_components_at_a_time():
    """A large mixture's chunk sums come in 8 blocks of components (a fixed number, not one
    per component); a small mixture's, and ``tied``'s (summed over all components), in one."""
    from online_gmm._math import estep

    spherical, tied = core.covariance("spherical"), core.covariance("tied")
    assert estep._component_blocks(spherical, 64, 64) == [slice(None)]
    blocks = estep._component_blocks(spherical, 65_536, 256)
    assert len(blocks) == 8 and blocks[0] == slice(0, 8_192) and blocks[-1].stop == 65_536
    assert len(estep._component_blocks(spherical, 8_195, 256)) == 8  # (the last one short)
    assert estep._component_blocks(tied, 65_536, 256) == [slice(None)]


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_chunks", [1, 3])
@pytest.mark.parametrize("library", ["numpy", "torch"])
def test_statistics_made_in_component_blocks_equal_the_whole_chunk_s(
        covariance_type, dtype, n_chunks, library, monkeypatch):
    """The statistics of sums made a block of components at a time (forced here for a small
    mixture, K = 13: blocks of 2, the last one short) equal those of the whole chunk's, to
    the rounding of the data's dtype (NumPy, and PyTorch: the CUDA code path's ops)."""
    from online_gmm._math import estep

    rng = np.random.default_rng(0)
    K, D, n = 13, 4, 90
    X = (rng.normal(size=(n, D)) + 3.0).astype(dtype)
    w = rng.uniform(0.5, 2.0, size=n).astype(dtype)
    state = core.empty_state(K, D, covariance_type, np, "cpu").replace(
        weights=np.full(K, 1 / K), means=rng.normal(size=(K, D)) + 3.0,
        seeded=np.ones(K, bool))
    if library == "torch":
        torch = pytest.importorskip("torch", reason="torch is the torch extra")
        X, w = torch.from_numpy(X), torch.from_numpy(w)
        state = core.MixtureState(*(torch.from_numpy(np.asarray(getattr(state, f)))
                                    for f in core.STATE_FIELDS))
    row_bytes = core.covariance(covariance_type).row_bytes(K, D, 8)
    memory = None if n_chunks == 1 else (n // n_chunks) * row_bytes / 2**20
    results = []
    with core.use_backend("reference"):
        for split_from in (estep._SPLIT_FROM, 0):
            monkeypatch.setattr(estep, "_SPLIT_FROM", split_from)
            backend = core.select_backend(X, working_memory=memory)
            results.append(backend.state_statistics(state, covariance_type, X, w, 1.0))
    whole, blocked = results
    rtol = 1e-5 if dtype == np.float32 else 1e-12  # (a block's product: another BLAS order)
    for name in ("mass", "mean", "moment", "loglik"):
        np.testing.assert_allclose(np.asarray(getattr(blocked, name)),
                                   np.asarray(getattr(whole, name)), rtol=rtol, atol=0,
                                   err_msg=name)


def test_a_mixed_dtype_add_is_one_op_off_the_cpu_and_row_blocks_on_it():
    """A float32 sum added to a float64 total: on the CPU in row blocks (PyTorch's CPU path
    copies an operand of another dtype whole first), elsewhere one op (a CUDA kernel casts
    as it reads; every op is a launch). The meta device stands in for CUDA here."""
    torch = pytest.importorskip("torch", reason="torch is the torch extra")
    from torch.utils._python_dispatch import TorchDispatchMode

    from online_gmm._math import estep

    class Adds(TorchDispatchMode):
        n = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.n += func.overloadpacket.__name__ == "add_"
            return func(*args, **(kwargs or {}))

    counts = {}
    for where in ("cpu", "meta"):
        total = torch.zeros(64, 5, dtype=torch.float64, device=where)
        with Adds() as adds:
            estep._add_into(total[8:40, ...], torch.ones(32, 5, device=where))
        counts[where] = adds.n
    assert counts == {"cpu": estep._MIXED_ADD_BLOCKS, "meta": 1}
    total = torch.zeros(64, 5, dtype=torch.float64)
    estep._add_into(total[8:40, ...], torch.ones(32, 5))
    assert float(total.sum()) == 160.0 and float(total[:8].abs().sum()) == 0.0
