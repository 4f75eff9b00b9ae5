"""ssl_bridge.GMMPrototypes: the core's math driven from PyTorch."""

import os
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is the optional 'torch' extra")

from online_gmm import OnlineGaussianMixture, core  # noqa: E402
from ssl_bridge import GMMPrototypes, _random  # noqa: E402

FIELDS = ("weights", "means", "covariances", "precisions_cholesky", "mass", "nu", "moment",
          "tied_mass", "seeded", "step", "n_samples_seen", "n_reseeded", "rng_state")


def _stream(n_batches=6, B=64, D=8, K=5, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(K, D, generator=g, dtype=torch.float64) * 3
    out = []
    for _ in range(n_batches):
        lab = torch.randint(0, K, (B,), generator=g)
        out.append((centres[lab] + torch.randn(B, D, generator=g, dtype=torch.float64)).to(dtype))
    return out


def _assert_same_buffers(a, b, exact=True, rtol=0.0):
    for name in FIELDS:
        x, y = getattr(a, name), getattr(b, name)
        if exact or not x.is_floating_point():
            assert torch.equal(x, y), name
        else:
            torch.testing.assert_close(x, y, rtol=rtol, atol=rtol, msg=name)


def test_update_targets_logits_shapes_and_gradients():
    head = GMMPrototypes(16, 8, random_state=0)
    assert list(head.parameters()) == []  # nothing for an optimiser to touch
    batch = _stream(1)[0]
    info = head.update(batch)
    assert info["n_seeded"] == 16 and bool(torch.isfinite(info["loglik"]))
    q = head.targets(batch, temperature=0.1)
    assert q.shape == (64, 16) and not q.requires_grad
    torch.testing.assert_close(q.sum(dim=1), torch.ones(64))
    sharp = head.targets(batch, temperature=0.05)
    ent = lambda p: -(p * p.clamp_min(1e-30).log()).sum(1).mean()  # noqa: E731
    assert ent(sharp) < ent(q)
    student = torch.randn(64, 8, requires_grad=True)
    for kind in ("cosine", "gaussian"):
        logits = head.logits(student, kind=kind)
        assert logits.shape == (64, 16)
        logits.sum().backward()
        assert student.grad is not None and torch.isfinite(student.grad).all()
        student.grad = None
    assert head.means.grad is None and not head.means.requires_grad
    cos = head.logits(student, kind="cosine")
    assert cos.abs().max() <= 1 + 1e-5


def test_targets_before_any_update_is_a_clear_error():
    with pytest.raises(RuntimeError, match="update"):
        GMMPrototypes(4, 3).targets(torch.randn(5, 3))


class _EstimatorsDraws(_random.DeviceRandom):
    """The bridge's random draws taken from the estimator's own ``RandomState`` stream (one
    stream across updates), so that the two can be compared draw for draw."""

    stream: np.random.RandomState

    def random_sample(self, size=None):
        return self.stream.random_sample(size)

    def choice(self, *args, **kwargs):
        return self.stream.choice(*args, **kwargs)

    def permutation(self, x):
        return self.stream.permutation(x)


@pytest.mark.parametrize(("bridge_warmup", "estimator_warmup"),
                         [(0, 0), ("auto", 64 * 5), (100, 100)])
def test_same_math_as_the_estimator(bridge_warmup, estimator_warmup, monkeypatch):
    """normalize=False: the bridge and OnlineGaussianMixture are one algorithm, the warm-up
    included (the bridge's "auto" is the restarts on 64 rows per prototype, without the
    estimator's refinement: the estimator's warm-up of that int size), given the same
    random draws (the bridge's come from its torch.Generator, the estimator's from NumPy:
    here the bridge is handed the estimator's stream)."""
    batches = _stream(dtype=torch.float64, n_batches=12)
    params = dict(covariance_type="diag", forgetting_rate=0.01, temperature_init=2.0,
                  anneal_steps=3, random_state=3)
    monkeypatch.setattr(_EstimatorsDraws, "stream", np.random.RandomState(3), raising=False)
    monkeypatch.setattr(_random, "DeviceRandom", _EstimatorsDraws)
    head = GMMPrototypes(5, 8, normalize=False, warmup_size=bridge_warmup, **params)
    est = OnlineGaussianMixture(5, warmup_size=estimator_warmup, **params)
    for b in batches:
        head.update(b)
        est.partial_fit(b.numpy())
    np.testing.assert_array_equal(head.means.numpy(), est.means_)
    np.testing.assert_array_equal(head.covariances.numpy(), est.covariances_)
    np.testing.assert_array_equal(head.weights.numpy(), est.weights_)
    x = batches[0]
    np.testing.assert_allclose(head.targets(x).numpy(), est.predict_proba(x.numpy()), atol=1e-12)


@pytest.mark.parametrize("covariance_type", ["spherical", "diag", "full", "tied"])
def test_fast_cpu_path_matches_generic_torch_path(covariance_type):
    batches = _stream()
    fast = GMMPrototypes(5, 8, covariance_type=covariance_type, forgetting_rate=0.02)
    for b in batches:
        fast.update(b)
    generic = GMMPrototypes(5, 8, covariance_type=covariance_type, forgetting_rate=0.02)
    with core.use_backend("reference"):
        for b in batches:
            generic.update(b)
    _assert_same_buffers(fast, generic, exact=False, rtol=1e-4)  # float32 embeddings


def test_state_dict_resume_is_bit_identical():
    batches = _stream(n_batches=10)
    params = dict(forgetting_rate=0.05, dead_threshold=0.9, temperature_init=3.0,
                  anneal_steps=5)
    straight = GMMPrototypes(6, 8, **params)
    for b in batches:
        straight.update(b)
    first = GMMPrototypes(6, 8, **params)
    for b in batches[:4]:
        first.update(b)
    resumed = GMMPrototypes(6, 8, **params)
    resumed.load_state_dict(first.state_dict())
    for b in batches[4:]:
        resumed.update(b)
    assert int(straight.n_reseeded) > 0  # the rng state matters for this comparison
    _assert_same_buffers(straight, resumed)


def test_to_dtype_keeps_the_float64_state():
    head = GMMPrototypes(4, 3)
    head.update(torch.randn(20, 3))
    before = head.means.clone()
    head.to(torch.float16)
    assert head.means.dtype == torch.float64
    assert torch.equal(head.means, before)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float64])
