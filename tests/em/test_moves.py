"""The variational mixture's evidence lower bound and its birth moves: the bound equals
scikit-learn's ``lower_bound_`` term by term; a birth move at a refinement of the warm-up
splits the components a smaller buffer merged, and only when the bound rises; a stream
with births resumes bit-identically."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.mixture import BayesianGaussianMixture

from online_gmm import OnlineBayesianGaussianMixture, core
from online_gmm._em import batch as _batch_em
from online_gmm._em import moves as _moves
from online_gmm._em import warmup as _warmup
from online_gmm._em.expectation import step_prepared
from online_gmm._math.array_api import to_numpy
from online_gmm._math.estep import statistics_and_entropy
from online_gmm._math.variational import lower_bound, posterior, resolve_prior

from .._data import blobs, mixture
from ..estimators.test_bayesian import (
    PRIORS,
    TYPES,
    _assert_bit_identical,
    _statistics_state,
    one_sklearn_iteration,
)


# ---------------------------------------------------------------------- the lower bound
@pytest.mark.parametrize("backend", ["numba", "reference"])
@pytest.mark.parametrize("prior_type", PRIORS)
@pytest.mark.parametrize("covariance_type", TYPES)
@pytest.mark.parametrize("empty", [None, 1], ids=["", "empty"])
def test_the_lower_bound_is_scikit_learns(covariance_type, prior_type, backend, empty):
    """From given variational parameters, one iteration's bound (the entropy of its
    responsibilities, the posterior of its M-step) equals scikit-learn's
    ``_compute_lower_bound`` after its ``_e_step`` and ``_m_step``, to 1e-10 relative; also
    when a component starts with no evidence (the free slots a move leaves)."""
    X, resp, ref, log_prob_norm, log_resp = one_sklearn_iteration(covariance_type, prior_type,
                                                                  empty)
    K, reg = 4, 1e-6
    expected = ref._compute_lower_bound(log_resp, log_prob_norm)

    with core.use_backend(backend):
        b = core.select_backend(X)
        prior = resolve_prior(X, covariance_type=covariance_type, n_components=K,
                              reg_covar=reg, weight_concentration_prior_type=prior_type,
                              weight_concentration_prior=0.3, mean_precision_prior=0.7,
                              degrees_of_freedom_prior=X.shape[1] + 0.5, xp=b.xp)
        state = _statistics_state(X, resp, covariance_type, reg)
        config = core.EMConfig(K, covariance_type, reg, max_reseed=0, prior=prior)
        w = np.ones(X.shape[0])
        stats, entropy = statistics_and_entropy(X, w, step_prepared(state, config, X.dtype, b),
                                                b)
        new = b.m_step(state, stats, eta=1.0, forgetting="uniform",
                       covariance_type=covariance_type, reg_covar=reg)
        post = posterior(new, prior, covariance_type=covariance_type, reg_covar=reg,
                         backend=b)
        ours = lower_bound(post, prior, entropy, covariance_type=covariance_type, xp=b.xp)
    assert entropy == pytest.approx(-np.sum(np.exp(log_resp) * log_resp), rel=1e-10)
    assert ours == pytest.approx(expected, rel=1e-10)


def test_the_entropy_counts_each_row_by_its_weight():
    """Weight 2 on a row counts its responsibilities' entropy twice (frequency weights, as
    the statistics); weight 0 not at all."""
    X, _, _ = blobs(n=300, K=3, D=2, seed=1)
    b = core.select_backend(X)
    model = OnlineBayesianGaussianMixture(3, random_state=0, warmup_size=0).fit(X)
    config = model._config()
    p = step_prepared(model._state, config, X.dtype, b)
    w = np.ones(X.shape[0])
    _, h = statistics_and_entropy(X, w, p, b)
    _, h_doubled = statistics_and_entropy(np.concatenate([X, X[:50]]),
                                          np.ones(X.shape[0] + 50), p, b)
    w2 = w.copy()
    w2[:50] = 2.0
    _, h_weighted = statistics_and_entropy(X, w2, p, b)
    w0 = w.copy()
    w0[:50] = 0.0
    _, h_dropped = statistics_and_entropy(X, w0, p, b)
    _, h_rest = statistics_and_entropy(X[50:], w[50:], p, b)
    assert h > 0
    assert h_weighted == pytest.approx(h_doubled, rel=1e-12)
    assert h_dropped == pytest.approx(h_rest, rel=1e-12)


# ---------------------------------------------------------------------- birth moves
def _four_blobs(n=4000, seed=0):
    means = np.array([[-6.0, -6.0], [-6.0, 6.0], [6.0, -6.0], [6.0, 6.0]])
    return mixture(n, means, np.ones(4), seed=seed)


def _labelled_state(X, labels, covariance_type, K):
    """The state of hard responsibilities ``labels`` (the other components near zero)."""
    resp = np.full((X.shape[0], K), 1e-10)
    resp[np.arange(X.shape[0]), labels] = 1.0
    resp /= resp.sum(axis=1, keepdims=True)
    return _statistics_state(X, resp, covariance_type, 1e-6)


def _merged_state(X, y, config, backend, K=8):
    """A variational state whose first two components each hold two of the four blobs
    (what a buffer too small to separate them leaves), the other six switched off."""
    state = _labelled_state(X, y // 2, config.covariance_type, K)
    state, _ = _batch_em.em_iterations(state, X, np.ones(X.shape[0]), config, backend, 3)
    return state


def _bound(state, X, config, backend):
    return _moves._lower_bound_iteration(state, X, np.ones(X.shape[0]), config, backend)[1]


@pytest.mark.parametrize("backend", ["numba", "reference"])
def test_a_birth_splits_merged_components_and_raises_the_bound(backend):
    """Four blobs held by two components: each move adds a third as many as are live
    (here one), and raises the bound; two moves leave the four blobs' components."""
    X, y = _four_blobs()
    w = np.ones(X.shape[0])
    rng = np.random.RandomState(0)
    with core.use_backend(backend):
        b = core.select_backend(X)
        prior = resolve_prior(X, covariance_type="diag", n_components=8, reg_covar=1e-6,
                              xp=b.xp)
        config = core.EMConfig(8, "diag", 1e-6, prior=prior, warmup_iterations=100)
        state = _merged_state(X, y, config, b)
        for n_live in (3, 4):
            born = _moves.with_births(state, X, w, config=config, rng=rng, backend=b)
            assert _bound(born, X, config, b) > _bound(state, X, config, b)
            weights = np.sort(np.asarray(born.mass) / X.shape[0])[::-1]
            assert np.all(weights[:n_live] > 0.2) and np.all(weights[n_live:] < 0.01)
            state = born


