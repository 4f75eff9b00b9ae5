"""Balanced targets: ssl_bridge.balance.sinkhorn_knopp and GMMPrototypes.targets(balance=...)."""

import os
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch", reason="torch is the optional 'torch' extra")

from ssl_bridge import GMMPrototypes  # noqa: E402
from ssl_bridge.balance import sinkhorn_knopp  # noqa: E402


def _reference(log_scores, n_iterations):
    """DINOv2's ``sinkhorn_knopp_teacher`` as written there (exp, then the K-by-B matrix
    rescaled in turn), in float64, one process: what the log-domain version must equal."""
    Q = torch.exp(log_scores.double()).t()
    K, B = Q.shape
    Q /= Q.sum()
    for _ in range(n_iterations):
        Q /= Q.sum(dim=1, keepdim=True)
        Q /= K
        Q /= Q.sum(dim=0, keepdim=True)
        Q /= B
    return (Q * B).t()


def _skewed(B=60, K=6, seed=0, dtype=torch.float32):
    """Log-scores where prototype 0 wins most rows."""
    g = torch.Generator().manual_seed(seed)
    s = torch.randn(B, K, generator=g, dtype=torch.float64)
    s[:, 0] += 2.0
    return torch.log_softmax(s, dim=1).to(dtype)


@pytest.mark.parametrize("n_iterations", [0, 1, 3, 10])
@pytest.mark.parametrize("shape", [(1, 1), (7, 3), (5, 40), (64, 8)])
def test_rows_sum_to_one(shape, n_iterations):
    s = torch.randn(*shape) * 5
    q = sinkhorn_knopp(s, n_iterations)
    assert q.shape == shape and q.dtype == torch.float32
    assert bool((q >= 0).all())
    torch.testing.assert_close(q.sum(dim=1), torch.ones(shape[0]))


def test_zero_iterations_is_the_row_softmax():
    s = _skewed()
    torch.testing.assert_close(sinkhorn_knopp(s, 0), torch.softmax(s, dim=1))


