"""The block-parallel NumPy statistics (``online_gmm._backends.numba_backend``) against the
generic path."""

import numpy as np
import pytest
from sklearn import config_context

from online_gmm import OnlineGaussianMixture, core
from online_gmm._backends import check_kernels as _checks
from online_gmm._backends import kernels as _kernels
from online_gmm._backends import layout_kernels as _layout
from online_gmm._backends import numba_backend as _blocked

from .._data import blobs


def _fitted_state(covariance_type, dtype):
    X, _, _ = blobs(n=600, K=5, D=6, seed=1)
    model = OnlineGaussianMixture(5, covariance_type=covariance_type, random_state=0)
    for part in np.array_split(X.astype(dtype), 3):
        model.partial_fit(part)
    return model._state, X.astype(dtype)


#: The types with a block kernel.
BLOCKED_TYPES = [ct for ct in core.COVARIANCE_TYPES if core.covariance(ct).KERNEL_KIND is not None]


def _stats(X, w, state, ct, fast, inv_temp=0.7):
    p = core.state_prepared(state, ct, X.dtype, np)
    with core.use_backend("numba" if fast else "reference"):
        backend = core.select_backend(X)
    return backend.batch_statistics(X, w, p, inv_temp)


def _assert_close(a, b, rtol, scale=1.0):
    """``scale``: the size of the raw second-moment sums the centred moments cancel from."""
    # the fast path's exp is 0 at and below exp(EXP_FLOOR_F32), about float32's smallest
    # normal (it makes no denormals), the generic path's is not: a component with a mass
    # that small there has none here, and (by the convention of empty statistics) a zero
    # mean; means and moments are compared where the mass is well above it
    normal = np.asarray(b.mass) > 1e3 * np.exp(_kernels.EXP_FLOOR_F32)
    for name in ("mass", "mean", "moment"):
        got, want = np.asarray(getattr(a, name)), np.asarray(getattr(b, name))
        atol = rtol * max(np.abs(want).max(), scale if name == "moment" else 0)
        if name == "mean" or (name == "moment" and want.shape[:1] == normal.shape
                              and want.shape != (a.mean.shape[1],) * 2):  # not tied's
            got, want = got[normal], want[normal]
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, err_msg=name)
    assert a.weight == pytest.approx(b.weight, rel=1e-12)
    assert a.loglik == pytest.approx(b.loglik, rel=rtol)
    assert a.n_samples == b.n_samples


@pytest.fixture
def many_blocks(monkeypatch):
    """Every batch split into up to 3 blocks of at least 1 row."""
    monkeypatch.setattr(_blocked, "MIN_PARALLEL_WORK", 0)
    monkeypatch.setattr(_blocked, "MIN_BLOCK_ROWS", 1)
    monkeypatch.setattr(_blocked, "n_threads", lambda: 3)