def test_low_and_high_precision_embeddings(dtype):
    head = GMMPrototypes(8, 6)
    x = torch.randn(40, 6).to(dtype)
    head.update(x)
    q = head.targets(x)
    assert q.dtype == (torch.float64 if dtype == torch.float64 else torch.float32)
    torch.testing.assert_close(q.sum(1), torch.ones(40, dtype=q.dtype))
    assert head.logits(x.float().requires_grad_()).dtype == torch.float32


def test_nonfinite_embeddings_raise_and_leave_the_state_alone():
    head = GMMPrototypes(4, 3)
    head.update(torch.randn(30, 3))
    before = {k: v.clone() for k, v in head.state_dict().items()}
    bad = torch.randn(30, 3)
    bad[5, 1] = float("nan")
    bad[7, 0] = float("inf")
    with pytest.raises(ValueError, match="NaN or inf in 2 rows"):
        head.update(bad)
    for k, v in head.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_nonfinite_embeddings_skipped_when_asked():
    a = GMMPrototypes(4, 3, nonfinite="skip")
    b = GMMPrototypes(4, 3)
    x = torch.randn(30, 3)
    bad = x.clone()
    bad[3] = float("nan")
    with pytest.warns(RuntimeWarning, match="skipped 1 of 30"):
        info = a.update(bad)
    assert info["n_skipped"] == 1
    b.update(torch.cat([x[:3], x[4:]]))
    _assert_same_buffers(a, b)


@pytest.mark.parametrize(
    "bad,exc,match",
    [
        (torch.randn(5, 4), ValueError, r"shape \(batch, 3\)"),
        (torch.randn(5), ValueError, "shape"),
        (torch.ones(5, 3, dtype=torch.int64), ValueError, "floating"),
        (np.ones((5, 3)), TypeError, "torch.Tensor"),
    ],
)
def test_bad_input_is_named(bad, exc, match):
    head = GMMPrototypes(4, 3)
    with pytest.raises(exc, match=match):
        head.update(bad)


