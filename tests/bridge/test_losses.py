"""Tests for ssl_bridge.losses against explicit reference computations."""

import itertools
import math

import pytest

torch = pytest.importorskip("torch", reason="torch is the optional 'torch' extra")

from ssl_bridge.losses import (  # noqa: E402
    alignment_loss,
    correlation_loss,
    cross_view_cross_entropy,
    koleo_loss,
    proto_nce_loss,
    swapped_prediction_loss,
    uniformity_loss,
)

F = torch.nn.functional


def gen(seed):
    return torch.Generator().manual_seed(seed)


def randn(*shape, seed=0, dtype=torch.float32, requires_grad=False):
    x = torch.randn(*shape, generator=gen(seed), dtype=dtype)
    return x.requires_grad_(requires_grad)


def simplex(B, K, seed=0, dtype=torch.float32):
    return torch.softmax(randn(B, K, seed=seed, dtype=dtype) * 2, dim=1)


def unit(x):
    return x / x.norm(dim=1, keepdim=True)


# ---------------------------------------------------------------- references


def ref_ce(q, logits, tau):
    """Explicit mean over rows of -sum_k q_k log softmax(logits / tau)_k."""
    total = 0.0
    for b in range(q.shape[0]):
        row = [float(v) / tau for v in logits[b]]
        m = max(row)
        lse = m + math.log(sum(math.exp(v - m) for v in row))
        total += -sum(float(q[b, k]) * (row[k] - lse) for k in range(len(row)))
    return total / q.shape[0]


# ---------------------------------------------------------------- cross-view cross-entropy


@pytest.mark.parametrize(("n_teacher", "n_student"), [(1, 2), (2, 2), (2, 5), (3, 3)])
def test_cross_view_matches_explicit_pairs(n_teacher, n_student):
    B, K, tau = 4, 6, 0.3
    students = [randn(B, K, seed=10 + i, dtype=torch.float64) for i in range(n_student)]
    teachers = [simplex(B, K, seed=20 + j, dtype=torch.float64) for j in range(n_teacher)]
    terms = [
        ref_ce(teachers[j], students[i], tau)
        for j in range(n_teacher)
        for i in range(n_student)
        if i != j
    ]
    assert len(terms) == n_teacher * n_student - n_teacher
    expected = sum(terms) / len(terms)
    loss = cross_view_cross_entropy(students, teachers, student_temperature=tau)
    assert loss.dim() == 0
    assert loss.item() == pytest.approx(expected, rel=1e-12)


def test_cross_view_depends_on_view_order_convention():
    # Student view 0 is the global view the teacher saw as view 0: swapping student views
    # must change the loss (the (0, 0) pair is excluded, not the (0, 1) pair).
    B, K = 3, 5
    s = [randn(B, K, seed=1), randn(B, K, seed=2), randn(B, K, seed=3)]
    t = [simplex(B, K, seed=4)]
    a = cross_view_cross_entropy(s, t)
    b = cross_view_cross_entropy([s[1], s[0], s[2]], t)
    expected_a = (ref_ce(t[0], s[1], 0.1) + ref_ce(t[0], s[2], 0.1)) / 2
    assert a.item() == pytest.approx(expected_a, rel=1e-5)
    assert abs(a.item() - b.item()) > 1e-3


def test_cross_view_gradcheck():
    s = [randn(2, 3, seed=i, dtype=torch.float64, requires_grad=True) for i in range(3)]
    t = [simplex(2, 3, seed=7 + j, dtype=torch.float64).requires_grad_() for j in range(2)]
    assert torch.autograd.gradcheck(
        lambda *x: cross_view_cross_entropy(x[:3], x[3:], 0.5), (*s, *t)
    )


def test_cross_view_bfloat16():
    s = [randn(4, 8, seed=i).bfloat16().requires_grad_() for i in range(3)]
    t = [simplex(4, 8, seed=5 + j).bfloat16() for j in range(2)]
    loss = cross_view_cross_entropy(s, t)
    assert loss.dtype == torch.float32
    ref = cross_view_cross_entropy([x.float() for x in s], [x.float() for x in t])
    assert loss.item() == ref.item()
    loss.backward()
    assert all(x.grad is not None and x.grad.dtype == torch.bfloat16 for x in s)
    assert all(torch.isfinite(x.grad.float()).all() for x in s)


