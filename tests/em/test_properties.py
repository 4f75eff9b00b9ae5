"""Property-based tests of the contract's invariants, and fault injection inside an update.

1. Hypothesis draws streams of 1-4 batches over shapes (n 1..60, D 1..6, K 1..5), dtypes,
   the four covariance types, scales 1e-8 .. 1e8 (also mixed per column), offsets up to 1e8,
   duplicated rows, constant columns and sample weights with zeros, with forgetting,
   annealing and reseeding on or off. After *every* ``partial_fit`` every invariant of
   ``shared/ALGORITHM.md`` holds and nothing non-finite is in the state.
2. Fault injection: every function the update calls is made to raise at its 1st, 2nd, ...,
   last call; the model must be bit-identical to before the call, and the next batches must
   proceed exactly as on a twin model that never saw the failing call. A bad batch in the
   middle of a stream (of every kind) is refused and the stream goes on as if it had not come.

Hypothesis runs derandomized (the same examples on every run, no example database), sized
for CI; ``ONLINE_GMM_PROPERTY_SCALE=20 pytest tests/em/test_properties.py`` searches 20x more.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pickle
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import online_gmm._backends.kernels as kernels_mod
import online_gmm._backends.mstep_kernels as mstep_kernels_mod
import online_gmm._backends.numba_backend as blocked_mod
import online_gmm._backends.numba_backend as numba_backend_mod
import online_gmm._backends.seeding_kernels as seeding_kernels_mod
import online_gmm._em.online as online_em_mod
import online_gmm._em.seeding as seeding_mod
import online_gmm._estimators.gaussian as estimator_mod
import online_gmm._math.covariance._common as cov_common_mod
import online_gmm._math.covariance.full as cov_full_mod
import online_gmm._math.estep as estep_mod
import online_gmm._math.mstep as mstep_mod
import online_gmm._math.schedules as schedules_mod
import online_gmm._math.state as stats_mod
from online_gmm import OnlineGaussianMixture, PowerDecay
from online_gmm._backends.numba_backend import NumbaBackend
from online_gmm._backends.reference import ReferenceBackend

from .._data import assert_same_state, blobs, state_snapshot

TYPES = ["full", "tied", "diag", "spherical"]
_SCALE = float(os.environ.get("ONLINE_GMM_PROPERTY_SCALE", "1"))


@pytest.fixture(autouse=True)
def _one_thread():
    """BLAS and numba on one thread: on a small shared machine the thread pools' spin-waits
    make tiny updates 10x slower. Every comparison here is within one process and setting."""
    import numba
    from threadpoolctl import threadpool_limits

    before = numba.get_num_threads()
    with threadpool_limits(1):
        numba.set_num_threads(1)
        try:
            yield
        finally:
            numba.set_num_threads(before)


def _examples(n: int) -> int:
    return max(1, int(n * _SCALE))


def _settings(n: int) -> settings:
    return settings(
        max_examples=_examples(n),
        deadline=None,
        derandomize=True,
        database=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# --------------------------------------------------------------------------- invariants
def check_invariants(model: OnlineGaussianMixture, X=None, answers: bool = True) -> None:
    """Every invariant of the contract on the model's state, and its answers on ``X``
    (``score_samples``, and with ``answers`` also ``predict_proba`` and ``predict``)."""
    s = model._state
    for f in dataclasses.fields(s):
        arr = np.asarray(getattr(s, f.name))
        if arr.dtype != bool:
            assert arr.dtype == np.float64, f.name
            assert np.all(np.isfinite(arr)), f"non-finite {f.name}: {arr}"
    seeded = np.asarray(s.seeded, dtype=bool)
    K = model.n_components
    assert seeded.shape == (K,)
    w = s.weights
    # weights: positive on seeded components, zero on the others, summing to one
    assert np.all(w[~seeded] == 0.0), w
    if seeded.any():
        assert np.all(w[seeded] > 0.0), (w, seeded)
        assert abs(w.sum() - 1.0) <= 1e-12 * K, w.sum()
    # evidence is non-negative
    assert np.all(s.mass >= 0) and np.all(s.nu >= 0) and np.all(s.tied_mass >= 0)
    ct = model.covariance_type
    cov = s.covariances
    if ct in ("diag", "spherical"):
        assert np.all(s.moment >= 0)
        assert np.all(cov > 0)
        np.testing.assert_allclose(s.precisions_cholesky, 1.0 / np.sqrt(cov), rtol=1e-14)
    else:
        mats = cov[None] if ct == "tied" else cov
        for mat in mats:
            # symmetric (to round-off of its own magnitude) and positive definite
            asym = np.max(np.abs(mat - mat.T))
            assert asym <= 1e-13 * np.max(np.abs(mat)), asym
            np.linalg.cholesky(mat)  # raises LinAlgError if not positive definite
            assert np.all(np.diag(mat) > 0)
        pcs = s.precisions_cholesky[None] if ct == "tied" else s.precisions_cholesky
        for pc in pcs:
            assert np.allclose(pc, np.triu(pc), rtol=0, atol=0)
            assert np.all(np.diag(pc) > 0)
    # the public attributes are the state, in the data's dtype (as scikit-learn's)
    for attr, field in (("weights_", "weights"), ("means_", "means"),
                        ("covariances_", "covariances"),
                        ("precisions_cholesky_", "precisions_cholesky")):
        public = getattr(model, attr)
        if X is not None:
            assert public.dtype == X.dtype, (attr, public.dtype)
        np.testing.assert_array_equal(public, getattr(s, field).astype(public.dtype))
    assert np.all(np.isfinite(model.precisions_))
    if X is not None and seeded.any():
        ll = model.score_samples(X)
        assert ll.dtype == X.dtype
        assert np.all(np.isfinite(ll)), ll
        if not answers:
            return
        proba = model.predict_proba(X)
        assert np.all(np.isfinite(proba)) and np.all(proba >= 0)
        # exp(l_nk - logsumexp_j l_nj) sums to 1 up to eps * |l_n| (as scikit-learn's):
        # a far outlier of a narrow component has |l| ~ 1e8 and loses that many digits
        eps = np.finfo(X.dtype).eps
        tol = 8 * K * eps * (1.0 + np.abs(ll.astype(np.float64)))
        assert np.all(np.abs(proba.sum(axis=1, dtype=np.float64) - 1.0) <= tol)
        assert np.all(proba[:, ~seeded] == 0)
        labels = model.predict(X)
        assert np.all(seeded[labels])


# --------------------------------------------------------------------------- strategies
@st.composite
def streams(draw, max_batches: int = 4):
    """A model configuration and a stream of hard-but-finite batches."""
    ct = draw(st.sampled_from(TYPES))
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    K = draw(st.integers(1, 5))
    D = draw(st.integers(1, 6))
    n_batches = draw(st.integers(1, max_batches))
    sizes = [draw(st.integers(1, 60)) for _ in range(n_batches)]
    seed = draw(st.integers(0, 2**32 - 1))
    mixed_scales = draw(st.booleans())
    log_scale = draw(st.floats(-8, 8))
    offset = draw(st.sampled_from([0.0, 1.0, -3e3, 1e6, 1e8, -1e8]))
    duplicates = draw(st.sampled_from([0.0, 0.3, 0.9]))
    n_const = draw(st.integers(0, D))
    weights = draw(st.sampled_from(["none", "zeros", "ints", "zero_batch"]))
    rng = np.random.default_rng(seed)
    if mixed_scales:
        scale = 10.0 ** rng.uniform(-8, 8, D)
    else:
        scale = np.full(D, 10.0**log_scale)
    shift = offset * rng.choice([-1.0, 1.0], D) * rng.uniform(0.5, 1.0, D)
    n_clusters = int(rng.integers(1, 4))
    centres = rng.normal(0, 4, (n_clusters, D))
    const_cols = rng.choice(D, size=n_const, replace=False)
    batches, sample_weights = [], []
    for i, n in enumerate(sizes):
        X = centres[rng.integers(0, n_clusters, n)] + rng.standard_normal((n, D))
        X = X * scale + shift
        if duplicates and n > 1:
            dup = rng.random(n) < duplicates
            X[dup] = X[rng.integers(0, max(1, n // 4), int(dup.sum()))]
        X[:, const_cols] = shift[const_cols] + scale[const_cols]
        X = X.astype(dtype)
        assert np.all(np.isfinite(X))
        if weights == "none":
            sw = None
        elif weights == "ints":
            sw = rng.integers(0, 4, n).astype(float)
        else:
            sw = rng.uniform(0, 3, n) * (rng.random(n) < 0.6)
            if weights == "zero_batch" and i > 0 and i % 2 == 1:
                sw = np.zeros(n)  # a whole batch of zero weight mid-stream
        if i == 0 and sw is not None and not np.any(sw > 0):
            sw[int(rng.integers(0, n))] = 1.0  # the first batch seeds something
        batches.append(X)
        sample_weights.append(sw)
    params = dict(
        n_components=K,
        covariance_type=ct,
        forgetting=draw(st.sampled_from(["responsibility", "uniform"])),
        forgetting_rate=draw(st.sampled_from([0.0, 0.01, 0.2, PowerDecay(0.3, t0=2.0)])),
        temperature_init=draw(st.floats(1.0, 3.0)),
        temperature_final=draw(st.sampled_from([1.0, 1.5])),
        anneal_steps=draw(st.integers(0, 3)),
        anneal_schedule=draw(st.sampled_from(["constant", "linear", "cosine", "exponential"])),
        init_params=draw(st.sampled_from(["k-means++", "random_from_data", "random", "kmeans"])),
        dead_threshold=draw(st.sampled_from([0.0, 1e-3, 0.5])),
        max_reseed=draw(st.sampled_from([None, 1])),
        random_state=int(rng.integers(0, 1000)),
    )
    return params, batches, sample_weights


@given(streams())
@_settings(150)
def test_invariants_hold_after_every_update(case):
    params, batches, sample_weights = case
    model = OnlineGaussianMixture(**params)
    seen = 0
    for i, (X, sw) in enumerate(zip(batches, sample_weights, strict=True)):
        model.partial_fit(X, sample_weight=sw)
        seen += X.shape[0]
        assert model.n_steps_ == i + 1 and model.n_samples_seen_ == seen
        check_invariants(model, X, answers=i == len(batches) - 1)
        assert int(np.sum(model._state.seeded)) <= model.n_components
    # the first batch had positive weight somewhere: something is seeded
    assert np.any(model._state.seeded)


@given(streams(max_batches=2), st.integers(0, 2**16))
@_settings(40)
def test_same_seed_same_stream_same_model(case, _):
    """Determinism: two runs of the same stream give bit-identical models."""
    params, batches, sample_weights = case
    a, b = OnlineGaussianMixture(**params), OnlineGaussianMixture(**params)
    for X, sw in zip(batches, sample_weights, strict=True):
        a.partial_fit(X, sample_weight=sw)
        b.partial_fit(X.copy(), sample_weight=None if sw is None else sw.copy())
    assert_same_state(state_snapshot(a), state_snapshot(b))


_TWO_POINTS = [[66.450066, 55.54231], [-16.122478, 27.664024]]
_SMALLER_THAN_D = np.random.default_rng(0).normal(0, 30, (8, 16))
FLOAT32_REPRODUCERS = [
    # (covariance_type, batch, sample_weight): what the property test found, and its kin
    ("full", _TWO_POINTS, [1.0, 2.0]),
    ("full", _SMALLER_THAN_D, None),  # any batch smaller than D, of feature std ~30
    ("tied", _SMALLER_THAN_D, None),
]


@pytest.mark.parametrize("covariance_type,batch,sample_weight", FLOAT32_REPRODUCERS)
def test_float32_full_and_tied_survive_rank_deficient_batches(
    covariance_type, batch, sample_weight
):
    X = np.asarray(batch, dtype=np.float32)
    model = OnlineGaussianMixture(1, covariance_type=covariance_type, random_state=0)
    model.partial_fit(X, sample_weight=sample_weight)
    model.partial_fit(X, sample_weight=sample_weight)
    check_invariants(model, X)


@pytest.mark.parametrize("covariance_type", TYPES)
def test_float32_far_points_score_finite_and_update(covariance_type):
    """Points 200 to 1e5 units from a component seeded on one sample (variance =
    reg_covar) in D = 128: log-densities of -1e12 and below, finite in float32 (D = 1
    suffices for spherical; in D = 64 predict_proba is already NaN)."""
    model = OnlineGaussianMixture(1, covariance_type=covariance_type, random_state=0)
    model.partial_fit(np.zeros((1, 128), dtype=np.float32))
    X = np.random.default_rng(0).uniform(200.0, 1e5, (20, 128)).astype(np.float32)
    ll = model.score_samples(X)
    np.testing.assert_allclose(ll, model.score_samples(X.astype(np.float64)), rtol=1e-6)
    np.testing.assert_array_equal(model.predict_proba(X), 1.0)
    model.partial_fit(X)
    check_invariants(model, X)


@pytest.mark.parametrize("covariance_type", TYPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_all_zero_first_batch_then_a_good_one(covariance_type, dtype):
    """A first batch of zero total weight seeds nothing and changes no parameter; the next
    batch seeds as a first batch would."""
    X, _, _ = blobs(n=80, K=3, D=3, seed=1, dtype=dtype)
    model = OnlineGaussianMixture(3, covariance_type=covariance_type, random_state=0)
    model.partial_fit(X[:20], sample_weight=np.zeros(20))
    assert not np.any(model._state.seeded)
    assert np.all(model.weights_ == 0)
    model.partial_fit(X[20:])
    check_invariants(model, X)
    fresh = OnlineGaussianMixture(3, covariance_type=covariance_type, random_state=0)
    fresh.partial_fit(X[20:])
    for f in ("weights", "means", "covariances", "mass", "nu", "moment"):
        np.testing.assert_array_equal(getattr(model._state, f), getattr(fresh._state, f))


def test_scoring_a_model_with_no_seeded_component_is_a_clear_error():
    X = np.random.default_rng(0).normal(size=(10, 2))
    model = OnlineGaussianMixture(2, random_state=0)
    model.partial_fit(X, sample_weight=np.zeros(10))
    for method in ("score_samples", "predict_proba", "predict", "score"):
        with pytest.raises(ValueError, match="seeded"):
            getattr(model, method)(X)


# --------------------------------------------------------------------------- bad batches
def _bad_batch(kind: str, X: np.ndarray):
    """(X, sample_weight, exception) of a batch the model must refuse."""
    n, d = X.shape
    if kind == "nan":
        Y = X.copy()
        Y[n // 2, d - 1] = np.nan
        return Y, None, ValueError
    if kind == "inf":
        Y = X.copy()
        Y[0, 0] = -np.inf
        return Y, None, ValueError
    if kind == "features":
        return np.ones((n, d + 1), dtype=X.dtype), None, ValueError
    if kind == "empty":
        return X[:0], None, ValueError
    if kind == "weights_negative":
        return X, -np.ones(n), ValueError
    if kind == "weights_nan":
        return X, np.full(n, np.nan), ValueError
    if kind == "weights_shape":
        return X, np.ones(n + 1), ValueError
    if kind == "overflow":  # finite, but its squares overflow float64: refused by the update
        return np.full_like(X, 1e200, dtype=np.float64) * np.arange(1, n + 1)[:, None], None, (
            FloatingPointError, RuntimeWarning, ValueError)
    raise AssertionError(kind)


BAD_KINDS = ["nan", "inf", "features", "empty", "weights_negative", "weights_nan",
             "weights_shape", "overflow"]


@given(
    covariance_type=st.sampled_from(TYPES),
    dtype=st.sampled_from([np.float32, np.float64]),
    n_batches=st.integers(3, 7),
    bad_at=st.lists(st.integers(1, 6), min_size=1, max_size=3),
    kinds=st.lists(st.sampled_from(BAD_KINDS), min_size=3, max_size=3),
    seed=st.integers(0, 1000),
)
@_settings(40)
def test_bad_batches_mid_stream_are_refused_and_the_stream_continues(
    covariance_type, dtype, n_batches, bad_at, kinds, seed
):
    X, _, _ = blobs(n=40 * n_batches, K=3, D=3, seed=seed, dtype=dtype)
    batches = np.array_split(X, n_batches)
    params = dict(covariance_type=covariance_type, forgetting_rate=0.05, temperature_init=2.0,
                  anneal_steps=3, dead_threshold=0.2, random_state=seed)
    clean, noisy = OnlineGaussianMixture(4, **params), OnlineGaussianMixture(4, **params)
    bad_at = set(bad_at)
    for i, batch in enumerate(batches):
        if i in bad_at:
            kind = kinds[i % len(kinds)]
            Y, sw, exc = _bad_batch(kind, batch)
            before = state_snapshot(noisy)
            with pytest.raises(exc):
                noisy.partial_fit(Y, sample_weight=sw)
            assert_same_state(before, state_snapshot(noisy))
        clean.partial_fit(batch)
        noisy.partial_fit(batch)
        check_invariants(noisy, batch)
    assert_same_state(state_snapshot(clean), state_snapshot(noisy))


# --------------------------------------------------------------------------- fault injection
class InjectedFault(RuntimeError):
    pass


# Every function an update calls, named where the caller looks it up (so a monkeypatch
# reaches the call). ``_kernels.*`` are looked up on the module at each call.
TARGETS: list[tuple[object, str]] = [
    (estimator_mod, "advance"),
    (estimator_mod, "check_initial_parameters"),
    (online_em_mod, "user_initialised_state"),
    (schedules_mod, "temperature_at"),
    (schedules_mod, "forgetting_rate_at"),
    (online_em_mod, "needs_seeding"),
    (online_em_mod, "em_step"),
    (online_em_mod, "check_finite_state"),
    (online_em_mod, "_seed_and_reseed"),
    (seeding_mod, "initial_means"),
    (seeding_mod, "residual_variance"),
    (online_em_mod, "batch_variance"),
    (seeding_mod, "kmeans_plusplus_indices"),
    (seeding_mod, "pooled_variance"),
    (seeding_mod, "seed_components"),
    (online_em_mod, "to_numpy"),
    (NumbaBackend, "step_plan"),
    (NumbaBackend, "state_statistics"),
    (NumbaBackend, "m_step"),
    (NumbaBackend, "spd_upper_factor"),
    (NumbaBackend, "all_finite"),
    (ReferenceBackend, "precision_cholesky"),
    (ReferenceBackend, "state_statistics"),
    (ReferenceBackend, "m_step"),
    (estep_mod, "covariance"),
    (estep_mod, "quadratic_pieces"),
    (estep_mod, "_add_chunk"),
    (estep_mod, "_stats"),
    (blocked_mod, "state_prepared"),
    (blocked_mod, "kernel_kind"),
    (kernels_mod, "block_statistics"),
    (kernels_mod, "tempered_posterior"),
    (numba_backend_mod, "forgetting_factors"),
    (numba_backend_mod, "_m_step_kernel"),
    (estep_mod, "_accumulate"),
    (mstep_kernels_mod, "forgetting_m_step"),
    (mstep_mod, "forgetting_factors"),
    (mstep_mod, "covariance"),
    (stats_mod, "covariance"),
    (seeding_mod, "_sq_dist_to_nearest"),
    (seeding_mod, "_greedy_d2_fast"),  # (NumPy rows: the numba backend's k-means++)
    (seeding_kernels_mod, "greedy_d2"),
    (seeding_mod, "scatter_rows"),
    (seeding_mod, "to_numpy"),
    (seeding_mod, "covariance"),
    (cov_full_mod, "regularised_scatter"),
    (cov_common_mod, "add_to_diagonal"),
    (cov_common_mod, "scatter_rows"),
]
# Publishing the fitted attributes (the precisions), after the new state is made.
POST_COMMIT_TARGETS: list[tuple[object, str]] = [(estimator_mod, "covariance")]


def _target_id(t) -> str:
    return f"{t[0].__name__.rsplit('.', 1)[-1]}.{t[1]}"


@contextlib.contextmanager
def _patched(module, name: str, fail_at: int | None, exc: BaseException | None = None):
    """Wrap ``module.name``: count calls, and raise ``exc`` at call number ``fail_at``."""
    original = getattr(module, name)
    calls = [0]

    def wrapper(*args, **kwargs):
        calls[0] += 1
        if fail_at is not None and calls[0] == fail_at:
            raise exc if exc is not None else InjectedFault(f"{name} call {fail_at}")
        return original(*args, **kwargs)

    setattr(module, name, wrapper)
    try:
        yield calls
    finally:
        setattr(module, name, original)


def _scenario(name: str, covariance_type: str):
    """(params, warm-up batches with weights, the batch that fails, a later batch)."""
    X, _, means = blobs(n=400, K=4, D=3, seed=2)
    base = dict(covariance_type=covariance_type, forgetting_rate=0.05, temperature_init=2.5,
                anneal_steps=4, anneal_schedule="cosine", random_state=3)
    if name == "first":  # the first update of a fresh model: k-means++ seeding
        return dict(n_components=4, **base), [], X[:100], X[100:200]
    if name == "steady":  # a plain update of a fully seeded model
        return dict(n_components=4, **base), [(X[:120], None)], X[120:220], X[220:300]
    if name == "seeding":  # a late batch seeds unseeded components and reseeds dead ones
        # weight 0 on 19 of the first 20 rows: only one component is seeded at first
        sw = np.zeros(20)
        sw[0] = 1.0
        warm = [(X[:20], sw), (X[20:120], None)]
        params = dict(n_components=6, dead_threshold=0.9, **base)
        return params, warm, X[120:220], X[220:300]
    if name == "user_init":  # the first update after means_init (covariances from the batch)
        params = dict(n_components=4, means_init=means + 0.3, weights_init=[0.25] * 4, **base)
        return params, [], X[:100], X[100:200]
    if name == "user_init_precisions":  # ... and with precisions_init
        prec = {"full": np.stack([np.eye(3)] * 4), "tied": np.eye(3),
                "diag": np.ones((4, 3)), "spherical": np.ones(4)}[covariance_type]
        params = dict(n_components=4, means_init=means - 0.3, precisions_init=prec, **base)
        return params, [], X[:100], X[100:200]
    raise AssertionError(name)


SCENARIOS = ["first", "steady", "seeding", "user_init", "user_init_precisions"]
@pytest.mark.parametrize(
    "covariance_type",
    ["tied", "full", "diag", "spherical"],
)
def test_means_init_alone_works_for_every_covariance_type(covariance_type):
    X, _, means = blobs(n=200, K=3, D=3, seed=5)
    model = OnlineGaussianMixture(3, covariance_type=covariance_type, means_init=means,
                                  random_state=0)
    model.partial_fit(X[:100])
    model.partial_fit(X[100:])
    check_invariants(model, X)


def _good_run(params, warm):
    model = OnlineGaussianMixture(**params)
    for Xb, sw in warm:
        model.partial_fit(Xb, sample_weight=sw)
    return model


def _fail_points(n_calls: int) -> list[int]:
    """Calls at which to fail: every one when few, else first, second, middle and last."""
    if n_calls <= 4:
        return list(range(1, n_calls + 1))
    return sorted({1, 2, (n_calls + 1) // 2, n_calls})


_EXCEPTIONS: list[Callable[[str], BaseException]] = [
    InjectedFault, lambda m: MemoryError(m), lambda m: KeyboardInterrupt(m),
    lambda m: FloatingPointError(m),
]


def _inject_and_compare(scen: str, covariance_type: str, target, fail_at: int, exc_i: int):
    params, warm, bad, later = _scenario(scen, covariance_type)
    model, twin = _good_run(params, warm), _good_run(params, warm)
    before = state_snapshot(model)
    exc = _EXCEPTIONS[exc_i % len(_EXCEPTIONS)](f"{target[1]} call {fail_at}")
    with _patched(*target, fail_at=fail_at, exc=exc) as calls:
        with pytest.raises(type(exc)):
            model.partial_fit(bad)
        assert calls[0] == fail_at
    if warm:
        assert_same_state(before, state_snapshot(model))
    # else: a fresh model; that it stays unfitted is test_a_fault_in_the_first_update_...
    # The stream goes on exactly as if the failed call never happened.
    for m in (model, twin):
        m.partial_fit(bad)
        m.partial_fit(later)
    assert_same_state(state_snapshot(twin), state_snapshot(model))
    check_invariants(model, later)


@pytest.mark.parametrize("covariance_type", TYPES)
@pytest.mark.parametrize("scen", SCENARIOS)
def test_a_fault_anywhere_inside_an_update_leaves_the_model_exactly_as_before(
    scen, covariance_type
):
    params, warm, bad, _ = _scenario(scen, covariance_type)
    injected = 0
    for target in TARGETS:
        probe = _good_run(params, warm)
        with _patched(*target, fail_at=None) as calls:
            probe.partial_fit(bad)
        for i, fail_at in enumerate(_fail_points(calls[0])):
            _inject_and_compare(scen, covariance_type, target, fail_at, i + injected)
            injected += 1
    assert injected >= 12  # the scenario really reaches most of the update


def test_every_target_is_reached_by_some_scenario():
    """Guards the target list: each function is called by at least one scenario's update."""
    reached = set()
    for ct in TYPES:
        for scen in SCENARIOS:
            params, warm, bad, _ = _scenario(scen, ct)
            for target in TARGETS:
                model = _good_run(params, warm)
                with _patched(*target, fail_at=None) as calls:
                    model.partial_fit(bad)
                if calls[0]:
                    reached.add(_target_id(target))
    assert {_target_id(t) for t in TARGETS} - reached == set()