def test_a_birth_the_bound_does_not_favour_is_refused():
    """Three separated blobs already fitted: whatever the proposal, the state keeps three
    components, and never a lower bound."""
    X, y, _ = blobs(n=3000, K=3, D=2, sep=10.0, seed=2)
    b = core.select_backend(X)
    w = np.ones(X.shape[0])
    prior = resolve_prior(X, covariance_type="diag", n_components=8, reg_covar=1e-6, xp=b.xp)
    config = core.EMConfig(8, "diag", 1e-6, prior=prior, warmup_iterations=100)
    fitted = _labelled_state(X, y, "diag", 8)
    fitted, _ = _moves._lower_bound_iterations(fitted, X, w, config, b, 200, 1e-8)
    expected = _moves.with_order(fitted, X, w, config=config, backend=b)
    for seed in range(4):
        after = _moves.with_births(fitted, X, w, config=config,
                                    rng=np.random.RandomState(seed), backend=b)
        for name in ("means", "mass", "covariances"):
            np.testing.assert_array_equal(np.asarray(getattr(after, name)),
                                          np.asarray(getattr(expected, name)), err_msg=name)


def _late_blobs(prior_type):
    """``(X, w, backend, config, state)``: three separated blobs held by the last three of
    eight components (the first five empty), ``diag``."""
    X, y, _ = blobs(n=3000, K=3, D=2, sep=10.0, seed=2)
    b = core.select_backend(X)
    prior = resolve_prior(X, covariance_type="diag", n_components=8, reg_covar=1e-6,
                          weight_concentration_prior_type=prior_type, xp=b.xp)
    config = core.EMConfig(8, "diag", 1e-6, prior=prior, warmup_iterations=100)
    return X, np.ones(X.shape[0]), b, config, _labelled_state(X, y + 5, "diag", 8)