def test_cross_view_invalid():
    s, t = randn(2, 3), simplex(2, 3)
    with pytest.raises(ValueError, match="no pair"):
        cross_view_cross_entropy([s], [t])
    with pytest.raises(ValueError, match="at least as many student views"):
        cross_view_cross_entropy([s, s], [t, t, t])
    with pytest.raises(ValueError, match="at least one view"):
        cross_view_cross_entropy([s, s], [])
    with pytest.raises(ValueError, match="same shape"):
        cross_view_cross_entropy([s, randn(2, 4)], [t])
    with pytest.raises(ValueError, match="same shape"):
        cross_view_cross_entropy([s, s], [simplex(3, 3)])
    with pytest.raises(ValueError, match="2-D"):
        cross_view_cross_entropy([s, randn(2, 3, 1)], [t])
    with pytest.raises(ValueError, match="floating-point"):
        cross_view_cross_entropy([s, torch.ones(2, 3, dtype=torch.long)], [t])
    with pytest.raises(ValueError, match="student_temperature"):
        cross_view_cross_entropy([s, s], [t], student_temperature=0.0)


# ---------------------------------------------------------------- SwAV


def test_swapped_prediction_matches_reference_and_cross_view():
    B, K, tau = 5, 7, 0.2
    za, zb = randn(B, K, seed=1, dtype=torch.float64), randn(B, K, seed=2, dtype=torch.float64)
    qa = simplex(B, K, seed=3, dtype=torch.float64)
    qb = simplex(B, K, seed=4, dtype=torch.float64)
    loss = swapped_prediction_loss(za, zb, qa, qb, temperature=tau)
    expected = 0.5 * (ref_ce(qb, za, tau) + ref_ce(qa, zb, tau))
    assert loss.item() == pytest.approx(expected, rel=1e-12)
    other = cross_view_cross_entropy([za, zb], [qa, qb], student_temperature=tau)
    assert loss.item() == pytest.approx(other.item(), rel=1e-12)
    # The prediction is swapped: using each view's own codes gives a different value.
    own = 0.5 * (ref_ce(qa, za, tau) + ref_ce(qb, zb, tau))
    assert abs(own - expected) > 1e-3


def test_swapped_prediction_gradcheck_and_bf16():
    x = [randn(3, 4, seed=i, dtype=torch.float64, requires_grad=True) for i in range(2)]
    q = [simplex(3, 4, seed=5 + i, dtype=torch.float64).requires_grad_() for i in range(2)]
    assert torch.autograd.gradcheck(
        lambda a, b, c, d: swapped_prediction_loss(a, b, c, d, 0.7), (*x, *q)
    )
    xb = [v.detach().bfloat16().requires_grad_() for v in x]
    qb = [v.detach().bfloat16() for v in q]
    loss = swapped_prediction_loss(*xb, *qb)
    assert loss.dtype == torch.float32
    loss.backward()
    assert xb[0].grad is not None and torch.isfinite(xb[0].grad.float()).all()


def test_swapped_prediction_invalid():
    z, q = randn(2, 3), simplex(2, 3)
    with pytest.raises(ValueError, match="targets_b must have the shape"):
        swapped_prediction_loss(z, z, q, simplex(2, 4))
    with pytest.raises(ValueError, match="logits_b must have the shape"):
        swapped_prediction_loss(z, randn(3, 3), q, q)
    with pytest.raises(ValueError, match="2-D"):
        swapped_prediction_loss(z[0], z, q, q)
    with pytest.raises(ValueError, match="temperature"):
        swapped_prediction_loss(z, z, q, q, temperature=-1.0)


# ---------------------------------------------------------------- ProtoNCE


def ref_proto_nce(z, c, s, phi, negatives=None):
    """Explicit -log exp(z.c_s/phi_s) / sum_j exp(z.c_j/phi_j) per sample."""
    losses = []
    for b in range(z.shape[0]):
        cols = range(c.shape[0]) if negatives is None else [int(s[b]), *negatives[b]]
        logit = {j: float(z[b] @ c[j]) / float(phi[j]) for j in cols}
        denom = sum(math.exp(v) for v in logit.values())
        losses.append(-(logit[int(s[b])] - math.log(denom)))
    return losses


def test_proto_nce_full_matches_reference():
    B, K, D = 6, 5, 4
    z = unit(randn(B, D, seed=1, dtype=torch.float64))
    c = unit(randn(K, D, seed=2, dtype=torch.float64))
    s = torch.tensor([0, 4, 2, 2, 1, 3])
    phi = torch.rand(K, generator=gen(3), dtype=torch.float64) + 0.05
    loss = proto_nce_loss(z, c, s, phi)
    ref = ref_proto_nce(z, c, s, phi)
    assert loss.item() == pytest.approx(sum(ref) / B, rel=1e-12)
    # A float concentration is shared by every prototype.
    shared = proto_nce_loss(z, c, s, 0.3)
    ref_shared = ref_proto_nce(z, c, s, torch.full((K,), 0.3, dtype=torch.float64))
    assert shared.item() == pytest.approx(sum(ref_shared) / B, rel=1e-12)
    assert proto_nce_loss(z, c, s, torch.tensor(0.3)).item() == pytest.approx(shared.item())


