"""Tests for ssl_bridge.heads.JointPrototypes (the learnable DINO-style prototype head)."""

import pytest

torch = pytest.importorskip("torch", reason="torch is the optional 'torch' extra")

from online_gmm.diagnostics import collapse_report, unique_prototypes  # noqa: E402
from ssl_bridge.heads import JointPrototypes  # noqa: E402


def make_head(dim=8, k=12, seed=0, **kwargs):
    torch.manual_seed(seed)
    return JointPrototypes(dim, k, **kwargs)


def test_prototypes_are_unit_rows_and_detached():
    head = make_head()
    P = head.prototypes
    assert P.shape == (12, 8)
    assert not P.requires_grad
    torch.testing.assert_close(P.norm(dim=1), torch.ones(12))


def test_forward_is_cosine_similarity_to_prototypes():
    head = make_head(dim=6, k=9)
    z = torch.randn(5, 6) * torch.tensor([[0.01], [1.0], [7.0], [100.0], [3.0]])
    logits = head(z)
    assert logits.shape == (5, 9)
    expected = (z / z.norm(dim=1, keepdim=True)) @ head.prototypes.T
    torch.testing.assert_close(logits, expected)
    assert logits.abs().max() <= 1.0 + 1e-6
    # Scaling an embedding does not change its logits.
    torch.testing.assert_close(head(3.0 * z), logits)
    # Extra leading dimensions are accepted.
    assert head(z.reshape(5, 1, 6)).shape == (5, 1, 9)


def test_norm_last_layer_freezes_magnitude():
    head = make_head()
    trainable = {n for n, p in head.named_parameters() if p.requires_grad}
    frozen = {n for n, p in head.named_parameters() if not p.requires_grad}
    assert len(trainable) == 1 and len(frozen) == 1
    head(torch.randn(4, 8)).sum().backward()
    (g,) = (p for p in head.parameters() if not p.requires_grad)
    (v,) = (p for p in head.parameters() if p.requires_grad)
    assert g.grad is None
    torch.testing.assert_close(g, torch.ones(12, 1))
    assert v.grad is not None and v.grad.abs().sum() > 0


def test_gradients_reach_weights_and_sgd_keeps_unit_norm():
    head = make_head()
    opt = torch.optim.SGD([p for p in head.parameters() if p.requires_grad], lr=0.5)
    z = torch.randn(16, 8)
    before = head.prototypes.clone()
    opt.zero_grad()
    torch.nn.functional.cross_entropy(head(z) / 0.1, torch.arange(16) % 12).backward()
    opt.step()
    after = head.prototypes
    assert (after - before).abs().max() > 1e-4
    torch.testing.assert_close(after.norm(dim=1), torch.ones(12))
    # The logits follow the updated prototypes.
    torch.testing.assert_close(head(z), (z / z.norm(dim=1, keepdim=True)) @ after.T)


def test_learnable_magnitude_without_norm_last_layer():
    head = make_head(norm_last_layer=False)
    assert all(p.requires_grad for p in head.parameters())
    opt = torch.optim.SGD(head.parameters(), lr=0.5)
    z = torch.randn(4, 8)
    opt.zero_grad()
    head(z).sum().backward()
    opt.step()
    w = head.weight.detach()
    assert (w.norm(dim=1) - 1.0).abs().max() > 1e-3  # magnitudes moved
    torch.testing.assert_close(head.prototypes.norm(dim=1), torch.ones(12))
    torch.testing.assert_close(head(z), (z / z.norm(dim=1, keepdim=True)) @ w.T)


def test_state_dict_round_trip():
    head = make_head(seed=1)
    opt = torch.optim.SGD([p for p in head.parameters() if p.requires_grad], lr=1.0)
    head(torch.randn(4, 8)).sum().backward()
    opt.step()
    other = make_head(seed=2)
    z = torch.randn(3, 8)
    assert not torch.allclose(other(z), head(z))
    other.load_state_dict(head.state_dict())
    torch.testing.assert_close(other(z), head(z), rtol=0, atol=0)
    torch.testing.assert_close(other.prototypes, head.prototypes, rtol=0, atol=0)
    assert not next(p for p in other.parameters() if p.dim() == 2 and p.shape[1] == 1).requires_grad


def test_bfloat16_embeddings_and_float64_head():
    head = make_head()
    z = torch.randn(4, 8)
    out = head(z.bfloat16())
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, head(z.bfloat16().float()))
    head64 = make_head().double()
    assert head64(z).dtype == torch.float64
    torch.testing.assert_close(head64(z).float(), head(z))


def test_collapse_is_measurable():
    # Pull every prototype towards one direction: the joint head collapses and the
    # diagnostics see it.
    head = make_head(dim=16, k=64, seed=3)
    initial = collapse_report(head.prototypes)
    assert initial["unique"][0.025] == 64
    target = torch.randn(1, 16)
    opt = torch.optim.SGD([p for p in head.parameters() if p.requires_grad], lr=1.0)
    history = []
    for step in range(150):
        opt.zero_grad()
        (-head(target).mean()).backward()
        opt.step()
        if step % 50 == 49:
            history.append(unique_prototypes(head.prototypes, 0.025))
    final = collapse_report(head.prototypes)
    assert history == sorted(history, reverse=True)
    assert final["unique"][0.025] < 0.1 * initial["unique"][0.025]
    assert final["unique"][0.5] <= initial["unique"][0.5]
    assert final["unique_fraction"][0.025] < 0.1


def test_invalid_arguments():
    with pytest.raises(ValueError, match="dim"):
        JointPrototypes(0, 4)
    with pytest.raises(ValueError, match="n_prototypes"):
        JointPrototypes(4, 2.5)
    head = JointPrototypes(4, 3)
    with pytest.raises(ValueError, match=r"shape \(B, 4\)"):
        head(torch.randn(2, 5))
    with pytest.raises(ValueError, match="floating-point"):
        head(torch.ones(2, 4, dtype=torch.long))
    assert "n_prototypes=3" in repr(head)


@pytest.mark.filterwarnings("ignore:.*weight_norm.*:FutureWarning")
@pytest.mark.filterwarnings("ignore:.*weight_norm.*:DeprecationWarning")
def test_fallback_to_legacy_weight_norm(monkeypatch):
    # Older torch has no torch.nn.utils.parametrizations.weight_norm: the head falls back to
    # torch.nn.utils.weight_norm (weight_g / weight_v) with the same behaviour.
    if not hasattr(torch.nn.utils, "weight_norm"):
        pytest.skip("this torch has no legacy torch.nn.utils.weight_norm")
    monkeypatch.delattr(torch.nn.utils, "parametrizations")
    head = make_head()
    assert set(head.state_dict()) == {"last_layer.weight_g", "last_layer.weight_v"}
    assert not head.last_layer.weight_g.requires_grad
    opt = torch.optim.SGD([p for p in head.parameters() if p.requires_grad], lr=0.5)
    z = torch.randn(4, 8)
    before = head.prototypes.clone()
    head(z).sum().backward()
    opt.step()
    after = head.prototypes  # reflects the step before any new forward pass
    assert (after - before).abs().max() > 1e-4
    torch.testing.assert_close(after.norm(dim=1), torch.ones(12))
    torch.testing.assert_close(head(z), (z / z.norm(dim=1, keepdim=True)) @ after.T)