def test_invalid_parameters_are_named():
    with pytest.raises(ValueError, match="covariance_type"):
        GMMPrototypes(4, 3, covariance_type="nope")
    with pytest.raises(ValueError, match="forgetting_rate"):
        GMMPrototypes(4, 3, forgetting_rate=1.5)
    with pytest.raises(ValueError, match="nonfinite"):
        GMMPrototypes(4, 3, nonfinite="drop")


def test_batch_smaller_than_k_and_prototypes_stay_diverse():
    torch.manual_seed(0)
    head = GMMPrototypes(256, 16, forgetting_rate=0.01)
    # more well-separated directions than prototypes: a mixture that does not collapse
    # spreads its 256 prototypes over distinct directions
    centres = torch.nn.functional.normalize(torch.randn(1024, 16), dim=1)
    for _ in range(30):
        lab = torch.randint(0, 1024, (48,))  # batch of 48 against 256 prototypes
        head.update(centres[lab] + 0.02 * torch.randn(48, 16))
    assert bool(head.seeded.all())
    report = head.collapse_report()
    assert report["unique_fraction"][0.025] > 0.9


# ---------------------------------------------------------------- distributed (gloo, 2 ranks)
_DDP_SCRIPT = r"""
import os, sys, numpy as np, torch, torch.distributed as dist
sys.path.insert(0, os.environ["REPO"])
from ssl_bridge import GMMPrototypes
rank, world = int(sys.argv[1]), 2
dist.init_process_group("gloo", init_method="file://" + os.environ["INIT_FILE"],
                        rank=rank, world_size=world)
data = torch.load(os.environ["DATA"])
states = {}
for ct, ws in (("spherical", "auto"), ("full", "auto"), ("tied", 80)):
    head = GMMPrototypes(6, 8, covariance_type=ct, forgetting_rate=0.02, dead_threshold=0.5,
                         warmup_size=ws)
    for b in data["batches"]:
        half = b.shape[0] // 2
        head.update(b[:half] if rank == 0 else b[half:])
    states[ct] = head.state_dict()
bad = data["batches"][0][:8].clone()
if rank == 1:
    bad[2, 0] = float("nan")
strict = GMMPrototypes(6, 8)
strict.update(data["batches"][0][:8])
try:
    strict.update(bad)
    raised = False
except ValueError:
    raised = True
torch.save({"states": states, "raised": raised}, os.environ["OUT"] + f".{rank}")
dist.barrier()
dist.destroy_process_group()
"""


def test_ddp_two_gloo_ranks_equal_one_process(tmp_path):
    import subprocess

    batches = _stream(n_batches=5, B=40)
    torch.save({"batches": batches}, tmp_path / "data.pt")
    script = tmp_path / "ddp.py"
    script.write_text(_DDP_SCRIPT)
    env = dict(
        os.environ, REPO=os.getcwd(), INIT_FILE=str(tmp_path / "init"),
        DATA=str(tmp_path / "data.pt"), OUT=str(tmp_path / "out"), OMP_NUM_THREADS="1",
    )
    procs = [subprocess.Popen([sys.executable, str(script), str(r)], env=env) for r in (0, 1)]
    assert [p.wait(timeout=240) for p in procs] == [0, 0]
    outs = [torch.load(tmp_path / f"out.{r}") for r in (0, 1)]
    # (tied: a warm-up of 80 rows, two whole batches, that completes; the others buffer)
    for covariance_type, warmup_size in (("spherical", "auto"), ("full", "auto"), ("tied", 80)):
        ranks = [o["states"][covariance_type] for o in outs]
        # every rank holds bit-identical prototypes...
        for k in ranks[0]:
            assert torch.equal(ranks[0][k], ranks[1][k]), k
        # ...equal to one process that saw the concatenated batches (float32 embeddings:
        # the ranks sum their statistics in another order, so float32 tolerance)
        single = GMMPrototypes(6, 8, covariance_type=covariance_type, forgetting_rate=0.02,
                               dead_threshold=0.5, warmup_size=warmup_size)
        for b in batches:
            single.update(b)
        for k, v in single.state_dict().items():
            torch.testing.assert_close(
                ranks[0][k], v, rtol=1e-4, atol=1e-5, msg=lambda m, k=k: f"{k}: {m}"
            )
    # a NaN on one rank makes every rank refuse the batch (nobody hangs in a collective)
    assert outs[0]["raised"] and outs[1]["raised"]
    assert int(outs[0]["states"]["tied"]["warmup_progress"][0]) == 2  # it completed


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_path_matches_cpu_path():
    """Drawing from CPU generators on both sides (a CUDA generator draws another stream
    than a CPU one of the same seed), the CUDA path is the CPU path."""
    batches = _stream()
    with _random.draws_on_cpu():
        cpu = GMMPrototypes(5, 8)
        gpu = GMMPrototypes(5, 8).cuda()
        for b in batches:
            cpu.update(b)
            gpu.update(b.cuda())
    for name in FIELDS:
        x, y = getattr(cpu, name), getattr(gpu, name).cpu()
        if x.is_floating_point():
            torch.testing.assert_close(y, x, rtol=1e-4, atol=1e-4, msg=name)
        else:
            assert torch.equal(x, y), name