def test_proto_nce_all_negatives_sampled_equals_full():
    B, K, D = 8, 6, 3
    z, c = randn(B, D, seed=4, dtype=torch.float64), randn(K, D, seed=5, dtype=torch.float64)
    s = torch.randint(0, K, (B,), generator=gen(6))
    full = proto_nce_loss(z, c, s, 0.5)
    for seed in range(5):
        sampled = proto_nce_loss(z, c, s, 0.5, n_negatives=K - 1, generator=gen(seed))
        assert sampled.item() == pytest.approx(full.item(), rel=1e-12)


def test_proto_nce_sampled_negatives_are_uniform_subsets_without_positive():
    # One sample, K = 6, two negatives: every call must equal the reference loss on exactly
    # one 2-subset of the 5 other prototypes, and all 10 subsets must occur.
    K, D, r = 6, 4, 2
    z = randn(1, D, seed=7, dtype=torch.float64)
    c = randn(K, D, seed=8, dtype=torch.float64)
    for positive in (0, 3, K - 1):
        s = torch.tensor([positive])
        others = [j for j in range(K) if j != positive]
        table = {
            subset: ref_proto_nce(z, c, s, torch.ones(K), [subset])[0]
            for subset in itertools.combinations(others, r)
        }
        seen = set()
        for seed in range(200):
            value = proto_nce_loss(z, c, s, 1.0, n_negatives=r, generator=gen(seed)).item()
            matches = [k for k, v in table.items() if abs(v - value) < 1e-10]
            assert len(matches) == 1
            seen.add(matches[0])
        assert seen == set(table)


def test_proto_nce_sampled_is_reproducible_and_below_full():
    B, K, D = 16, 50, 8
    z, c = unit(randn(B, D, seed=9)), unit(randn(K, D, seed=10))
    s = torch.randint(0, K, (B,), generator=gen(11))
    full = proto_nce_loss(z, c, s, 0.1)
    a = proto_nce_loss(z, c, s, 0.1, n_negatives=10, generator=gen(1))
    b = proto_nce_loss(z, c, s, 0.1, n_negatives=10, generator=gen(1))
    d = proto_nce_loss(z, c, s, 0.1, n_negatives=10, generator=gen(2))
    assert a.item() == b.item()
    assert a.item() != d.item()
    assert 0 < a.item() < full.item()


def test_proto_nce_gradcheck_and_bf16():
    z = randn(3, 4, seed=12, dtype=torch.float64, requires_grad=True)
    c = randn(5, 4, seed=13, dtype=torch.float64, requires_grad=True)
    phi = (torch.rand(5, generator=gen(14), dtype=torch.float64) + 0.5).requires_grad_()
    s = torch.tensor([1, 4, 0])
    assert torch.autograd.gradcheck(lambda a, b, p: proto_nce_loss(a, b, s, p), (z, c, phi))
    assert torch.autograd.gradcheck(
        lambda a, b, p: proto_nce_loss(a, b, s, p, n_negatives=2, generator=gen(0)), (z, c, phi)
    )
    zb = z.detach().bfloat16().requires_grad_()
    cb = c.detach().bfloat16()
    loss = proto_nce_loss(zb, cb, s, 0.2, n_negatives=3)
    assert loss.dtype == torch.float32
    loss.backward()
    assert zb.grad is not None and torch.isfinite(zb.grad.float()).all()
    assert (
        proto_nce_loss(zb, cb, s, 0.2).item()
        == proto_nce_loss(zb.float(), cb.float(), s, 0.2).item()
    )