@pytest.mark.parametrize("covariance_type", ["diag", "full"])
def test_a_fault_in_the_first_update_leaves_the_model_unfitted(covariance_type):
    X, _, _ = blobs(n=100, K=3, D=3, seed=4)
    model = OnlineGaussianMixture(3, covariance_type=covariance_type, random_state=0)
    before = state_snapshot(model)
    with _patched(online_em_mod, "check_finite_state", fail_at=1), \
            pytest.raises(InjectedFault):
        model.partial_fit(X)
    assert_same_state(before, state_snapshot(model))


@pytest.mark.parametrize("target", POST_COMMIT_TARGETS, ids=_target_id)
def test_a_fault_while_publishing_the_new_parameters_leaves_the_model_alone(target):
    params, warm, bad, _ = _scenario("steady", "full")
    model = _good_run(params, warm)
    before = state_snapshot(model)
    with _patched(*target, fail_at=1, exc=MemoryError("publish")), pytest.raises(MemoryError):
        model.partial_fit(bad)
    assert_same_state(before, state_snapshot(model))


@pytest.mark.parametrize("covariance_type", ["diag", "full"])
def test_a_fault_inside_the_generic_array_api_path_leaves_the_model_alone(
    covariance_type, reference_backend
):
    """The array-API code (used for torch / cupy input) with NumPy arrays: same guarantee."""
    targets = [(estep_mod, "logsumexp"), (estep_mod, "finish"), (mstep_mod, "covariance"),
               (seeding_mod, "scatter_rows")]
    if covariance_type == "full":
        targets += [(cov_common_mod, "add_to_diagonal"), (ReferenceBackend, "spd_upper_factor")]
    for target in targets:
        params, warm, bad, later = _scenario("seeding", covariance_type)
        model, twin = _good_run(params, warm), _good_run(params, warm)
        before = state_snapshot(model)
        with _patched(*target, fail_at=1), pytest.raises(InjectedFault):
            model.partial_fit(bad)
        assert_same_state(before, state_snapshot(model))
        for m in (model, twin):
            m.partial_fit(bad)
            m.partial_fit(later)
        assert_same_state(state_snapshot(twin), state_snapshot(model))