def test_columns_balance_on_a_skewed_batch():
    B, K = 60, 6
    s = _skewed(B, K)
    plain = torch.softmax(s, dim=1).sum(dim=0)
    assert float(plain.max()) > 2 * B / K  # skewed: prototype 0 takes far more than B / K
    spread = [float((sinkhorn_knopp(s, n).sum(dim=0) - B / K).abs().max()) for n in (1, 3, 100)]
    assert spread[0] < float((plain - B / K).abs().max())
    assert spread[2] <= spread[1] <= spread[0]
    torch.testing.assert_close(sinkhorn_knopp(s, 100).sum(dim=0), torch.full((K,), B / K),
                               rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("n_iterations", [1, 3, 10])
@pytest.mark.parametrize("scale", [1.0, 10.0])
def test_equals_the_straightforward_reference(n_iterations, scale):
    s = torch.randn(50, 7, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    s = s * scale  # logits / temperature, within exp's float64 range
    ref = _reference(s, n_iterations)
    torch.testing.assert_close(sinkhorn_knopp(s, n_iterations), ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(sinkhorn_knopp(s.float(), n_iterations), ref.float(),
                               rtol=1e-5, atol=1e-6)


def test_float32_safe_where_exponentiating_is_not():
    """A near one-hot posterior sharpened by 0.04: log-scores thousands apart. The
    exponentiated form underflows whole columns to 0 (NaN); the log domain does not."""
    s = _skewed(B=40, K=5) * 300 / 0.04
    with torch.no_grad():
        naive = torch.exp(s - s.max()).t()
        naive /= naive.sum(dim=1, keepdim=True)  # a column of zeros: 0 / 0
    assert bool(torch.isnan(naive).any())
    q = sinkhorn_knopp(s, 3)
    assert bool(torch.isfinite(q).all())
    torch.testing.assert_close(q.sum(dim=1), torch.ones(40))
    torch.testing.assert_close(q.double(), sinkhorn_knopp(s.double(), 3), rtol=0, atol=1e-6)
    assert float(q.sum(dim=0).max()) < float(torch.softmax(s, dim=1).sum(dim=0).max())


def test_low_precision_is_computed_in_float32_and_autocast_does_not_change_it():
    s = _skewed()
    for dtype in (torch.float16, torch.bfloat16):
        low = s.to(dtype)
        q = sinkhorn_knopp(low, 3)
        assert q.dtype == torch.float32
        assert torch.equal(q, sinkhorn_knopp(low.float(), 3))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        q = sinkhorn_knopp(s, 3)
    assert q.dtype == torch.float32
    torch.testing.assert_close(q, sinkhorn_knopp(s, 3), rtol=0, atol=0)
    assert sinkhorn_knopp(s.double(), 3).dtype == torch.float64


def test_a_prototype_no_row_can_take_stays_empty():
    s = _skewed(B=30, K=4)
    s[:, 2] = -torch.inf
    q = sinkhorn_knopp(s, 5)
    assert bool(torch.isfinite(q).all()) and bool((q[:, 2] == 0).all())
    torch.testing.assert_close(q.sum(dim=1), torch.ones(30))


def test_an_empty_batch():
    assert sinkhorn_knopp(torch.zeros(0, 4), 3).shape == (0, 4)


def test_no_gradient_flows():
    s = _skewed().requires_grad_()
    q = sinkhorn_knopp(s, 3)
    assert not q.requires_grad and q.grad_fn is None


@pytest.mark.parametrize(
    "bad,n,exc,match",
    [
        ("not a tensor", 3, TypeError, "torch.Tensor"),
        (torch.ones(5, 3, dtype=torch.int64), 3, ValueError, "floating"),
        (torch.ones(5), 3, ValueError, r"shape \(batch, n_prototypes\)"),
        (torch.ones(5, 0), 3, ValueError, r"shape \(batch, n_prototypes\)"),
        (torch.tensor([[0.0, float("nan")]]), 3, ValueError, "finite"),
        (torch.tensor([[0.0, float("inf")]]), 3, ValueError, "finite"),
        (torch.tensor([[0.0, 1.0], [-float("inf"), -float("inf")]]), 3, ValueError, "every row"),
        (torch.zeros(3, 2), -1, ValueError, "n_iterations"),
        (torch.zeros(3, 2), 2.0, ValueError, "n_iterations"),
        (torch.zeros(3, 2), True, ValueError, "n_iterations"),
    ],
)
def test_bad_input_is_named(bad, n, exc, match):
    with pytest.raises(exc, match=match):
        sinkhorn_knopp(bad, n)


# ------------------------------------------------------------------- GMMPrototypes.targets
def _head_and_batch(K=6, D=8, B=48, seed=0):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(K, D, generator=g) * 3
    head = GMMPrototypes(K, D, random_state=seed)
    for _ in range(5):
        head.update(centres[torch.randint(0, K, (B,), generator=g)] + torch.randn(B, D,
                                                                                  generator=g))
    # a skewed batch: most rows from one cluster
    lab = torch.where(torch.rand(B, generator=g) < 0.7, 0, torch.randint(0, K, (B,),
                                                                          generator=g))
    return head, centres[lab] + torch.randn(B, D, generator=g)


@pytest.mark.parametrize("temperature", [1.0, 0.3])
def test_targets_balance_is_sinkhorn_of_the_log_posterior(temperature):
    head, x = _head_and_batch()
    logp = head.logits(x, kind="gaussian").detach()  # log pi_k + log N(x | mu_k, Sigma_k)
    expected = sinkhorn_knopp(torch.log_softmax(logp / temperature, dim=1), 7)
    q = head.targets(x, temperature=temperature, balance="sinkhorn", sinkhorn_iterations=7)
    torch.testing.assert_close(q, expected, rtol=1e-4, atol=1e-5)
    assert torch.equal(head.targets(x, temperature), head.targets(x, temperature, None))


def test_targets_balance_spreads_a_skewed_batch():
    head, x = _head_and_batch()
    K, B = head.n_prototypes, x.shape[0]
    plain = head.targets(x)
    balanced = head.targets(x, balance="sinkhorn")  # DINOv2's 3 iterations
    assert not balanced.requires_grad
    torch.testing.assert_close(balanced.sum(dim=1), torch.ones(B))
    assert float(balanced.sum(dim=0).max()) < float(plain.sum(dim=0).max())
    many = head.targets(x, balance="sinkhorn", sinkhorn_iterations=200).sum(dim=0)
    torch.testing.assert_close(many, torch.full((K,), B / K), rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(balance="Sinkhorn"), "balance must be one of"),
        (dict(balance="none"), "balance must be one of"),
        (dict(balance=True), "balance must be one of"),
        (dict(balance="sinkhorn", sinkhorn_iterations=-1), "sinkhorn_iterations"),
        (dict(balance="sinkhorn", sinkhorn_iterations=1.5), "sinkhorn_iterations"),
    ],
)
def test_targets_bad_balance_is_named(kwargs, match):
    head, x = _head_and_batch()
    with pytest.raises(ValueError, match=match):
        head.targets(x, **kwargs)


# ----------------------------------------------------------- distributed (gloo, 2 ranks)
_DDP_SCRIPT = r"""
import os, sys, torch, torch.distributed as dist
sys.path.insert(0, os.environ["REPO"])
from ssl_bridge import GMMPrototypes
from ssl_bridge.balance import sinkhorn_knopp
rank = int(sys.argv[1])
dist.init_process_group("gloo", init_method="file://" + os.environ["INIT_FILE"],
                        rank=rank, world_size=2)
data = torch.load(os.environ["DATA"])
cut = data["cut"]
mine = lambda t: t[:cut] if rank == 0 else t[cut:]
out = {"sk": [sinkhorn_knopp(mine(data["scores"]), n) for n in (1, 3, 20)]}
out["empty"] = sinkhorn_knopp(data["scores"][:0] if rank == 0 else data["scores"], 3)
head = GMMPrototypes(6, 8, random_state=0)
head.load_state_dict(data["state"])
out["targets"] = head.targets(mine(data["x"]), temperature=0.5, balance="sinkhorn")
bad = mine(data["scores"]).clone()
if rank == 1:
    bad[0, 0] = float("nan")
try:
    sinkhorn_knopp(bad, 3)
    out["raised"] = False
except ValueError:
    out["raised"] = True
torch.save(out, os.environ["OUT"] + f".{rank}")
dist.barrier()
dist.destroy_process_group()
"""


def test_ddp_two_gloo_ranks_equal_one_process_on_the_concatenated_batch(tmp_path):
    head, x = _head_and_batch()
    scores = _skewed(B=48, K=6)
    cut = 20  # unequal batches: 20 rows on rank 0, 28 on rank 1
    torch.save({"scores": scores, "x": x, "state": head.state_dict(), "cut": cut},
               tmp_path / "data.pt")
    (tmp_path / "ddp.py").write_text(_DDP_SCRIPT)
    env = dict(os.environ, REPO=os.getcwd(), INIT_FILE=str(tmp_path / "init"),
               DATA=str(tmp_path / "data.pt"), OUT=str(tmp_path / "out"), OMP_NUM_THREADS="1")
    procs = [subprocess.Popen([sys.executable, str(tmp_path / "ddp.py"), str(r)], env=env)
             for r in (0, 1)]
    assert [p.wait(timeout=240) for p in procs] == [0, 0]
    outs = [torch.load(tmp_path / f"out.{r}") for r in (0, 1)]
    for i, n in enumerate((1, 3, 20)):
        joined = torch.cat([outs[0]["sk"][i], outs[1]["sk"][i]])
        torch.testing.assert_close(joined, sinkhorn_knopp(scores, n), rtol=1e-5, atol=1e-6)
    # an empty batch on one rank: the other balances its batch alone
    assert outs[0]["empty"].shape == (0, 6)
    torch.testing.assert_close(outs[1]["empty"], sinkhorn_knopp(scores, 3),
                               rtol=1e-5, atol=1e-6)
    joined = torch.cat([outs[0]["targets"], outs[1]["targets"]])
    torch.testing.assert_close(joined, head.targets(x, temperature=0.5, balance="sinkhorn"),
                               rtol=1e-5, atol=1e-6)
    # a NaN on one rank: every rank raises (nobody is left waiting in a collective)
    assert outs[0]["raised"] and outs[1]["raised"]