def test_proto_nce_invalid():
    z, c, s = randn(3, 4), randn(5, 4), torch.tensor([0, 1, 2])
    with pytest.raises(ValueError, match="columns"):
        proto_nce_loss(z, randn(5, 3), s, 0.1)
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        proto_nce_loss(z, c, torch.tensor([0, 1]), 0.1)
    with pytest.raises(ValueError, match="integer"):
        proto_nce_loss(z, c, s.float(), 0.1)
    with pytest.raises(ValueError, match=r"\[0, 5\)"):
        proto_nce_loss(z, c, torch.tensor([0, 5, 1]), 0.1)
    with pytest.raises(ValueError, match=r"\[0, 5\)"):
        proto_nce_loss(z, c, torch.tensor([0, -1, 1]), 0.1)
    with pytest.raises(ValueError, match="concentration"):
        proto_nce_loss(z, c, s, 0.0)
    with pytest.raises(ValueError, match="concentration"):
        proto_nce_loss(z, c, s, torch.tensor([0.1, 0.2, -0.1, 0.3, 0.1]))
    with pytest.raises(ValueError, match=r"concentration must be a float or have shape \(5,\)"):
        proto_nce_loss(z, c, s, torch.ones(4))
    with pytest.raises(ValueError, match="n_negatives"):
        proto_nce_loss(z, c, s, 0.1, n_negatives=5)
    with pytest.raises(ValueError, match="n_negatives"):
        proto_nce_loss(z, c, s, 0.1, n_negatives=0)
    with pytest.raises(ValueError, match="n_negatives"):
        proto_nce_loss(z, c, s, 0.1, n_negatives=2.0)
    # int32 assignments are accepted.
    loss32 = proto_nce_loss(z, c, s.int(), 0.1)
    assert loss32.item() == proto_nce_loss(z, c, s, 0.1).item()


# ---------------------------------------------------------------- alignment / uniformity


@pytest.mark.parametrize("alpha", [2.0, 1.0, 3.0])
def test_alignment_matches_reference(alpha):
    a, b = randn(6, 5, seed=1, dtype=torch.float64), randn(6, 5, seed=2, dtype=torch.float64)
    expected = (
        sum(
            math.sqrt(sum((float(a[i, d]) - float(b[i, d])) ** 2 for d in range(5))) ** alpha
            for i in range(6)
        )
        / 6
    )
    assert alignment_loss(a, b, alpha=alpha).item() == pytest.approx(expected, rel=1e-12)


def test_alignment_gradcheck_bf16_and_invalid():
    a = randn(3, 4, seed=3, dtype=torch.float64, requires_grad=True)
    b = randn(3, 4, seed=4, dtype=torch.float64, requires_grad=True)
    for alpha in (2.0, 1.5):
        assert torch.autograd.gradcheck(
            lambda x, y, alpha=alpha: alignment_loss(x, y, alpha), (a, b)
        )
    # Identical pairs: zero loss and a zero (not NaN) gradient.
    x = a.detach().clone().requires_grad_()
    loss = alignment_loss(x, x.detach())
    loss.backward()
    assert loss.item() == 0.0 and torch.equal(x.grad, torch.zeros_like(x))
    ab, bb = a.detach().bfloat16(), b.detach().bfloat16()
    out = alignment_loss(ab, bb)
    assert out.dtype == torch.float32
    assert out.item() == alignment_loss(ab.float(), bb.float()).item()
    with pytest.raises(ValueError, match="same shape"):
        alignment_loss(randn(3, 4), randn(3, 5))
    with pytest.raises(ValueError, match="alpha"):
        alignment_loss(randn(3, 4), randn(3, 4), alpha=0)


def test_uniformity_matches_double_loop():
    z = unit(randn(7, 3, seed=5, dtype=torch.float64))
    for t in (0.5, 2.0, 10.0):
        values = [
            math.exp(-t * float(((z[i] - z[j]) ** 2).sum()))
            for i in range(7)
            for j in range(i + 1, 7)
        ]
        expected = math.log(sum(values) / len(values))
        assert uniformity_loss(z, t=t).item() == pytest.approx(expected, rel=1e-12)


def test_uniformity_orders_spread_and_collapsed_sets():
    spread = torch.eye(4)
    collapsed = unit(torch.ones(4, 4) + 0.01 * randn(4, 4, seed=6))
    assert uniformity_loss(spread) < uniformity_loss(collapsed)
    assert uniformity_loss(collapsed).item() > -0.1  # log of a mean close to 1
    # Large t stays finite (log-sum-exp): the plain formula would underflow to log(0).
    assert torch.isfinite(uniformity_loss(spread, t=1000.0))
    assert uniformity_loss(spread, t=1000.0).item() == pytest.approx(-2000.0)


def test_uniformity_gradcheck_bf16_and_invalid():
    z = randn(4, 3, seed=7, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: uniformity_loss(x, 1.5), (z,))
    zb = z.detach().bfloat16().requires_grad_()
    out = uniformity_loss(zb)
    assert out.dtype == torch.float32
    assert out.item() == uniformity_loss(zb.float()).item()
    out.backward()
    assert torch.isfinite(zb.grad.float()).all()
    with pytest.raises(ValueError, match="at least 2 row"):
        uniformity_loss(randn(1, 3))
    with pytest.raises(ValueError, match="2-D"):
        uniformity_loss(randn(3))
    with pytest.raises(ValueError, match="t must be positive"):
        uniformity_loss(randn(3, 3), t=-1.0)