def test_an_update_never_writes_into_the_arrays_of_the_previous_state():
    """Functional update: arrays of the old state (which callers may still hold, e.g. the
    published ``means_`` of a previous step) are never modified in place."""
    for ct in TYPES:
        params, warm, bad, later = _scenario("seeding", ct)
        model = _good_run(params, warm)
        old = model._state
        frozen = pickle.loads(pickle.dumps(old))
        model.partial_fit(bad)
        model.partial_fit(later)
        for f in dataclasses.fields(old):
            np.testing.assert_array_equal(getattr(old, f.name), getattr(frozen, f.name))


@given(
    covariance_type=st.sampled_from(TYPES),
    seed=st.integers(0, 10_000),
    fail_at=st.integers(1, 400),
)
@_settings(25)
def test_a_fault_at_a_random_point_of_a_random_stream(covariance_type, seed, fail_at):
    """Any exception at the n-th call of *any* online_gmm function during an update."""
    import sys

    rng = np.random.default_rng(seed)
    X, _, _ = blobs(n=300, K=4, D=3, seed=seed)
    params = dict(n_components=int(rng.integers(2, 7)), covariance_type=covariance_type,
                  forgetting_rate=0.1, dead_threshold=0.5, temperature_init=2.0,
                  anneal_steps=3, random_state=seed)
    cut = int(rng.integers(1, 60))
    model, twin = OnlineGaussianMixture(**params), OnlineGaussianMixture(**params)
    for m in (model, twin):
        m.partial_fit(X[:cut])
    before = state_snapshot(model)
    calls = [0]

    def tracer(frame, event, arg):
        if event == "call" and frame.f_globals.get("__name__", "").startswith("online_gmm"):
            calls[0] += 1
            if calls[0] == fail_at:
                raise InjectedFault(f"{frame.f_code.co_name} (call {fail_at})")
        return None

    sys.settrace(tracer)
    try:
        model.partial_fit(X[cut:150])
        failed = False
    except InjectedFault:
        failed = True
    finally:
        sys.settrace(None)
    assume(failed)  # fail_at beyond the update's last call: nothing injected
    assert_same_state(before, state_snapshot(model))
    for m in (model, twin):
        m.partial_fit(X[cut:150])
        m.partial_fit(X[150:])
    assert_same_state(state_snapshot(twin), state_snapshot(model))