_RESUME_SCRIPT = r"""
import os, sys, torch
sys.path.insert(0, os.environ["REPO"])
from ssl_bridge import GMMPrototypes
data = torch.load(os.environ["DATA"])
head = GMMPrototypes(6, 8, **data["params"])
head.load_state_dict(torch.load(os.environ["CKPT"]))
for b in data["rest"]:
    head.update(b)
torch.save(head.state_dict(), os.environ["OUT"])
"""


def test_state_dict_resume_in_a_fresh_process_is_bit_identical(tmp_path):
    import subprocess

    batches = _stream(n_batches=9)
    params = dict(forgetting_rate=0.05, dead_threshold=0.9, temperature_init=2.0,
                  anneal_steps=4, covariance_type="diag")
    straight = GMMPrototypes(6, 8, **params)
    for b in batches:
        straight.update(b)
    first = GMMPrototypes(6, 8, **params)
    for b in batches[:3]:
        first.update(b)
    torch.save(first.state_dict(), tmp_path / "ckpt.pt")
    torch.save({"params": params, "rest": batches[3:]}, tmp_path / "data.pt")
    (tmp_path / "resume.py").write_text(_RESUME_SCRIPT)
    env = dict(os.environ, REPO=os.getcwd(), DATA=str(tmp_path / "data.pt"),
               CKPT=str(tmp_path / "ckpt.pt"), OUT=str(tmp_path / "out.pt"))
    subprocess.run([sys.executable, str(tmp_path / "resume.py")], env=env, check=True,
                   timeout=240)
    resumed = torch.load(tmp_path / "out.pt")
    for k, v in straight.state_dict().items():
        assert torch.equal(resumed[k], v), k


def test_an_update_that_would_make_the_state_non_finite_is_refused():
    """The step's finiteness check covers the bridge (it is inside ``core.advance``)."""
    head = GMMPrototypes(4, 8, normalize=False)
    head.update(torch.randn(64, 8))
    before = {k: v.clone() for k, v in head.state_dict().items()}
    x = torch.randn(64, 8)
    x[0] *= 1e20  # float32: its square overflows
    with pytest.raises(FloatingPointError, match="non-finite"):
        head.update(x)
    for name, value in head.state_dict().items():
        assert torch.equal(value, before[name]), name
    head.update(torch.randn(64, 8))  # and the stream goes on
    assert int(head.step) == 2


@pytest.mark.parametrize("covariance_type", ["spherical", "diag"])
def test_autocast_does_not_reach_the_mixture(covariance_type):
    """Under bfloat16 autocast the update, the targets and the gaussian logits are those of
    full precision (the mixture's arithmetic runs with autocast off)."""
    batches = _stream()
    plain = GMMPrototypes(5, 8, covariance_type=covariance_type)
    cast = GMMPrototypes(5, 8, covariance_type=covariance_type)
    with core.use_backend("reference"):  # the torch code CUDA runs, here on the CPU
        for b in batches:
            plain.update(b)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                cast.update(b)
        _assert_same_buffers(plain, cast, exact=True)
        x = batches[0]
        with torch.autocast("cpu", dtype=torch.bfloat16):
            q = cast.targets(x)
            g = cast.logits(x, kind="gaussian")
        assert q.dtype == g.dtype == torch.float32
        assert torch.equal(q, plain.targets(x))
        assert torch.equal(g, plain.logits(x, kind="gaussian"))
