"""The bridge's warm-up: the core's (the estimator's restarts), kept in module buffers."""

import math

import pytest

torch = pytest.importorskip("torch", reason="ssl_bridge needs the torch extra")
import torch.nn.functional as F  # noqa: E402

from ssl_bridge import GMMPrototypes  # noqa: E402

BUFFERING, DONE = 1, 2


def _batches(n_batches, B=64, D=8, n_dirs=32, noise=0.05, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    centres = F.normalize(torch.randn(n_dirs, D, generator=g), dim=1)
    out = []
    for _ in range(n_batches):
        lab = torch.randint(0, n_dirs, (B,), generator=g)
        out.append((centres[lab] + noise * torch.randn(B, D, generator=g)).to(dtype))
    return out


def _same(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert sa[k].dtype == sb[k].dtype and torch.equal(sa[k], sb[k]), k


def test_the_buffer_fills_then_the_warm_state_replaces_the_mixture():
    head = GMMPrototypes(4, 8, warmup_size=150)
    batches = _batches(4)
    head.update(batches[0])
    assert head.warmup_progress.tolist() == [BUFFERING, 150, 0, 0, 64]
    assert head.warmup_rows.shape == (150, 8)
    # the rows held are the normalised teacher rows
    torch.testing.assert_close(head.warmup_rows[:64], F.normalize(batches[0], dim=1))
    assert not head.warmup_rows[64:].any()
    head.update(batches[1])
    provisional = head.means.clone()
    head.update(batches[2])  # 192 rows: the mark (150) is passed
    assert head.warmup_progress.tolist()[0] == DONE
    assert head.warmup_rows.shape == (0, 8) and head.warmup_weights.shape == (0,)
    assert not torch.equal(head.means, provisional)
    assert int(head.n_samples_seen) == 192
    head.update(batches[3])  # and the stream goes on
    assert head.warmup_progress.tolist()[0] == DONE


def test_no_warm_up():
    head = GMMPrototypes(4, 8, warmup_size=0)
    head.update(_batches(1)[0])
    assert head.warmup_progress.tolist() == [DONE, 0, 0, 0, 0]
    assert head.warmup_rows.shape == (0, 8)


def test_auto_is_64_rows_per_prototype_without_refinement():
    head = GMMPrototypes(3, 8)  # forgetting_rate 0 would refine in the estimator: not here
    head.forgetting_rate = 0.0
    head.update(_batches(1)[0])
    assert head.warmup_progress.tolist() == [BUFFERING, 192, 0, 0, 64]


@pytest.mark.parametrize("cut", [1, 3, 5])
def test_resume_mid_warm_up_is_bit_identical(cut):
    """A checkpoint taken while the buffer fills (cut 1, 3), or after (5), resumes exactly
    in a fresh module (whose buffers have other shapes until it loads)."""
    batches = _batches(8)
    params = dict(warmup_size=300, forgetting_rate=0.01, random_state=2)
    straight = GMMPrototypes(5, 8, **params)
    for b in batches:
        straight.update(b)
    first = GMMPrototypes(5, 8, **params)
    for b in batches[:cut]:
        first.update(b)
    resumed = GMMPrototypes(5, 8, **params)
    resumed.load_state_dict(first.state_dict())
    for b in batches[cut:]:
        resumed.update(b)
    _same(straight, resumed)


def test_a_checkpoint_with_a_broken_warm_up_is_refused_and_changes_nothing():
    source = GMMPrototypes(4, 8, warmup_size=200)
    source.update(_batches(1)[0])
    target = GMMPrototypes(4, 8, warmup_size=200)
    target.update(_batches(1, seed=1)[0])
    before = {k: v.clone() for k, v in target.state_dict().items()}
    for key, value in [("warmup_progress", torch.tensor([1, 200, 0, 0, 999])),
                       ("warmup_rows", torch.zeros(200, 7)),
                       ("warmup_weights", torch.zeros(3))]:
        sd = dict(source.state_dict())
        sd[key] = value
        with pytest.raises(RuntimeError, match="GMMPrototypes was not changed"):
            target.load_state_dict(sd)
        for k, v in target.state_dict().items():
            assert torch.equal(v, before[k]), k


def test_a_failed_step_leaves_the_buffer_bit_identical():
    head = GMMPrototypes(4, 8, normalize=False, warmup_size=500)
    head.update(torch.randn(64, 8))
    before = {k: v.clone() for k, v in head.state_dict().items()}
    x = torch.randn(64, 8)
    x[0] *= 1e20  # float32: its square overflows
    with pytest.raises(FloatingPointError):
        head.update(x)
    for k, v in head.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_the_buffer_keeps_the_embeddings_dtype():
    head = GMMPrototypes(4, 8, warmup_size=500)
    head.update(_batches(1, dtype=torch.float64)[0])
    assert head.warmup_rows.dtype == torch.float64
    head.to(torch.float32)  # the state's precision is the module's own, as the mixture's
    assert head.warmup_rows.dtype == torch.float64
    head.update(_batches(1)[0])  # a float32 batch next: the buffer follows the data
    assert head.warmup_progress.tolist()[4] == 128


def _usage(head, probe):
    p = head.targets(probe).mean(0).double()
    p = p[p > 0]
    return math.exp(-(p * p.log()).sum())


def test_the_warm_up_raises_the_usage_of_many_prototypes():
    """What the warm-up is for (docs/ssl.md, "Usage"): with many prototypes, the online
    seeding of the first batches leaves a few broad components that hold much of the data;
    the restarts on the buffer spread the prototypes over it. K = 128 over 512 directions
    (measured on seeds 0-2: usage 55-61 without, 99-103 with)."""
    K, D = 128, 16
    stream = _batches(168, B=64, D=D, n_dirs=512, seed=0)
    batches, probe = stream[:160], torch.cat(stream[160:])  # the probe: unseen rows
    usage = {}
    for warmup_size in (0, "auto"):
        head = GMMPrototypes(K, D, warmup_size=warmup_size, random_state=0)
        for b in batches:
            head.update(b)
        usage[warmup_size] = _usage(head, probe)
    assert usage["auto"] > 1.5 * usage[0], usage
    assert usage["auto"] > K / 2, usage