@pytest.mark.parametrize("prior_type", PRIORS)
def test_a_birth_is_not_accepted_for_the_order_of_the_components(prior_type):
    """The three blobs fitted in the last slots of eight (the first five empty): under the
    Dirichlet process, packing them into the first slots alone raises the bound. The
    proposal keeps each live component in its slot, and is compared with the incumbent in
    the same order (the reorder move's, which puts them first), so no birth is kept: three
    components, in the reorder move's slots."""
    X, w, b, config, fitted = _late_blobs(prior_type)
    fitted, _ = _moves._lower_bound_iterations(fitted, X, w, config, b, 200, 1e-8)
    current, _ = _moves._lower_bound_iteration(fitted, X, w, config, b)
    expected = _moves.with_order(fitted, X, w, config=config, backend=b)
    for seed in range(3):
        rng = np.random.RandomState(seed)
        proposal = _moves._birth_proposal(current, X, w, config, rng, b)
        share = np.asarray(proposal.mass) / X.shape[0]
        assert np.all(share[5:] > 0.1)  # the live components where they were
        after = _moves.with_births(fitted, X, w, config=config,
                                    rng=np.random.RandomState(seed), backend=b)
        used = np.flatnonzero(np.asarray(after.mass) / X.shape[0] > 0.01)
        np.testing.assert_array_equal(
            used, np.flatnonzero(np.asarray(expected.mass) / X.shape[0] > 0.01))
        assert used.size == 3 and _bound(after, X, config, b) >= _bound(expected, X, config, b)


# ---------------------------------------------------------------------- the order move
@pytest.mark.parametrize("prior_type", PRIORS)
@pytest.mark.parametrize("covariance_type", TYPES)
def test_reordered_statistics_change_only_the_weight_terms(covariance_type, prior_type):
    """The statistics and parameters in another order are the same mixture: the permuted
    M-step's parameters are the original's permuted, also those of an unseeded component
    with no evidence (the M-step keeps its old parameters: the state's must be permuted
    too); its lower bound equals the original's under the Dirichlet distribution (to 1e-10),
    and is higher under the Dirichlet process when the empty components came first."""
    X, y, _ = blobs(n=3000, K=3, D=2, sep=10.0, seed=2)
    b = core.select_backend(X)
    w = np.ones(X.shape[0])
    prior = resolve_prior(X, covariance_type=covariance_type, n_components=8,
                          reg_covar=1e-6, weight_concentration_prior_type=prior_type,
                          xp=b.xp)
    config = core.EMConfig(8, covariance_type, 1e-6, prior=prior, warmup_iterations=100)
    state = _labelled_state(X, y + 5, covariance_type, 8)
    unseeded = np.arange(8) == 3  # (given parameters of its own, to be kept in its slot)
    state = state.replace(
        seeded=~unseeded, mass=np.where(unseeded, 0.0, state.mass),
        means=np.where(unseeded[:, None], 7.0, state.means),
        covariances=state.covariances * (1.0 + unseeded.reshape((8,) + (1,) * (
            state.covariances.ndim - 1))) if covariance_type != "tied"
        else state.covariances)
    p = step_prepared(state, config, X.dtype, b)
    stats, entropy = statistics_and_entropy(X, w, p, b)
    assert float(stats.mass[3]) == 0.0
    current, bound = _batch_em.from_statistics(state, stats, entropy, config, b)
    order = np.array([5, 6, 7, 0, 1, 2, 3, 4])
    moved, new = _batch_em.from_statistics(
        _moves._reordered(state, order, covariance_type, b.xp),
        _moves._reordered(stats, order, covariance_type, b.xp), entropy, config, b)
    cov = core.covariance(covariance_type)
    for name in ("weights", "means", "mass", "seeded"):
        np.testing.assert_allclose(getattr(moved, name), getattr(current, name)[order],
                                   rtol=1e-12, err_msg=name)
    for name in ("covariances", "precisions_cholesky"):
        np.testing.assert_allclose(getattr(moved, name),
                                   cov.reordered(getattr(current, name), order, np),
                                   rtol=1e-12, err_msg=name)
    if prior_type == "dirichlet_distribution":
        assert new == pytest.approx(bound, rel=1e-10)
    else:
        assert new > bound + 10.0  # (five empty sticks no longer ahead of the used ones)