@pytest.mark.parametrize("covariance_type", TYPES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("scale", [1e-8, 1e-3, 1.0, 3.0, 1e5, 1e8])
@pytest.mark.parametrize("offset", [0.0, 1e8])
def test_first_batches_below_at_and_above_d_at_every_scale(covariance_type, dtype, scale,
                                                             offset):
    """A first batch of 2, D - 1, D, D + 1 rows (rank-deficient up to D) at any scale:
    the seeds' covariances are regularised relative to the data's own scale, as every
    M-step's are (an absolute reg_covar of 1e-6 is below float64's resolution of a variance
    of 1e10), and float32 ``tied`` statistics are positive semi-definite."""
    D = 8 if covariance_type != "tied" else 16
    rng = np.random.default_rng(int(np.log10(scale) + 20) * 7 + D)
    for n in (2, D - 1, D, D + 1):
        X = (rng.normal(size=(n, D)) * scale + offset).astype(dtype)
        model = OnlineGaussianMixture(3, covariance_type=covariance_type, random_state=0)
        model.partial_fit(X)
        later = (rng.normal(size=(4 * D, D)) * scale + offset).astype(dtype)
        model.partial_fit(later)
        check_invariants(model, later)


@pytest.mark.parametrize("backend", ["numba", "reference"])
@pytest.mark.parametrize("n,D,std", [(32, 64, 3.0), (512, 1024, 1.0)])
def test_tied_float32_on_ordinary_data(backend, n, D, std):
    """The pooled float32 scatter is positive semi-definite (it failed with "ill-defined
    empirical covariance" at std >= 3, D = 64, and std 1 at D = 2048, B = 512)."""
    from online_gmm.core import use_backend

    X = (np.random.default_rng(0).normal(size=(n, D)) * std).astype(np.float32)
    with use_backend(backend):
        model = OnlineGaussianMixture(6, covariance_type="tied", random_state=0)
        model.partial_fit(X)
        model.partial_fit(X[::-1])
    if backend == "numba":
        check_invariants(model, X)
    else:  # (the reference's factor is triangular only to rounding: no exact-triu check)
        np.linalg.cholesky(model.covariances_)
        assert np.isfinite(model.precisions_cholesky_).all()
        assert np.isfinite(model.score_samples(X)).all()
