"""The bridge's CUDA code path, proven on CPU (no GPU here): host reads per call, ops per
call against K, one compiled graph, one E-step per training step, memory planned from the
state. ``use_backend("reference")`` runs CPU tensors through exactly the code CUDA tensors
run (see ``_device_proxies``)."""

from __future__ import annotations

import copy

import pytest
import sklearn
import torch

from online_gmm import core
from ssl_bridge import GMMPrototypes

from ._device_proxies import DeviceCalls, PeakStorage

TYPES = ["spherical", "diag", "tied", "full"]
D = 8


def _steady(ct: str, K: int = 16, n_updates: int = 3, **kw) -> GMMPrototypes:
    torch.manual_seed(0)
    head = GMMPrototypes(K, D, covariance_type=ct, warmup_size=0, **kw)
    for _ in range(n_updates):
        head.update(torch.randn(128, D))
    return head


@pytest.mark.parametrize("ct", TYPES)
@pytest.mark.parametrize("n_before", [3, 40])  # a step that checks redundancy, one that not
def test_steady_update_reads_the_device_once(ct, n_before):
    with core.use_backend("reference"):
        head = _steady(ct, n_updates=n_before)
        x = torch.randn(128, D)
        with DeviceCalls() as calls:
            info = head.update(x)
        assert info["updated"]
        assert calls.n_syncs == 1, dict(calls.syncs)
        assert [what for what, _ in calls.syncs] == ["tolist"]  # the fused flags
        for balance in (None, "sinkhorn"):
            with DeviceCalls() as calls:
                head.targets(x, balance=balance)
            assert calls.n_syncs == 0, dict(calls.syncs)
        with DeviceCalls() as calls:
            head(x)
        assert calls.n_syncs == 0, dict(calls.syncs)
        with DeviceCalls() as calls:
            head.update(x, return_targets=True, balance="sinkhorn")
        assert calls.n_syncs == 1, dict(calls.syncs)


@pytest.mark.parametrize("ct", TYPES)
def test_ops_per_update_do_not_grow_with_K(ct):
    ops = []
    with core.use_backend("reference"):
        for K in (8, 64):
            head = _steady(ct, K=K, n_updates=40)
            with DeviceCalls() as calls:
                head.update(torch.randn(128, D))
            ops.append(calls.ops)
    assert ops[0] == ops[1], ops


@pytest.mark.parametrize("ct", TYPES)
def test_compiled_steady_step_is_one_graph_equal_to_eager(ct):
    import torch._dynamo

    torch._dynamo.reset()
    with core.use_backend("reference"):
        eager = _steady(ct)
        compiled = copy.deepcopy(eager).compile_step()  # fullgraph=True: a break raises
        for i in range(2):
            x = torch.randn(128, D)
            if i == 0:
                a, b = eager.update(x), compiled.update(x)
            else:  # with the targets of the step's own E-step
                (a, qa), (b, qb) = (h.update(x, return_targets=True, temperature=0.3)
                                    for h in (eager, compiled))
                torch.testing.assert_close(qa, qb, rtol=1e-4, atol=1e-6)
            assert torch.allclose(a["loglik"], b["loglik"], rtol=1e-5)
        for name in core.STATE_FIELDS:
            x, y = getattr(eager, name), getattr(compiled, name)
            if x.is_floating_point():
                # (float32 responsibilities: the two graphs round differently)
                torch.testing.assert_close(x, y, rtol=1e-4, atol=1e-6)
            else:
                assert torch.equal(x, y)
        x = torch.randn(64, D)
        for balance in (None, "sinkhorn"):
            targets = torch.compile(eager.targets, fullgraph=True)
            torch.testing.assert_close(targets(x, balance=balance),
                                       eager.targets(x, balance=balance))