@pytest.mark.parametrize("prior_type", PRIORS)
def test_the_order_move_sorts_the_components_under_the_dirichlet_process(prior_type):
    """Three blobs fitted in the last slots of eight: under the Dirichlet process the move
    puts them first, heaviest first, and the bound rises; under the Dirichlet distribution
    (order-free) it is one more iteration, in the same slots."""
    X, w, b, config, state = _late_blobs(prior_type)
    current, _ = _moves._lower_bound_iteration(state, X, w, config, b)
    after = _moves.with_order(state, X, w, config=config, backend=b)
    if prior_type == "dirichlet_distribution":
        np.testing.assert_array_equal(after.means, current.means)
        return
    order = np.argsort(-current.mass, kind="stable")
    np.testing.assert_allclose(after.means, current.means[order], rtol=1e-12)
    assert np.all(np.diff(after.mass) <= 0)
    assert _bound(after, X, config, b) > _bound(current, X, config, b)


def test_births_take_the_free_slots_after_the_live_ones():
    """Two live components in slots 2 and 5 of eight: they keep their slots, and the one
    birth (a third of two, rounded up) takes slot 6, the first free one after them."""
    X, y = _four_blobs()
    b = core.select_backend(X)
    w = np.ones(X.shape[0])
    prior = resolve_prior(X, covariance_type="diag", n_components=8, reg_covar=1e-6,
                          weight_concentration_prior_type="dirichlet_process", xp=b.xp)
    config = core.EMConfig(8, "diag", 1e-6, prior=prior, warmup_iterations=100)
    state = _labelled_state(X, np.array([2, 5])[y // 2], "diag", 8)
    state, _ = _moves._lower_bound_iteration(state, X, w, config, b)
    proposal = _moves._birth_proposal(state, X, w, config, np.random.RandomState(0), b)
    share = np.asarray(proposal.mass) / X.shape[0]
    assert np.all(share[[2, 5, 6]] > 0.1)
    assert np.all(share[[0, 1, 3, 4, 7]] < 0.01)


def test_a_state_with_no_free_slot_is_only_iterated():
    X, y = _four_blobs(n=800)
    b = core.select_backend(X)
    prior = resolve_prior(X, covariance_type="diag", n_components=2, reg_covar=1e-6, xp=b.xp)
    config = core.EMConfig(2, "diag", 1e-6, prior=prior, warmup_iterations=100)
    state = _merged_state(X, y, config, b, K=2)
    rng = np.random.RandomState(0)
    before = rng.get_state()[1].copy()
    after = _moves.with_births(state, X, np.ones(X.shape[0]), config=config, rng=rng,
                                backend=b)
    expected = _moves.with_order(state, X, np.ones(X.shape[0]), config=config, backend=b)
    np.testing.assert_array_equal(rng.get_state()[1], before)  # no draw
    np.testing.assert_array_equal(np.asarray(after.means), np.asarray(expected.means))


def test_the_plain_mixture_has_no_births():
    """The refinement of ``OnlineGaussianMixture`` (no prior) ignores the RNG."""
    X, y = _four_blobs(n=800)
    b = core.select_backend(X)
    config = core.EMConfig(8, "diag", 1e-6)
    state = _labelled_state(X, y // 2, "diag", 8)
    w = np.ones(X.shape[0])
    a = _warmup.refined_state(state, X, w, config=config, backend=b)
    c = _warmup.refined_state(state, X, w, config=config, backend=b,
                              rng=np.random.RandomState(0))
    np.testing.assert_array_equal(np.asarray(a.means), np.asarray(c.means))


def _paired_clusters():
    """Eight clusters in pairs 3 standard deviations apart (12,000 rows, 3-d)."""
    rng = np.random.default_rng(5)
    centres = rng.normal(0, 12, (4, 3))
    offsets = rng.normal(0, 1, (4, 3))
    offsets *= 3.0 / np.linalg.norm(offsets, axis=1, keepdims=True)
    means = np.concatenate([centres + offsets / 2, centres - offsets / 2])
    return mixture(12000, means, np.ones(8), seed=6)[0]


def test_one_pass_finds_clusters_the_first_buffer_merged():
    """Eight clusters in pairs, K = 16 ("auto": 1,024 rows, then refinements): one pass with
    births keeps the eight, as scikit-learn's converged batch fit does on the same rows."""
    X = _paired_clusters()
    model = OnlineBayesianGaussianMixture(16, random_state=0)
    for batch in np.array_split(X, 24):
        model.partial_fit(batch)
    ref = BayesianGaussianMixture(n_components=16, covariance_type="diag", random_state=0,
                                  max_iter=2000).fit(X)
    effective = int((model.weights_ > 1 / 160).sum())
    assert effective == int((ref.weights_ > 1 / 160).sum()) == 8


@pytest.mark.parametrize("prior_type", PRIORS)
def test_fit_makes_the_moves_on_its_sample(prior_type):
    """``fit``'s seeding (restarts on 1,024 rows, then batch iterations on its sample) makes
    the moves on the sample, once per doubling a stream's buffer would make (here 3): the
    eight paired clusters, where the iterations alone leave fewer (measured: 4 and 4
    without the moves, 6 and 6 with one round)."""
    X = _paired_clusters()
    kw = dict(n_components=16, random_state=0, weight_concentration_prior_type=prior_type)
    model = OnlineBayesianGaussianMixture(**kw).fit(X)
    assert int((model.weights_ > 1 / 160).sum()) == 8


def _births_recorded(monkeypatch) -> list:
    """Whether each birth move of the warm-up was accepted (its state is not the reorder
    move's of the incumbent), appended as the moves run."""
    accepted, with_births = [], _moves.with_births

    def recorded(state, Xb, wb, *, config, rng, backend):
        out = with_births(state, Xb, wb, config=config, rng=rng, backend=backend)
        plain = _moves.with_order(state, Xb, wb, config=config, backend=backend)
        accepted.append(not np.array_equal(np.asarray(out.means), np.asarray(plain.means)))
        return out

    monkeypatch.setattr(_moves, "with_births", recorded)
    return accepted


def test_resume_across_birth_moves_is_bit_identical(monkeypatch):
    """Resumed before the refinement's marks (1,024 and 2,048 rows), where births are
    accepted, the stream is bit-identical to the straight one."""
    accepted = _births_recorded(monkeypatch)
    X, _, _ = blobs(n=2400, K=6, D=3, sep=4.0, seed=8)
    batches = np.array_split(X, 12)
    kw = dict(n_components=8, covariance_type="full", random_state=0)  # marks at 512 .. 2048
    straight = OnlineBayesianGaussianMixture(**kw)
    for batch in batches:
        straight.partial_fit(batch)
    first = OnlineBayesianGaussianMixture(**kw)
    for batch in batches[:3]:
        first.partial_fit(batch)
    resumed = pickle.loads(pickle.dumps(first))
    for batch in batches[3:]:
        resumed.partial_fit(batch)
    assert accepted[:2] == [True, True]  # (the straight stream's)
    for name, value in straight.__dict__.items():
        _assert_bit_identical(getattr(resumed, name), value, name)


@pytest.mark.parametrize("library", ["array_api_strict", "torch"])
def test_the_moves_on_other_array_libraries(library):
    """A birth and the merges on array-api-strict arrays and on torch CPU tensors give the
    NumPy state (to 1e-9): the moves are array-API code, their Lloyd's and D^2 draws on
    the host."""
    xl = pytest.importorskip(library, reason=f"{library} is an optional extra")
    convert = xl.asarray if library == "array_api_strict" else xl.from_numpy
    X, y = _four_blobs(n=2000)
    w = np.ones(X.shape[0])

    def config_for(data):
        prior = resolve_prior(data, covariance_type="full", n_components=8, reg_covar=1e-6,
                              weight_concentration_prior_type="dirichlet_process",
                              xp=core.select_backend(data).xp)
        return core.EMConfig(8, "full", 1e-6, prior=prior, warmup_iterations=100)

    state = _merged_state(X, y, config_for(X), core.select_backend(X))
    converted = state.replace(**{name: convert(np.array(value))
                                 for name, value in vars(state).items()})
    results = [_warmup.refined_state(s, data, weight, config=config_for(data),
                                     backend=core.select_backend(data),
                                     rng=np.random.RandomState(0))
               for s, data, weight in ((state, X, w), (converted, convert(X), convert(w)))]
    assert type(results[1].means).__module__.startswith(library)
    assert int((np.asarray(results[0].mass) > 0.2 * X.shape[0]).sum()) == 3  # (one birth)
    for name in ("weights", "means", "covariances", "precisions_cholesky"):
        np.testing.assert_allclose(to_numpy(getattr(results[1], name)),
                                   getattr(results[0], name), rtol=1e-9, atol=1e-9,
                                   err_msg=name)


# ---------------------------------------------------------------------- merge moves
@pytest.mark.parametrize("covariance_type", TYPES)
def test_merged_statistics_are_those_of_the_summed_responsibilities(covariance_type):
    """Merging component 3 into 1 by the pairwise rule gives the statistics of the
    responsibilities with column 3 added to column 1 (to 1e-10), and the entropy loss is
    the entropy's change."""
    from online_gmm._math.estep import chunk_statistics

    X, _, _ = blobs(n=500, K=4, D=3, seed=3)
    X = X + 20.0
    w = np.random.default_rng(1).uniform(0.5, 2.0, X.shape[0])
    resp = np.random.default_rng(2).dirichlet(np.ones(5), X.shape[0])
    b = core.select_backend(X)
    state = _statistics_state(X, resp, covariance_type, 1e-6)
    p = core.state_prepared(state, covariance_type, X.dtype, b.xp)

    def stats_of(R):
        return chunk_statistics(X - p.shift_dt, w, R, np.zeros(X.shape[0]), p, b.xp)

    summed = resp.copy()
    summed[:, 1] += summed[:, 3]
    summed[:, 3] = 0.0
    expected = stats_of(summed)
    merged = _moves._merged_statistics(stats_of(resp), 3, 1, covariance_type, b.xp)
    keep = np.arange(5) != 3  # (the emptied component's mean is not a statistic)
    for name in ("mass", "mean", "moment"):
        a, e = np.asarray(getattr(merged, name)), np.asarray(getattr(expected, name))
        if name == "mean":
            a, e = a[keep], e[keep]
        np.testing.assert_allclose(a, e, rtol=1e-10, atol=1e-9, err_msg=name)

    def entropy(R):
        return -float(np.sum(w[:, None] * np.where(R > 0, R * np.log(np.where(R > 0, R, 1)),
                                                    0.0)))

    # the loss the merge computes from the model's own responsibilities
    R = np.concatenate([np.asarray(r) for _, r in _moves.responsibility_chunks(X, p, b)])
    R_summed = R.copy()
    R_summed[:, 1] += R_summed[:, 3]
    R_summed[:, 3] = 0.0
    (loss,) = _moves._merge_entropy_loss(X, w, p, [(1, 3)], b)
    assert entropy(R) - entropy(R_summed) == pytest.approx(loss, rel=1e-10)


def _split_state(X, y, config, backend, K=8):
    """Blob 0's rows split at random between components 0 and 3 (a split the data do not
    need), blobs 1 and 2 in components 1 and 2."""
    rng = np.random.default_rng(0)
    col = np.where((y == 0) & (rng.random(X.shape[0]) < 0.5), 3, y)
    return _labelled_state(X, col, config.covariance_type, K)


@pytest.mark.parametrize("covariance_type", TYPES)
def test_a_merge_undoes_a_split_and_raises_the_bound(covariance_type):
    X, y, _ = blobs(n=3000, K=3, D=2, sep=10.0, seed=2)
    w = np.ones(X.shape[0])
    b = core.select_backend(X)
    prior = resolve_prior(X, covariance_type=covariance_type, n_components=8, reg_covar=1e-6,
                          xp=b.xp)
    config = core.EMConfig(8, covariance_type, 1e-6, prior=prior, warmup_iterations=100)
    split = _split_state(X, y, config, b)
    merged = _moves.with_merges(split, X, w, config=config, backend=b)
    mass = np.asarray(merged.mass) / X.shape[0]
    assert int((mass > 0.01).sum()) == 3
    assert _bound(merged, X, config, b) > _bound(split, X, config, b)


def test_separated_components_are_not_merged():
    X, y, _ = blobs(n=3000, K=3, D=2, sep=10.0, seed=2)
    w = np.ones(X.shape[0])
    b = core.select_backend(X)
    prior = resolve_prior(X, covariance_type="diag", n_components=8, reg_covar=1e-6, xp=b.xp)
    config = core.EMConfig(8, "diag", 1e-6, prior=prior, warmup_iterations=100)
    fitted = _labelled_state(X, y, "diag", 8)
    after = _moves.with_merges(fitted, X, w, config=config, backend=b)
    expected, _ = _moves._lower_bound_iteration(fitted, X, w, config, b)
    p = step_prepared(fitted, config, X.dtype, b)
    assert len(_moves._overlapping_pairs(X, w, p, np.arange(3), b, 9)) > 0  # (pairs tried)
    np.testing.assert_allclose(np.asarray(after.mass), np.asarray(expected.mass), rtol=1e-12)


def test_one_pass_on_clusters_appearing_one_at_a_time():
    """Four clusters join a stream one after another (K = 12, marks of the warm-up's
    refinement at 1,536 .. 12,288 rows): one pass ends with one component per cluster."""
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
    rng = np.random.default_rng(0)
    model = OnlineBayesianGaussianMixture(12, random_state=0)
    for i in range(64):
        X = centres[rng.integers(0, min(4, 1 + i // 12), 200)] + rng.standard_normal((200, 2))
        model.partial_fit(X)
    active = np.flatnonzero(model.weights_ > 1 / 120)
    assert active.size == 4
    d = np.linalg.norm(model.means_[active][:, None] - centres[None], axis=2)
    assert sorted(d.argmin(axis=1).tolist()) == [0, 1, 2, 3]
