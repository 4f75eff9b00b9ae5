"""The warm-up (contract, "Warm-up"): a buffered start with restarts, a provisional model
until the buffer is full, nothing counted twice, exact resume."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.mixture import GaussianMixture

from online_gmm import OnlineGaussianMixture
from online_gmm._em import warmup as _warmup

from .._data import blobs

TYPES = ["full", "tied", "diag", "spherical"]


def _stream(n=6000, D=4, K=6, seed=0):
    X, _, _ = blobs(n=n, K=K, D=D, seed=seed)
    return X


@pytest.fixture
def to_the_limit(monkeypatch):
    """The refinement at every doubling, to the limit: no early stop (on these easy blobs a
    refinement gains less than the tolerance at once, and the warm-up ends there)."""
    monkeypatch.setattr(_warmup, "TOL_PER_FEATURE", 0.0)


@pytest.mark.parametrize("covariance_type", TYPES)
def test_nothing_is_counted_twice(covariance_type):
    X = _stream()
    w = np.random.default_rng(1).uniform(0.0, 2.0, len(X))
    model = OnlineGaussianMixture(6, covariance_type=covariance_type, warmup_size=2000,
                                  random_state=0)
    for Xb, wb in zip(np.array_split(X, 23), np.array_split(w, 23), strict=True):
        model.partial_fit(Xb, sample_weight=wb)
    assert model._warmup is None  # done
    assert model.n_samples_seen_ == len(X)
    # no forgetting: every weighted row is evidence exactly once, no seed mass left
    assert model._state.mass.sum() == pytest.approx(w.sum(), rel=1e-10)
    assert model._state.nu.sum() == pytest.approx(w.sum(), rel=1e-10)


def test_the_provisional_model_predicts_before_the_buffer_is_full():
    X = _stream()
    model = OnlineGaussianMixture(6, warmup_size=5000, random_state=0)
    model.partial_fit(X[:300])
    assert model._warmup is not None and model._warmup.n_rows == 300
    assert model.predict(X[:10]).shape == (10,)
    # ... and it is the model of a stream without warm-up (the step is the ordinary one)
    plain = OnlineGaussianMixture(6, warmup_size=0, random_state=0).partial_fit(X[:300])
    np.testing.assert_array_equal(model.means_, plain.means_)


def test_resume_in_the_middle_of_the_warm_up_is_bit_identical():
    X = _stream()
    batches = np.array_split(X, 30)
    whole = OnlineGaussianMixture(6, warmup_size=3000, random_state=0)
    for b in batches:
        whole.partial_fit(b)
    part = OnlineGaussianMixture(6, warmup_size=3000, random_state=0)
    for b in batches[:7]:
        part.partial_fit(b)
    assert part._warmup is not None
    resumed = pickle.loads(pickle.dumps(part))
    assert len(pickle.dumps(part)) < 2 * (part._warmup.n_rows * 4 * 8) + 20_000  # rows only
    for b in batches[7:]:
        resumed.partial_fit(b)
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        np.testing.assert_array_equal(getattr(resumed, name), getattr(whole, name))


def test_one_pass_with_the_warm_up_is_as_good_as_batch_em_on_overlapping_blobs():
    """32 overlapping clusters in 16-D, batches of 128: seeding from the first batch
    (k-means++ on 128 rows) leaves one pass 2.4 % below batch EM; the warm-up closes it."""
    rng = np.random.default_rng(0)
    K, D = 32, 16
    centres = rng.normal(0, 1.6, (K, D))
    X = centres[rng.integers(0, K, 30000)] + rng.normal(size=(30000, D))
    train, test = X[:25000], X[25000:]
    ref = GaussianMixture(K, covariance_type="diag", n_init=3, random_state=0).fit(train)
    gaps = {}
    for size in (0, 8192, K * 64, "auto"):  # (an int: the restarts only; "auto" refines)
        for seed in range(3):
            model = OnlineGaussianMixture(K, warmup_size=size, random_state=seed)
            for b in np.array_split(train, 25000 // 128):
                model.partial_fit(b)
            gap = (ref.score(test) - model.score(test)) / abs(ref.score(test))
            gaps.setdefault(size, []).append(gap)
    assert max(gaps[8192]) < 0.01 and max(gaps["auto"]) < 0.01
    assert np.mean(gaps[8192]) < np.mean(gaps[0]) - 0.005
    assert np.mean(gaps["auto"]) < np.mean(gaps[0]) - 0.005
    # the refinement at each doubling beats the restarts alone (on average over seeds:
    # both end about 0.4 % above batch EM, one seed's order is a draw)
    assert np.mean(gaps["auto"]) < np.mean(gaps[K * 64])


def test_fit_runs_the_warm_up_on_its_seeding_sample(monkeypatch):
    calls = []
    original = _warmup.warm_state
    monkeypatch.setattr(_warmup, "warm_state",
                        lambda X, w, **kw: calls.append(len(X)) or original(X, w, **kw))
    X = _stream()
    model = OnlineGaussianMixture(6, warmup_size=1500, random_state=0).fit(X)
    assert calls == [1500]
    calls.clear()  # "auto": the restarts on 64 rows per component of the sample
    OnlineGaussianMixture(6, random_state=0).fit(X)
    assert calls == [6 * 64]
    assert model._warmup is None and model.converged_


def test_fit_runs_batch_em_to_tol_on_its_seeding_sample():
    """fit's seeding: the best restart's EM goes on, on the sample, until ``tol``; on
    overlapping blobs that fit within 0.5 % of batch EM (the epochs start from the
    sample's optimum, not five iterations' way to it)."""
    rng = np.random.default_rng(0)
    K, D = 32, 16
    centres = rng.normal(0, 1.6, (K, D))
    X = centres[rng.integers(0, K, 30000)] + rng.normal(size=(30000, D))
    train, test = X[:25000], X[25000:]
    ref = GaussianMixture(K, covariance_type="diag", n_init=3, random_state=0).fit(train)
    model = OnlineGaussianMixture(K, random_state=0).fit(train)
    assert (ref.score(test) - model.score(test)) / abs(ref.score(test)) < 0.005


def test_means_init_or_a_zero_size_turns_it_off():
    X = _stream()
    means = X[:6]
    assert OnlineGaussianMixture(6, means_init=means).partial_fit(X[:100])._warmup is None
    assert OnlineGaussianMixture(6, warmup_size=0).partial_fit(X[:100])._warmup is None


def test_the_buffer_is_capped_in_memory():
    buf = _warmup.start(10**9, 3, n_features=256, itemsize=4)
    assert buf.size * 256 * 4 <= _warmup.MAX_BUFFER_BYTES
    assert _warmup.start(0, 3, 4, 8) is None


def test_the_pickle_free_file_keeps_the_warm_up_buffer_on_request(tmp_path):
    from online_gmm import load, save

    X = _stream()
    model = OnlineGaussianMixture(6, warmup_size=2000, random_state=0)
    model.partial_fit(X[:500])
    save(model, tmp_path / "m.npz", include_warmup_buffer=True)
    loaded = load(tmp_path / "m.npz")
    assert loaded._warmup == model._warmup and loaded._warmup.n_rows == 500
    for m in (model, loaded):
        m.partial_fit(X[500:])
    np.testing.assert_array_equal(loaded.means_, model.means_)
    assert loaded._warmup is None


def test_auto_holds_64_rows_per_component_at_most_32768():
    X = _stream()
    assert OnlineGaussianMixture(6).partial_fit(X[:50])._warmup.size == 6 * 64
    assert _warmup.resolve_size("auto", 4096) == 32768
    assert _warmup.sample_size("auto") == 32768 and _warmup.sample_size(500) == 500


@pytest.mark.parametrize("covariance_type", TYPES)
def test_auto_refines_at_each_doubling_and_counts_nothing_twice(covariance_type, monkeypatch,
                                                                to_the_limit):
    calls = []
    original = _warmup.refined_state
    monkeypatch.setattr(_warmup, "refined_state",
                        lambda s, X, w, **kw: calls.append(len(X)) or original(s, X, w, **kw))
    X = _stream()
    w = np.random.default_rng(1).uniform(0.1, 2.0, len(X))
    model = OnlineGaussianMixture(6, covariance_type=covariance_type, random_state=0)
    for Xb, wb in zip(np.array_split(X, 23), np.array_split(w, 23), strict=True):
        model.partial_fit(Xb, sample_weight=wb)
        if model._warmup.refining:  # (the provisional state has its seeds' prior mass)
            # every weighted row is evidence exactly once, at and between the marks
            held = model._warmup.w[: model._warmup.n_rows].sum()
            assert model._state.mass.sum() == pytest.approx(held, rel=1e-10)
    first = 6 * 64
    # a refinement each time the rows held passed a doubling of the first mark's rows
    assert len(calls) >= 3 and calls[0] >= 2 * first
    assert all(b >= 2 * a for a, b in zip(calls, calls[1:], strict=False))
    assert model._warmup.refining and model._warmup.n_rows == len(X) < model._warmup.limit
    assert model._state.nu.sum() == pytest.approx(w.sum(), rel=1e-10)


def test_the_refinement_ends_at_the_limit_and_with_forgetting(to_the_limit):
    X = _stream(n=12000)
    model = OnlineGaussianMixture(6, warmup_size="auto", random_state=0)
    for b in np.array_split(X, 40):
        model.partial_fit(b)
    assert model._warmup is not None and model._warmup.limit == _warmup.AUTO_MAX_ROWS
    # with forgetting the stream is not stationary: no refit of old rows, the buffer goes
    forgetting = OnlineGaussianMixture(6, forgetting_rate=0.01, random_state=0)
    for b in np.array_split(X, 40):
        forgetting.partial_fit(b)
    assert forgetting._warmup is None
    # an int warmup_size means exactly that buffer: the restarts, no refinement
    fixed = OnlineGaussianMixture(6, warmup_size=1000, random_state=0)
    for b in np.array_split(X, 40):
        fixed.partial_fit(b)
    assert fixed._warmup is None


@pytest.mark.parametrize("via", ["pickle", "npz"])
def test_resume_in_the_middle_of_the_refinement_is_bit_identical(via, tmp_path, to_the_limit):
    from online_gmm import load, save

    X = _stream()
    batches = np.array_split(X, 30)
    whole = OnlineGaussianMixture(6, random_state=0)
    for b in batches:
        whole.partial_fit(b)
    part = OnlineGaussianMixture(6, random_state=0)
    for b in batches[:9]:
        part.partial_fit(b)
    assert part._warmup.refining
    if via == "pickle":
        resumed = pickle.loads(pickle.dumps(part))
    else:
        save(part, tmp_path / "m.npz", include_warmup_buffer=True)
        resumed = load(tmp_path / "m.npz")
    assert resumed._warmup == part._warmup
    for b in batches[9:]:
        resumed.partial_fit(b)
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        np.testing.assert_array_equal(getattr(resumed, name), getattr(whole, name))


# ---------------------------------------------------------------------- issue 29
def test_a_refinement_that_gains_less_than_the_tolerance_ends_the_warm_up(monkeypatch):
    """On easy blobs the first refinement (at twice the first mark) finds the state where
    batch EM on the buffer leaves it: its first iteration changes the buffer's mean
    log-likelihood by less than the tolerance, it stops after it, and the warm-up is over
    (the buffer freed), every row still counted once."""
    calls, traces = [], []
    original = _warmup.refined_state

    def spy(s, X, w, **kw):
        calls.append(len(X))
        out = original(s, X, w, **kw)
        traces.append(list(kw.get("trace") or []))
        return out

    monkeypatch.setattr(_warmup, "refined_state", spy)
    X = _stream()
    model = OnlineGaussianMixture(6, random_state=0)
    for b in np.array_split(X, 23):
        model.partial_fit(b)
    assert len(calls) == 1 and calls[0] >= 2 * 6 * 64
    tol = _warmup.refine_tol(model._config(), X.shape[1])
    assert len(traces[0]) == 2 and abs(traces[0][1] - traces[0][0]) < tol
    assert model._warmup is None  # over: no later mark
    assert model._state.mass.sum() == pytest.approx(len(X), rel=1e-10)


def test_a_refinement_that_still_gains_goes_on_at_the_next_doubling(monkeypatch):
    """The same stream with a tolerance no refinement meets: every doubling refines (5
    iterations each) and the buffer is kept."""
    monkeypatch.setattr(_warmup, "TOL_PER_FEATURE", -1.0)  # (no change is below it)
    calls = []
    original = _warmup.refined_state
    monkeypatch.setattr(_warmup, "refined_state",
                        lambda s, X, w, **kw: calls.append(len(X)) or original(s, X, w, **kw))
    X = _stream()
    model = OnlineGaussianMixture(6, random_state=0)
    for b in np.array_split(X, 23):
        model.partial_fit(b)
    assert len(calls) >= 3 and model._warmup is not None and model._warmup.refining


def test_the_warm_up_still_beats_no_warm_up_on_blobs():
    """Issue 29's stream shape, smaller: make_blobs (16 centres in 16-D, cluster_std=6, in a
    box of side 20), batches of 256: the default first pass ends well above the pass
    without a warm-up in held-out log-likelihood, on every seed."""
    from sklearn.datasets import make_blobs

    X, _ = make_blobs(24000, n_features=16, centers=16, cluster_std=6.0,
                      center_box=(-10, 10), random_state=1)
    train, test = X[:20000], X[20000:]
    for seed in range(3):
        scores = {}
        for size in ("auto", 0):
            model = OnlineGaussianMixture(16, warmup_size=size, random_state=seed)
            for b in np.array_split(train, 20000 // 256):
                model.partial_fit(b)
            scores[size] = model.score(test)
        assert scores["auto"] > scores[0] + 0.05, (seed, scores)


def _brute_greedy(X, w, u):
    """Greedy k-means++ by brute force in float64: the reference of both paths."""
    n = len(X)
    d2 = ((X[:, None, :] - X[None, :, :]) ** 2).sum(-1)
    cw = np.cumsum(w)
    chosen = [min(int(np.searchsorted(cw, u[0, 0] * cw[-1], side="right")), n - 1)]
    closest = d2[chosen[0]].copy()
    for j in range(1, u.shape[0]):
        cs = np.cumsum(w * closest)
        cand = np.minimum(np.searchsorted(cs, u[j] * cs[-1], side="right"), n - 1)
        pots = [(w * np.minimum(closest, d2[c])).sum() for c in cand]
        best = int(cand[int(np.argmin(pots))])
        chosen.append(best)
        closest = np.minimum(closest, d2[best])
    return np.asarray(chosen)


@pytest.mark.parametrize("fast", [True, False])
def test_the_restarts_seeds_are_greedy_kmeans_plus_plus(fast):
    """Both paths (the numba kernel, all restarts at once; the array-API steps, one
    restart at a time) choose what brute-force greedy D^2 sampling chooses with the same
    uniforms, restart by restart."""
    rng = np.random.default_rng(3)
    X = np.concatenate([rng.normal(c, 1.0, (40, 5)) for c in rng.normal(0, 6, (8, 5))])
    w = rng.uniform(0.5, 2.0, len(X))
    Xc, xx, _ = _warmup._centred(X, np)
    u = np.random.RandomState(0).random_sample((3, 8, 4))
    seeds = _warmup.greedy_seeds(Xc, xx, w, u, np, fast=fast)
    assert seeds.shape == (3, 8)
    for r in range(3):
        np.testing.assert_array_equal(seeds[r], _brute_greedy(Xc, w, u[r]))


def test_the_kmeanspp_kernels_parallel_blocks_equal_its_serial_blocks():
    """The candidates' row blocks in parallel (large steps) give each block's share of the
    potentials and the distances to the bit, as the blocks one after the other do."""
    from online_gmm._backends import seeding_kernels as sk

    rng = np.random.default_rng(5)
    n, D, m, T = 3 * sk.BLOCK_ROWS + 17, 8, 6, 3
    X32 = rng.normal(size=(n, D)).astype(np.float32)
    xx32 = (X32.astype(np.float64) ** 2).sum(1).astype(np.float32)
    w32 = rng.uniform(0.5, 2.0, n).astype(np.float32)
    closest32 = rng.uniform(0.0, 30.0, (2, n)).astype(np.float32)
    C = X32[rng.choice(n, m, replace=False)]
    cc = (C.astype(np.float64) ** 2).sum(1).astype(np.float32)
    n_blocks = -(-n // sk.BLOCK_ROWS)
    part_p, part_s = np.empty((n_blocks, m)), np.empty((n_blocks, m))
    D_p, D_s = np.empty((m, n), np.float32), np.empty((m, n), np.float32)
    sk._candidate_blocks_parallel(X32, xx32, w32, closest32, C, cc, T, part_p, D_p)
    for b in range(n_blocks):
        sk._candidate_block(b, X32, xx32, w32, closest32, C, cc, T, part_s, D_s)
    np.testing.assert_array_equal(part_p, part_s)
    np.testing.assert_array_equal(D_p, D_s)
    # and what they add up to: each candidate's potential, sum w min(closest, d)
    d = cc[:, None] - 2.0 * (C.astype(np.float64) @ X32.T.astype(np.float64)) + xx32
    want = (w32 * np.minimum(closest32[np.arange(m) // T], d)).sum(1)
    np.testing.assert_allclose(part_p.sum(0), want, rtol=1e-4)


def test_large_restarts_seeds_are_the_array_api_steps_seeds():
    """A step large enough for the kernel's parallel blocks (``MIN_PARALLEL_CANDIDATES``)
    chooses the seeds the array-API steps choose."""
    from online_gmm._backends import seeding_kernels as sk

    rng = np.random.default_rng(6)
    X = np.concatenate([rng.normal(c, 1.0, (256, 32)) for c in rng.normal(0, 5, (16, 32))])
    w = rng.uniform(0.5, 2.0, len(X))
    Xc, xx, _ = _warmup._centred(X, np)
    u = np.random.RandomState(1).random_sample((3, 16, 6))
    assert 3 * 6 * X.shape[0] * X.shape[1] >= sk.MIN_PARALLEL_CANDIDATES
    fast = _warmup.greedy_seeds(Xc, xx, w, u, np, fast=True)
    slow = _warmup.greedy_seeds(Xc, xx, w, u, np, fast=False)
    np.testing.assert_array_equal(fast, slow)


def test_the_lloyd_kernel_matches_the_array_api_steps():
    rng = np.random.default_rng(4)
    X = np.concatenate([rng.normal(c, 1.0, (60, 6)) for c in rng.normal(0, 4, (5, 6))])
    w = rng.uniform(0.5, 2.0, len(X))
    Xc, xx, _ = _warmup._centred(X, np)
    C = np.stack([Xc[rng.choice(len(X), 5, replace=False)] for _ in range(3)])
    fast = _warmup.lloyd_restarts(Xc, xx, w, C, 50, np, fast=True)
    slow = _warmup.lloyd_restarts(Xc, xx, w, C, 50, np, fast=False)
    np.testing.assert_allclose(fast[0], slow[0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(fast[1], slow[1], rtol=1e-12)
    np.testing.assert_array_equal(fast[2], slow[2])
    # converged (no label moved): each restart's inertia is its labels' weighted squared
    # distances to its final centres
    for r in range(3):
        d = ((Xc - fast[0][r][fast[2][r]]) ** 2).sum(1)
        assert fast[1][r] == pytest.approx((w * d).sum(), rel=1e-9)


def test_identical_rows_and_fewer_rows_than_components_seed_without_failing():
    # every row the same: the seeds' potential is 0 at once, the rest by weight
    X = np.ones((500, 3))
    model = OnlineGaussianMixture(4, warmup_size=300, random_state=0).partial_fit(X)
    assert np.isfinite(model.means_).all() and model._state.seeded.all()
    # fewer rows than components: one seed per row, the others seeded by the stream later
    Y = _stream(n=40)
    model = OnlineGaussianMixture(64, warmup_size=30, random_state=0).partial_fit(Y)
    assert np.isfinite(model.weights_).all()
    assert model._state.seeded.sum() >= 30


def test_restarts_tied_in_inertia_keep_the_first():
    order = _warmup._by_inertia(np.array([5.0, 5.0 * (1 + 1e-12), 4.0, 4.0]), np.float64, np)
    assert order == [2, 3, 0, 1]


def test_the_variational_mixture_keeps_its_restarts(monkeypatch):
    """The variational mixture's restarts are each a batch variational fit of the buffer
    (its pruning needs the iterations): one restart call each."""
    from online_gmm import OnlineBayesianGaussianMixture

    calls = []
    original = _warmup._restart
    monkeypatch.setattr(_warmup, "_restart",
                        lambda *a: calls.append(1) or original(*a))
    X = _stream()
    OnlineBayesianGaussianMixture(6, warmup_size=600, max_iter=20,
                                  random_state=0).partial_fit(X[:1000])
    assert len(calls) == 3