@pytest.mark.parametrize("ct", TYPES)
@pytest.mark.parametrize("backend", ["numba", "reference"])
@pytest.mark.parametrize("balance", [None, "sinkhorn"])
def test_update_returns_the_targets_of_its_own_estep(ct, backend, balance):
    with core.use_backend(backend):
        for n_updates in (0, 3):  # the seeding step and a steady one
            head = _steady(ct, n_updates=n_updates) if n_updates else GMMPrototypes(
                16, D, covariance_type=ct, warmup_size=0)
            x = torch.randn(128, D)
            if n_updates:
                before = copy.deepcopy(head)
                expected = before.targets(x, temperature=0.3, balance=balance)
            info, q = head.update(x, return_targets=True, temperature=0.3, balance=balance)
            assert q.shape == (128, 16)
            torch.testing.assert_close(q.sum(dim=1), torch.ones(128))
            if n_updates:  # the posterior under the parameters the E-step used
                torch.testing.assert_close(q, expected, rtol=1e-5, atol=1e-6)
            # the same step as without targets
            twin = copy.deepcopy(before) if n_updates else GMMPrototypes(
                16, D, covariance_type=ct, warmup_size=0)
            twin.update(x)
            # (both backends hand over the log-densities of the step's own E-step, the
            # numba one from its block kernels: the step is the same, to the bit)
            for name in ("means", "covariances", "weights", "moment"):
                torch.testing.assert_close(getattr(twin, name), getattr(head, name),
                                           rtol=0, atol=0)


def test_skipped_rows_get_nan_targets_and_the_rest_are_the_posterior():
    head = _steady("diag", nonfinite="skip")
    x = torch.randn(32, D)
    x[5] = float("nan")
    before = copy.deepcopy(head)
    with pytest.warns(RuntimeWarning, match="skipped 1 of 32"):
        _, q = head.update(x, return_targets=True)
    ok = torch.ones(32, dtype=torch.bool)
    ok[5] = False
    torch.testing.assert_close(q[ok], before.targets(x[ok]))
    assert torch.isnan(q[5]).all() or torch.isfinite(q[5]).all()  # a row, whichever
    assert torch.isfinite(q[ok]).all()


@pytest.mark.parametrize(("ct", "K", "bound"), [
    # The floors of this design (docs/benchmarks.md, "Memory of one steady update"), during
    # the E-step: the state, its data-dtype layout, the batch's float64 sums, one block of
    # components' sums before they are added (an eighth), and the chunk. spherical (float64
    # means, float32 copies of their size): 1 + 0.5 + 1 + 0.06 + the chunk, about 2.7x;
    # diag (four (K, D) arrays in the state): 1 + 0.25 + 0.5 + 0.03 + the chunk, about
    # 1.9x; its commit (the new means, moment, covariances and factors as new tensors, the
    # old kept until the swap) is 2.0x and the batch. Before the sums came in blocks and
    # the chunks were planned within half the state: 3.16x and 2.11x.
    ("spherical", 32_768, 2.8),
    ("diag", 8_192, 2.05),
])
def test_a_steady_update_holds_a_bounded_multiple_of_the_state(ct, K, bound):
    """The storage one steady update on the CUDA code path holds at its peak, over the
    state's (the proxy of ``torch.cuda.max_memory_allocated``): a chunked E-step whose sums
    are added up in place, and an M-step made in the statistics' own arrays (7.1x and 4.2x
    before, at the benchmark's size)."""
    from benchmarks._gpu_memory import _state_dict

    D, B = 256, 512
    head = GMMPrototypes(K, D, covariance_type=ct, warmup_size=0)
    head.load_state_dict(_state_dict(K, D, ct), strict=False)
    state = sum(b.nbytes for b in head.buffers())
    torch.manual_seed(0)
    x = torch.nn.functional.normalize(torch.randn(B, D), dim=1)
    with core.use_backend("reference"):
        head.update(x)
        with PeakStorage() as memory:
            info = head.update(x)
    assert info["updated"]
    assert 1.5 < (state + memory.peak) / state <= bound


def test_chunks_are_planned_within_half_the_state_size():
    head = _steady("diag", K=64)
    state_mib = sum(getattr(head, n).nbytes for n in core.STATE_FIELDS) / 2**20
    assert state_mib < 1
    assert head._working_memory(torch.zeros(1, D)) == 64.0  # (the floor)
    big = GMMPrototypes(32_768, 256, covariance_type="diag", warmup_size=0)
    state_mib = sum(getattr(big, n).nbytes for n in core.STATE_FIELDS) / 2**20
    assert state_mib > 250
    assert big._working_memory(torch.zeros(1, 256)) == state_mib / 2
    with sklearn.config_context(working_memory=100):  # (scikit-learn's, when smaller)
        assert big._working_memory(torch.zeros(1, 256)) == 100