# ---------------------------------------------------------------- correlation


def test_correlation_matches_reference():
    B, D, eps = 9, 4, 1e-5
    z = randn(B, D, seed=8, dtype=torch.float64)
    cols = [[float(z[b, d]) for b in range(B)] for d in range(D)]
    means = [sum(col) / B for col in cols]
    stds = [
        math.sqrt(sum((v - m) ** 2 for v in col) / B + eps)
        for col, m in zip(cols, means, strict=True)
    ]
    total = 0.0
    for d in range(D):
        for e in range(D):
            if d != e:
                r = sum((cols[d][b] - means[d]) * (cols[e][b] - means[e]) for b in range(B)) / (
                    B * stds[d] * stds[e]
                )
                total += r * r
    assert correlation_loss(z, eps=eps).item() == pytest.approx(total / (D * (D - 1)), rel=1e-10)


def test_correlation_extremes_and_constant_columns():
    x = randn(64, 1, seed=9, dtype=torch.float64)
    correlated = torch.cat([x, -3 * x + 2, 0.5 * x], dim=1)
    assert correlation_loss(correlated).item() == pytest.approx(1.0, abs=1e-4)
    # Constant columns count as uncorrelated and stay finite.
    constant = torch.cat([x, torch.full_like(x, 5.0)], dim=1)
    assert correlation_loss(constant).item() == pytest.approx(0.0, abs=1e-12)
    # Sample correlations of independent columns are small.
    independent = randn(4096, 3, seed=10, dtype=torch.float64)
    assert correlation_loss(independent).item() < 5e-3


def test_correlation_gradcheck_bf16_and_invalid():
    z = randn(5, 3, seed=11, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(correlation_loss, (z,))
    zb = z.detach().bfloat16()
    assert correlation_loss(zb).dtype == torch.float32
    assert correlation_loss(zb).item() == correlation_loss(zb.float()).item()
    with pytest.raises(ValueError, match="at least 2 features"):
        correlation_loss(randn(5, 1))
    with pytest.raises(ValueError, match="at least 2 row"):
        correlation_loss(randn(1, 3))


# ---------------------------------------------------------------- KoLeo


def test_koleo_matches_explicit_nearest_neighbour():
    z = randn(10, 3, seed=12, dtype=torch.float64) * 5
    u = [[float(v) for v in row / row.norm()] for row in z]
    eps = 1e-8
    total = 0.0
    for i in range(10):
        nearest = min(
            math.sqrt(sum((a - b) ** 2 for a, b in zip(u[i], u[j], strict=True)))
            for j in range(10)
            if j != i
        )
        total += -math.log(nearest + eps)
    assert koleo_loss(z, eps=eps).item() == pytest.approx(total / 10, rel=1e-12)


def test_koleo_duplicates_are_finite_and_antipodal_pair():
    dup = torch.tensor([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0]], requires_grad=True)
    loss = koleo_loss(dup)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(dup.grad).all()
    assert loss.item() == pytest.approx((2 * -math.log(1e-8) - math.log(math.sqrt(2))) / 3)
    # Two opposite points: each is the other's nearest neighbour at distance 2.
    assert koleo_loss(torch.tensor([[1.0, 0.0], [-1.0, 0.0]])).item() == pytest.approx(
        -math.log(2.0)
    )


def test_koleo_gradient_spreads_points():
    z = unit(randn(8, 3, seed=13)) + 0.0
    z.requires_grad_()
    opt = torch.optim.SGD([z], lr=0.05)
    before = koleo_loss(z).item()
    for _ in range(20):
        opt.zero_grad()
        koleo_loss(z).backward()
        opt.step()
    assert koleo_loss(z).item() < before


def test_koleo_gradcheck_bf16_and_invalid():
    z = randn(5, 3, seed=14, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(koleo_loss, (z,))
    zb = z.detach().bfloat16()
    assert koleo_loss(zb).dtype == torch.float32
    assert koleo_loss(zb).item() == koleo_loss(zb.float()).item()
    with pytest.raises(ValueError, match="at least 2 row"):
        koleo_loss(randn(1, 3))
    with pytest.raises(ValueError, match="eps"):
        koleo_loss(randn(3, 3), eps=0.0)


def test_non_tensor_input_raises_type_error():
    with pytest.raises(TypeError, match="torch.Tensor"):
        koleo_loss([[1.0, 0.0], [0.0, 1.0]])