@pytest.mark.parametrize("covariance_type", BLOCKED_TYPES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("n", [1, 2, 7, 301])
def test_blocks_equal_the_generic_path(many_blocks, covariance_type, dtype, weighted, n):
    state, X = _fitted_state(covariance_type, dtype)
    X = X[:n]
    rng = np.random.default_rng(n)
    w = rng.uniform(0, 2, n).astype(dtype) if weighted else np.ones(n, dtype=dtype)
    if weighted and n > 2:
        w[1] = 0.0
    assert _blocked.block_plan(n, 5, 6, X.itemsize)[0] == min(3, n)
    got = _stats(X, w, state, covariance_type, fast=True)
    want = _stats(X, w, state, covariance_type, fast=False)
    scale = float(np.sum(w[:, None] * np.asarray(X, np.float64) ** 2))
    _assert_close(got, want, rtol=2e-4 if dtype == np.float32 else 1e-10, scale=scale)
    assert got.mass.dtype == got.mean.dtype == got.moment.dtype == np.float64


@pytest.mark.parametrize("covariance_type", BLOCKED_TYPES)
def test_rounds_within_working_memory_equal_one_round(covariance_type):
    state, X = _fitted_state(covariance_type, np.float64)
    w = np.ones(len(X))
    whole = _stats(X, w, state, covariance_type, fast=True)
    row_bytes = 8 * (5 + 6 * 6 + 6)
    with config_context(working_memory=50 * row_bytes / 2**20):  # 50 rows at a time
        assert _blocked.block_plan(len(X), 5, 6, 8)[1] <= 50
        rounds = _stats(X, w, state, covariance_type, fast=True)
    _assert_close(rounds, whole, rtol=1e-11, scale=float(np.sum(X**2)))


def _small_blocks(monkeypatch, itemsize):
    """Blocks of at most 50 rows (at K = 5, D = 6): a batch of a few hundred rows runs more
    blocks than its 3 lanes (with ``many_blocks``)."""
    monkeypatch.setattr(_blocked, "MIN_CAPPED_ROWS", 1)
    monkeypatch.setattr(_blocked, "CACHE_BLOCK_BYTES", 50 * itemsize * (5 + 6 * 6 + 6))


@pytest.mark.parametrize("covariance_type", BLOCKED_TYPES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("weighted", [False, True])
def test_more_blocks_than_lanes_equal_the_generic_path(many_blocks, monkeypatch,
                                                       covariance_type, dtype, weighted):
    _small_blocks(monkeypatch, np.dtype(dtype).itemsize)
    state, X = _fitted_state(covariance_type, dtype)
    n = 301
    X = X[:n]
    w = (np.random.default_rng(0).uniform(0, 2, n) if weighted else np.ones(n)).astype(dtype)
    lanes, rows, per_round = _blocked.block_plan(n, 5, 6, X.itemsize)
    assert (lanes, per_round) == (3, 9) and rows <= 50  # 9 blocks of 34 rows, one round
    got = _stats(X, w, state, covariance_type, fast=True)
    want = _stats(X, w, state, covariance_type, fast=False)
    scale = float(np.sum(w[:, None] * np.asarray(X, np.float64) ** 2))
    _assert_close(got, want, rtol=2e-4 if dtype == np.float32 else 1e-10, scale=scale)


@pytest.mark.parametrize("covariance_type", BLOCKED_TYPES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_rounds_of_several_blocks_and_a_partial_last_round_equal_the_generic_path(
        many_blocks, monkeypatch, covariance_type, dtype):
    """Several rounds of more blocks than lanes, the last one partial, weighted rows, and
    the log-densities handed over a round at a time."""
    itemsize = np.dtype(dtype).itemsize
    _small_blocks(monkeypatch, itemsize)
    monkeypatch.setattr(_blocked, "MAX_ROUND_SUMS_BYTES", 6 * 8 * (5 * 14 + 36))
    state, X = _fitted_state(covariance_type, dtype)
    n = 301
    X = X[:n]
    w = np.random.default_rng(2).uniform(0, 2, n).astype(dtype)
    w[5] = 0.0
    lanes, rows, per_round = _blocked.block_plan(n, 5, 6, itemsize)
    n_blocks = -(-n // rows)
    assert (lanes, per_round) == (3, 6) and n_blocks == 9  # rounds of 6 and 3 blocks
    seen = np.full((n, 5), np.nan, dtype=dtype)

    def keep(rows_, logp):
        seen[rows_] = logp

    p = core.state_prepared(state, covariance_type, X.dtype, np)
    with core.use_backend("numba"):
        got = core.select_backend(X).batch_statistics(X, w, p, 0.7, on_log_density=keep)
    want = _stats(X, w, state, covariance_type, fast=False)
    scale = float(np.sum(w[:, None] * np.asarray(X, np.float64) ** 2))
    _assert_close(got, want, rtol=2e-4 if dtype == np.float32 else 1e-10, scale=scale)
    assert np.isfinite(seen).all()  # every row's log-densities, once


@pytest.mark.parametrize("covariance_type", BLOCKED_TYPES)
def test_a_blocks_sums_do_not_depend_on_its_lane(many_blocks, monkeypatch, covariance_type):
    """The same blocks on 1 lane and on 3 (each lane reusing its buffers from block to
    block): the same sums, to the bit."""
    _small_blocks(monkeypatch, 8)
    state, X = _fitted_state(covariance_type, np.float64)
    X = X[:300]
    w = np.random.default_rng(1).uniform(0.5, 2.0, 300)
    three = _blocked.block_plan(300, 5, 6, 8)
    got3 = _stats(X, w, state, covariance_type, fast=True)
    monkeypatch.setattr(_blocked, "n_threads", lambda: 1)
    one = _blocked.block_plan(300, 5, 6, 8)
    got1 = _stats(X, w, state, covariance_type, fast=True)
    assert three[0] == 3 and one[0] == 1 and three[1] == one[1] == 50
    for name in ("mass", "mean", "moment", "loglik", "weight"):
        np.testing.assert_array_equal(getattr(got1, name), getattr(got3, name), err_msg=name)


def test_the_plan_keeps_blocks_cache_sized_and_rounds_whole(monkeypatch):
    """A large batch: blocks within ``CACHE_BLOCK_BYTES`` (never below ``MIN_CAPPED_ROWS``
    rows), as many as a multiple of the lanes, one round unless the blocks' sums or
    ``working_memory`` call for more, and then whole turns of the lanes."""
    monkeypatch.setattr(_blocked, "n_threads", lambda: 2)
    for n, K, D, itemsize in [(8192, 64, 64, 8), (80_000, 32, 32, 8), (32_768, 1024, 16, 8),
                              (32_768, 1024, 64, 8), (2048, 8192, 256, 4), (1024, 64, 64, 8)]:
        lanes, rows, per_round = _blocked.block_plan(n, K, D, itemsize)
        row_bytes = itemsize * (K + 6 * D + 6)
        n_blocks = -(-n // rows)
        assert lanes == 2 and n_blocks % lanes == 0
        assert rows <= max(_blocked.MIN_CAPPED_ROWS, _blocked.CACHE_BLOCK_BYTES // row_bytes)
        assert rows == -(-n // n_blocks)  # equal blocks
        sums = 8 * (K * (2 * D + 2) + D * D)
        if per_round < n_blocks:
            assert per_round % lanes == 0 and (per_round + lanes) * sums > (
                _blocked.MAX_ROUND_SUMS_BYTES)
        assert per_round * sums <= max(_blocked.MAX_ROUND_SUMS_BYTES, lanes * sums)
    # the embedding step and a small step: one block per lane, as before
    assert _blocked.block_plan(1024, 4096, 256, 4) == (2, 512, 2)
    assert _blocked.block_plan(1024, 64, 64, 8) == (2, 512, 2)


def test_results_do_not_alias_the_reused_buffers(many_blocks):
    state, X = _fitted_state("diag", np.float64)
    w = np.ones(200)
    first = _stats(X[:200], w, state, "diag", fast=True)
    kept = {k: np.copy(getattr(first, k)) for k in ("mass", "mean", "moment")}
    _stats(X[200:400] + 3.0, w, state, "diag", fast=True)  # same shapes: same buffers
    for k, v in kept.items():
        np.testing.assert_array_equal(getattr(first, k), v)


def test_a_fit_is_deterministic_and_thread_count_only_moves_rounding(monkeypatch):
    X, _, _ = blobs(n=4000, K=8, D=16, seed=3)

    def run(threads):
        monkeypatch.setattr(_blocked, "MIN_PARALLEL_WORK", 0)
        monkeypatch.setattr(_blocked, "n_threads", lambda: threads)
        model = OnlineGaussianMixture(8, covariance_type="diag", random_state=0)
        for part in np.array_split(X, 8):
            model.partial_fit(part)
        return model

    a, b, one = run(2), run(2), run(1)
    np.testing.assert_array_equal(a.means_, b.means_)
    np.testing.assert_array_equal(a.covariances_, b.covariances_)
    np.testing.assert_allclose(a.means_, one.means_, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(a.covariances_, one.covariances_, rtol=1e-9)


@pytest.mark.parametrize("covariance_type", BLOCKED_TYPES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_statistics_from_the_state_equal_the_generic_path(many_blocks, covariance_type, dtype):
    """``state_statistics`` lays the parameters out itself (numba) instead of ``prepare``."""
    state, X = _fitted_state(covariance_type, dtype)
    w = np.ones(len(X), dtype=dtype)
    got = _blocked.state_statistics(state, covariance_type, X, w, 0.7)
    want = _stats(X, w, state, covariance_type, fast=False)
    scale = float(np.sum(np.asarray(X, np.float64) ** 2))
    _assert_close(got, want, rtol=2e-4 if dtype == np.float32 else 1e-10, scale=scale)


def _sharp_state(covariance_type, dtype, K=128, D=8):
    """A state at K far-apart clusters with small covariances, and rows of them: every row's
    posterior is one component's (the others' responsibilities are exactly 0, even in
    float64)."""
    rng = np.random.default_rng(7)
    centres = rng.normal(0, 40, (K, D))
    X = (centres[rng.integers(0, K, 900)] + rng.normal(0, 0.1, (900, D))).astype(dtype)
    model = OnlineGaussianMixture(K, covariance_type=covariance_type, random_state=0,
                                  means_init=centres, warmup_size=0)
    model.partial_fit(X)
    cov = 0.01 * core.covariance(covariance_type).identity(K, D, np, None)
    with core.use_backend("reference"):
        factors = core.select_backend(X).precision_cholesky(cov, covariance_type)
    return model._state.replace(covariances=cov, precisions_cholesky=factors), X


@pytest.mark.parametrize("covariance_type", BLOCKED_TYPES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("weighted", [False, True])
def test_sparse_responsibilities_give_the_generic_path_s_statistics(
        many_blocks, monkeypatch, covariance_type, dtype, weighted):
    """Posteriors with most responsibilities exactly 0: the blocks' statistics go entry by
    entry over the positive ones (``_sparse_sums``) and equal the generic path's and the
    dense products'."""
    state, X = _sharp_state(covariance_type, dtype)
    n, K = X.shape[0], state.means.shape[0]
    rng = np.random.default_rng(1)
    w = rng.uniform(0, 2, n).astype(dtype) if weighted else np.ones(n, dtype=dtype)
    if weighted:
        w[::7] = 0.0
    with core.use_backend("reference"):
        ref = core.select_backend(X)
    resp, _ = core.posterior(X, core.state_prepared(state, covariance_type, X.dtype, np), ref,
                             0.7)
    assert np.count_nonzero(resp) == n  # (the premise: one positive responsibility a row)
    # at these few columns the dense product is cheaper (sparse_pays): the sparse sums made
    # to run (a multiply-add of theirs costing one of the product's, their scan nothing)
    monkeypatch.setattr(_blocked, "SPARSE_COSTS", (1, 0))
    got = _stats(X, w, state, covariance_type, fast=True)
    want = _stats(X, w, state, covariance_type, fast=False)
    scale = float(np.sum(w[:, None] * np.asarray(X, np.float64) ** 2))
    rtol = 2e-4 if dtype == np.float32 else 1e-10
    _assert_close(got, want, rtol=rtol, scale=scale)
    assert np.count_nonzero(got.mass) == np.count_nonzero(want.mass) > K // 2
    monkeypatch.setattr(_blocked, "SPARSE_COSTS", (0, 0))  # the dense products
    dense = _stats(X, w, state, covariance_type, fast=True)
    _assert_close(got, dense, rtol=rtol, scale=scale)


def test_sparse_sums_run_where_they_cost_less_than_the_dense_product():
    """``sparse_pays`` with the measured costs: one-hot rows of K = 8,192 at D = 256 (258
    columns) go sparse; one in 16 positive, or few columns (D = 16), dense."""
    costs = _blocked.SPARSE_COSTS
    entries = 1024 * 8192
    assert _kernels.sparse_pays(1024, entries, 258, *costs)
    assert _kernels.sparse_pays(entries // 64, entries, 258, *costs)
    assert not _kernels.sparse_pays(entries // 16, entries, 258, *costs)
    assert not _kernels.sparse_pays(1024, 1024 * 256, 18, *costs)
    assert not _kernels.sparse_pays(0, entries, 258, 0, 0)  # (0, 0): always dense


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("unit", [True, False])
def test_sparse_sums_equal_the_dense_product(dtype, unit):
    rng = np.random.default_rng(3)
    rows, K, n_cols, lo, hi = 40, 300, 9, 5, 37  # (rows past hi - lo: padding, left out)
    G = np.where(rng.uniform(size=(rows, K)) < 0.02, rng.uniform(size=(rows, K)), 0.0)
    G[3, 64:128] = 0.0  # a whole run of the scan without a positive entry
    G[4, 127] = G[4, 128] = 0.5  # positive entries at a run's last and next run's first
    G = G.astype(dtype)
    A = rng.normal(size=(rows, n_cols)).astype(dtype)
    w = rng.uniform(0, 2, 50).astype(dtype)
    w[lo + 2] = 0.0
    S = np.full((K, n_cols), np.nan, dtype=dtype)
    _kernels._sparse_sums(G, A, w, lo, hi, unit, S)
    m = hi - lo
    wb = np.ones(m, dtype) if unit else w[lo:hi]
    want = G[:m].astype(np.float64).T @ (wb[:, None] * A[:m].astype(np.float64))
    np.testing.assert_allclose(S, want, rtol=1e-5 if dtype == np.float32 else 1e-12,
                               atol=1e-6 if dtype == np.float32 else 1e-13)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n", [3, 600])  # serial and parallel kernels
def test_softmax_of_sharp_rows_equals_the_reference(dtype, n):
    """Sharp rows (every term but one 1.5 floors below the top, where ``exp`` gives 0): the
    row kernel's softmax equals the reference's, and terms above the floor stay positive,
    at T = 1, below and above it."""
    floor = _kernels.EXP_FLOOR_F32 if dtype == np.float32 else _kernels.EXP_FLOOR_F64
    L = np.full((n, 300), 1.5 * floor, dtype=dtype)  # 1.5 floor below each row's top
    L[:, 7] = 0.0
    L[1, 200] = 0.4 * floor  # one term above the floor in a run of terms below it
    for inv_temp in (1.0, 2.0, 0.5):  # at 0.5, exp(0.75 floor) > 0: nothing skipped
        with core.use_backend("reference"):
            want = core.select_backend(L).soften(L.copy(), inv_temp)[0]
        got = core.select_backend(L).soften(L.copy(), inv_temp)[0]
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=0)
        assert (got[0, 8] > 0) == (inv_temp < 1.0)
        assert got[1, 200] > 0


def _layout_buffers(K, d, dt=np.float64):
    return [np.empty((K, 2 * d + 1), dt), np.empty(K, dt), np.empty(K, dt), np.empty(K, dt),
            np.empty(d, dt)]


@pytest.mark.parametrize("case", ["typical", "extreme", "crossing", "nan"])
def test_prepare_diag_log_det_as_a_product_equals_the_sum_of_logs(case):
    """``prepare_diag(..., logdet=None)`` takes ``log|U|`` as the log of a product (exponent
    moved out as it goes): the sum of logs, to rounding, at any scale."""
    from online_gmm._math.array_api import LOG_2PI

    rng = np.random.default_rng(0)
    K, d = 6, 300
    pc = rng.uniform(0.2, 5.0, (K, d))
    if case == "extreme":  # factors outside [1e-100, 1e100], alone and mixed
        pc[0] = 1e150
        pc[1] = 1e-150
        pc[2, ::2] = 1e-200
        pc[3, ::3] = 1e160
    elif case == "crossing":  # running products that leave [1e-100, 1e100] many times
        pc[0] = 1e99
        pc[1] = 1e-99
        pc[2] = np.where(np.arange(d) % 2, 1e95, 1e-95)
        pc[3] = np.exp(rng.uniform(-200, 200, d))
    elif case == "nan":
        pc[1, 7] = np.nan
    weights = np.full(K, 1.0 / K)
    means = rng.normal(size=(K, d))
    want = np.sum(np.log(pc), axis=1)
    a, b = _layout_buffers(K, d), _layout_buffers(K, d)
    _layout.prepare_diag(weights, means, pc, want, LOG_2PI, *a)
    _layout.prepare_diag(weights, means, pc, None, LOG_2PI, *b)
    for x, y in zip(a, b, strict=True):
        if x is a[3]:  # const: only the log-determinant differs
            finite = np.isfinite(want)
            np.testing.assert_allclose(y[finite], x[finite], rtol=1e-13,
                                       atol=1e-13 * np.abs(want[finite]).max())
            np.testing.assert_array_equal(np.isnan(y), np.isnan(x))
        else:
            np.testing.assert_array_equal(y, x)
    if case == "nan":
        assert np.isnan(b[3][1]) and np.isfinite(b[3][[0, 2, 3, 4, 5]]).all()


def test_unit_weights():

    for dt in (np.float64, np.float32):
        w = np.ones(50, dtype=dt)
        assert _checks.unit_weights(w)
        for bad in (0.0, np.nextafter(dt(1), dt(2)), np.nan, 2.0):
            v = w.copy()
            v[37] = bad
            assert not _checks.unit_weights(v)


@pytest.mark.parametrize("covariance_type", BLOCKED_TYPES)
@pytest.mark.parametrize("weighted", [False, True])
def test_a_step_plans_its_blocks_once_and_a_given_plan_is_followed(
    many_blocks, monkeypatch, covariance_type, weighted
):
    """``em_step`` makes the block plan once (it sets BLAS's threads and cuts the blocks);
    ``state_statistics`` with that plan equals planning there."""
    state, X = _fitted_state(covariance_type, np.float64)
    w = np.random.default_rng(0).uniform(0.5, 2.0, len(X)) if weighted else np.ones(len(X))
    plan = _blocked.block_plan(len(X), 5, 6, 8)
    assert plan[0] == 3
    got = _blocked.state_statistics(state, covariance_type, X, w, 0.7, plan)
    want = _blocked.state_statistics(state, covariance_type, X, w, 0.7)
    for name in ("mass", "mean", "moment"):
        np.testing.assert_array_equal(getattr(got, name), getattr(want, name))
    assert (got.weight, got.loglik, got.n_samples) == (want.weight, want.loglik, want.n_samples)
    assert got.weight == float(np.sum(w))

    calls = []
    original = _blocked.block_plan
    monkeypatch.setattr(_blocked, "block_plan", lambda *a: calls.append(a) or original(*a))
    config = core.EMConfig(5, covariance_type=covariance_type)
    new, info = core.em_step(state, X, w, config=config, temperature=1.0 / 0.7,
                             forgetting_rate=0.0, rng=np.random.RandomState(0),
                             backend=core.select_backend(X))
    assert len(calls) == 1
    assert info.loglik == want.loglik and info.weight == want.weight


class _Capture:
    """An ``on_log_density``: the chunks' log-densities gathered into one (n, K) array,
    with or without an ``array`` of its own for the backend to write into."""

    def __init__(self, n, K, dtype, own):
        self.seen = np.full((n, K), np.nan, dtype=dtype)
        self.array = self.seen if own else None
        self.calls = 0

    def __call__(self, rows, logp):
        self.calls += 1
        if logp is not self.array and not np.shares_memory(logp, self.seen):
            self.seen[rows] = logp


@pytest.mark.parametrize("covariance_type", BLOCKED_TYPES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("own", [False, True])
@pytest.mark.parametrize("rounds", [False, True])
def test_block_kernels_hand_over_the_estep_log_densities(many_blocks, covariance_type, dtype,
                                                         own, rounds):
    """``on_log_density`` gets the block kernels' own log-densities (every row once, in
    order, over several blocks and rounds), equal to the generic E-step's, and the
    statistics are those without it."""
    state, X = _fitted_state(covariance_type, dtype)
    w = np.ones(len(X), dtype=dtype)
    p = core.state_prepared(state, covariance_type, X.dtype, np)
    with core.use_backend("reference"):
        reference = core.select_backend(X)
    want = core.weighted_log_density(X, p, reference)
    row_bytes = 8 * (5 + 6 * 6 + 6)
    with config_context(working_memory=(50 if rounds else 10**4) * row_bytes / 2**20):
        capture = _Capture(len(X), 5, dtype, own)
        got = _blocked.state_statistics(state, covariance_type, X, w, 0.7,
                                        on_log_density=capture)
        plain = _blocked.state_statistics(state, covariance_type, X, w, 0.7)
    assert capture.calls >= 2 if rounds else capture.calls == 1
    tol = dict(rtol=1e-4, atol=1e-3) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-8)
    np.testing.assert_allclose(capture.seen, want, **tol)
    for name in ("mass", "mean", "moment"):
        np.testing.assert_array_equal(getattr(got, name), getattr(plain, name))
    assert got.loglik == plain.loglik


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("inv_temp", [1.0, 2.5, 0.3])
@pytest.mark.parametrize("n", [3, 600])  # serial and parallel kernels
def test_softmax_of_the_numba_backend_equals_the_reference(dtype, inv_temp, n):
    rng = np.random.default_rng(0)
    L = (rng.normal(size=(n, 700)) * 400 - 3000).astype(dtype)  # thousands of nats apart
    L[0, :5] = -np.inf  # weightless components
    with core.use_backend("reference"):
        want, want_ll = core.select_backend(L).soften(L, inv_temp)
    own = L.copy()
    got, ll = core.select_backend(own).soften(own, inv_temp)
    assert got is own  # in place
    assert got.dtype == dtype
    # (both round l * inv_temp, thousands of nats, to the dtype: relative errors of the
    # probabilities up to a few eps times that)
    rtol = 8 * np.finfo(dtype).eps * np.abs(L[np.isfinite(L)]).max() * max(inv_temp, 1.0)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=1e-6 if dtype == np.float32
                               else 1e-12)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(ll, want_ll, rtol=1e-6 if dtype == np.float32 else 1e-12)
    assert np.all(got[0, :5] == 0)
    strided = L[:, ::2]  # not contiguous: a new array, L untouched
    before = L.copy()
    out = core.select_backend(strided).soften(strided, inv_temp)[0]
    np.testing.assert_array_equal(L, before)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)