def test_full_type_statistics_equal_the_per_component_formula():
    """The batched ``full`` E-step and scatter equal the loop over components they replace."""
    from online_gmm._math.covariance import full

    rng = torch.Generator().manual_seed(0)
    K, n = 5, 40
    Xc = torch.randn(n, D, dtype=torch.float64, generator=rng)
    mu = torch.randn(K, D, dtype=torch.float64, generator=rng)
    A = torch.randn(K, D, D, dtype=torch.float64, generator=rng)
    U = torch.linalg.cholesky(A @ A.transpose(1, 2) + torch.eye(D)).transpose(1, 2)

    class P:
        mu_c, prec_chol = mu, U

    import array_api_compat.torch as xp

    G, _ = full.quadratic_pieces(Xc, P, xp)
    loop = torch.stack([(((Xc - mu[k]) @ U[k]) ** 2).sum(1) for k in range(K)], dim=1)
    torch.testing.assert_close(G, loop)
    R = torch.softmax(torch.randn(n, K, dtype=torch.float64, generator=rng), dim=1)
    w = torch.rand(n, dtype=torch.float64, generator=rng)
    m = w @ R
    xbc, M = full.sums_moments(full.chunk_sums(Xc, w, Xc * w[:, None], R, None, xp), m, m,
                               None, xp)
    for k in range(K):
        Y = (Xc - xbc[k]) * torch.sqrt(w * R[:, k])[:, None]
        torch.testing.assert_close(M[k], Y.T @ Y)


@pytest.mark.parametrize("n_centers", [0, 5])
def test_kmeans_plusplus_on_the_device_draws_the_host_s_seeds(n_centers):
    """The device's k-means++ (uniforms from the same RandomState, searched on the device)
    chooses the rows the host's chooses."""
    import array_api_compat.numpy as npx
    import array_api_compat.torch as tx
    import numpy as np

    from online_gmm._em.seeding import kmeans_plusplus_indices

    X = np.random.default_rng(0).normal(size=(400, D))
    w = np.ones(400)
    w[:10] = 0.0  # rows of no weight are never chosen
    C = X[100 : 100 + n_centers]
    host = kmeans_plusplus_indices(X, w, C, 24, np.random.RandomState(3), npx)
    dev = kmeans_plusplus_indices(torch.from_numpy(X), w, torch.from_numpy(C), 24,
                                  np.random.RandomState(3), tx)
    assert isinstance(dev, torch.Tensor)
    np.testing.assert_array_equal(host, dev.numpy())
    assert not np.isin(host, np.arange(10)).any()


def test_warm_up_restarts_read_the_host_a_number_of_times_independent_of_K():
    reads = {}
    with core.use_backend("reference"):
        for K in (8, 48):
            torch.manual_seed(0)
            head = GMMPrototypes(K, D, warmup_size=512, warmup_restarts=2)
            for _ in range(3):
                head.update(torch.randn(128, D))
            with DeviceCalls() as calls:
                head.update(torch.randn(128, D))  # fills the buffer: the restarts run
            assert int(head.warmup_progress[0]) == 2  # (done)
            reads[K] = calls.n_syncs
    # k-means++ reads nothing per centre: 40 more centres add no reads
    assert reads[48] <= reads[8] + 4, reads


@pytest.mark.parametrize("warmup_size", [0, "auto"])  # the steady path, the general one
@pytest.mark.parametrize("balance", [None, "sinkhorn"])
def test_skipped_rows_are_left_out_of_the_targets(warmup_size, balance):
    torch.manual_seed(0)
    head = GMMPrototypes(4, D, warmup_size=warmup_size, nonfinite="skip")
    head.update(torch.randn(64, D))
    x = torch.randn(16, D)
    x[2] = float("nan")
    before = copy.deepcopy(head)
    with pytest.warns(RuntimeWarning, match="skipped 1 of 16"):
        _, q = head.update(x, return_targets=True, balance=balance)
    ok = torch.isfinite(x).all(dim=1)
    assert torch.isnan(q[2]).all()
    torch.testing.assert_close(q[ok], before.targets(x[ok], balance=balance),
                               rtol=1e-5, atol=1e-6)


def test_forward_compiles_in_one_graph_after_a_load_or_a_move():
    src = _steady("spherical")
    head = GMMPrototypes(16, D, warmup_size=0)
    head.load_state_dict(src.state_dict())
    z = torch.randn(8, D)
    compiled = torch.compile(head, fullgraph=True, backend="eager")
    torch.testing.assert_close(compiled(z), src(z))
    moved = copy.deepcopy(src).to(torch.float64)  # (new tensors, the same values)
    torch.testing.assert_close(torch.compile(moved, fullgraph=True, backend="eager")(z),
                               src(z))


