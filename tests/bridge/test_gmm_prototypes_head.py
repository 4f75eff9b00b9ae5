"""GMMPrototypes as a DINO-style head: forward, dtypes under autocast, torch.compile, and
gradients that reach the encoder through the student logits only."""

import pytest

torch = pytest.importorskip("torch", reason="torch is the optional 'torch' extra")

from ssl_bridge import GMMPrototypes  # noqa: E402
from ssl_bridge.losses import cross_view_cross_entropy  # noqa: E402


def _fitted(K=8, D=6, seed=0, **kwargs):
    g = torch.Generator().manual_seed(seed)
    head = GMMPrototypes(K, D, random_state=seed, **kwargs)
    centres = torch.randn(K, D, generator=g) * 3
    for _ in range(3):
        head.update(centres[torch.randint(0, K, (64,), generator=g)]
                    + torch.randn(64, D, generator=g))
    return head


def test_forward_is_the_default_logits():
    head = _fitted()
    z = torch.randn(10, 6)
    assert torch.equal(head(z), head.logits(z))
    assert torch.equal(head(z), head.logits(z, kind="cosine"))
    with pytest.raises(RuntimeError, match="update"):
        GMMPrototypes(4, 6)(z)


def test_the_seeded_flag_follows_updates_and_checkpoints():
    head = _fitted()
    fresh = GMMPrototypes(8, 6)
    fresh.load_state_dict(head.state_dict())
    assert torch.equal(fresh(torch.ones(2, 6)), head(torch.ones(2, 6)))
    head.load_state_dict(GMMPrototypes(8, 6).state_dict())  # back to no prototypes
    with pytest.raises(RuntimeError, match="update"):
        head(torch.ones(2, 6))


@pytest.mark.parametrize(
    "dtype,cosine,gaussian",
    [
        (torch.float32, torch.bfloat16, torch.float32),
        (torch.bfloat16, torch.bfloat16, torch.float32),
        (torch.float16, torch.bfloat16, torch.float32),
        (torch.float64, torch.float64, torch.float64),  # autocast leaves float64 alone
    ],
)
def test_dtypes_under_autocast_are_those_documented(dtype, cosine, gaussian):
    """logits' docstring: under autocast the cosine product follows the autocast dtype;
    gaussian logits and targets are computed with autocast off."""
    head = _fitted()
    z = torch.randn(10, 6).to(dtype)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert head(z).dtype == cosine
        assert head.logits(z).dtype == cosine
        assert head.logits(z, kind="gaussian").dtype == gaussian
        for balance in (None, "sinkhorn"):
            q = head.targets(z, balance=balance)
            assert q.dtype == (torch.float64 if dtype == torch.float64 else torch.float32)
    plain = head(z)  # and without autocast: the student's dtype (float32 at least)
    assert plain.dtype == (torch.float64 if dtype == torch.float64 else torch.float32)


@pytest.mark.parametrize("compile_what", ["forward", "module", "logits"])
def test_torch_compile_of_the_student_path_equals_eager(compile_what):
    torch._dynamo.reset()
    head = _fitted()
    encoder = torch.nn.Linear(6, 6)
    x = torch.randn(16, 6)
    if compile_what == "forward":  # one graph: no break at the prototypes check
        student = torch.compile(head.forward, backend="aot_eager", fullgraph=True)
    elif compile_what == "module":
        student = torch.compile(head, backend="aot_eager")
    else:
        student = torch.compile(head.logits, backend="aot_eager")

    out = student(encoder(x))
    out.square().sum().backward()
    grads = [p.grad.clone() for p in encoder.parameters()]
    encoder.zero_grad()
    ref = head(encoder(x))
    ref.square().sum().backward()
    torch.testing.assert_close(out, ref, rtol=1e-6, atol=1e-6)
    for g, p in zip(grads, encoder.parameters(), strict=True):
        torch.testing.assert_close(g, p.grad, rtol=1e-5, atol=1e-6)


@pytest.mark.filterwarnings("ignore:Dynamo detected a call to a `functools.lru_cache`")
def test_torch_compile_of_the_gaussian_logits_equals_eager():
    """Correct, not one graph: dynamo breaks the graph in the core's array-API code."""
    torch._dynamo.reset()
    head = _fitted(covariance_type="diag")
    z = torch.randn(16, 6, requires_grad=True)
    compiled = torch.compile(head.logits, backend="aot_eager")
    out = compiled(z, kind="gaussian")
    out.sum().backward()
    grad = z.grad.clone()
    z.grad = None
    ref = head.logits(z, kind="gaussian")
    ref.sum().backward()
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(grad, z.grad)


@pytest.mark.parametrize("balance", [None, "sinkhorn"])
@pytest.mark.parametrize("kind", ["cosine", "gaussian"])
def test_gradients_reach_the_encoder_through_the_student_logits_only(balance, kind):
    torch.manual_seed(0)
    head = _fitted()
    encoder = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.GELU(),
                                  torch.nn.Linear(16, 6))
    views = [torch.randn(32, 6) for _ in range(2)]

    def loss_and_grads(detach_teacher):
        encoder.zero_grad()
        teacher = [encoder(v) for v in views]  # not detached: targets must cut the graph
        if detach_teacher:
            teacher = [t.detach() for t in teacher]
        head.update(torch.cat(teacher))
        targets = [head.targets(t, temperature=0.5, balance=balance) for t in teacher]
        assert all(not t.requires_grad and t.grad_fn is None for t in targets)
        students = [head.logits(encoder(v), kind=kind) if kind == "gaussian" else head(encoder(v))
                    for v in views]
        loss = cross_view_cross_entropy(students, targets, student_temperature=0.1)
        loss.backward()
        return [p.grad.clone() for p in encoder.parameters()]

    state = {k: v.clone() for k, v in head.state_dict().items()}
    through_targets = loss_and_grads(detach_teacher=False)
    head.load_state_dict(state)  # the same update again, from the same state
    detached = loss_and_grads(detach_teacher=True)
    assert all(bool(g.abs().sum() > 0) for g in through_targets)  # the encoder learns
    for a, b in zip(through_targets, detached, strict=True):
        assert torch.equal(a, b)  # ...and only through the student logits
    assert list(head.parameters()) == []
    for name, buffer in head.named_buffers():
        assert buffer.grad is None and not buffer.requires_grad, name