def test_buffers_written_in_place_are_noticed():
    def make():
        torch.manual_seed(0)
        head = GMMPrototypes(4, D, warmup_size=0, temperature_init=4.0, anneal_steps=20,
                             anneal_schedule="linear")
        for _ in range(5):
            head.update(torch.randn(64, D))
        return head

    head = make()
    with torch.no_grad():
        head.weights[0] = 0.0  # a dead prototype, by hand
    assert head.update(torch.randn(64, D))["n_reseeded"] == 1
    head = make()
    with torch.no_grad():
        head.step.zero_()  # the schedule starts again
    assert head.update(torch.randn(64, D))["temperature"] == pytest.approx(4.0)
    assert int(head.step) == 1


def test_a_state_dict_taken_during_updates_is_of_one_step():
    import threading

    head = GMMPrototypes(8, D, warmup_size=0, covariance_type="diag")
    head.update(torch.randn(16, D))
    torn, stop = [], threading.Event()

    def updates():
        for _ in range(150):
            head.update(torch.randn(16, D))

    def snapshots():
        while not stop.is_set():
            sd = head.state_dict()
            if int(sd["n_samples_seen"]) != 16 * int(sd["step"]):
                torn.append((int(sd["step"]), int(sd["n_samples_seen"])))

    workers = [threading.Thread(target=updates) for _ in range(2)]
    reader = threading.Thread(target=snapshots)
    for t in [*workers, reader]:
        t.start()
    for t in workers:
        t.join()
    stop.set()
    reader.join()
    assert torn == []
    assert int(head.step) == 301


def test_warm_up_greedy_seeds_on_the_device_are_the_host_s():
    """The warm-up restarts' k-means++ on the rows' device (no read per seed) picks the
    host's seeds from the same uniforms."""
    import array_api_compat.numpy as npx
    import array_api_compat.torch as tx
    import numpy as np

    from online_gmm._em import warmup

    X = np.random.default_rng(0).normal(size=(600, D))
    w = np.ones(600)
    w[:7] = 0.0
    u = np.random.RandomState(1).random_sample((12, warmup.seed_trials(12)))
    host = warmup._greedy_one(*warmup._centred(X, npx)[:2], w, u, npx)
    dev = warmup._greedy_one_on_device(*warmup._centred(torch.from_numpy(X), tx)[:2], w, u, tx)
    np.testing.assert_array_equal(host, dev)


def _first_reseeding_update_reads(K: int) -> tuple[int, int]:
    """(reads and copies, prototypes reseeded) of the first reseeding update after the
    seeding, on a stream that collapses onto three clusters (dead prototypes)."""
    g = torch.Generator().manual_seed(0)
    centres = 3 * torch.randn(3, D, generator=g)
    head = GMMPrototypes(K, D, warmup_size=0, forgetting_rate=0.2, dead_threshold=0.04)
    for i in range(40):
        x = (torch.randn(64, D, generator=g) if i < 2
             else centres[torch.randint(0, 3, (64,), generator=g)]
             + 0.1 * torch.randn(64, D, generator=g))
        before = int(head.n_reseeded)
        with DeviceCalls() as calls:
            head.update(x)
        if i > 3 and int(head.n_reseeded) > before:
            return calls.n_syncs, int(head.n_reseeded) - before
    raise AssertionError("no reseeding")


def test_a_reseeding_update_reads_a_fixed_number_of_times_whatever_k():
    """Reseeding dead prototypes (frequent in SSL training) reads the device a number of
    times that does not grow with K nor with the prototypes reseeded: the state's flags,
    weights and masses come over in one read, the step knows from the last step's flags
    that it seeds, the seeded rows' places go to the device once for every array they are
    written into, what the host knows already (a live component, one seeded, the screened
    rows' unit weights) is not asked, and k-means++ takes the batch's weights where they
    are (8 reads and copies here; 23 before the last four, 34 before all)."""
    with core.use_backend("reference"):
        (small, n_small), (large, n_large) = (_first_reseeding_update_reads(K)
                                              for K in (16, 48))
    assert n_large > n_small  # (more prototypes reseeded at once)
    assert small == large, (small, large)
    assert large <= 8, large
