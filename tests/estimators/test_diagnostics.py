"""Tests for online_gmm.diagnostics (collapse diagnostics of prototype sets)."""

import math

import numpy as np
import pytest

from online_gmm.diagnostics import (
    DEFAULT_EPS,
    collapse_report,
    format_report,
    unique_prototypes,
)


def naive_unique(C, eps):
    """O(K^2) reference: the greedy cover, one representative at a time, in row order."""
    C = np.asarray(C, dtype=np.float64)
    norms = np.linalg.norm(C, axis=1)
    zero = norms == 0
    Y = C[~zero] / norms[~zero, None]
    cos = Y @ Y.T
    covered = np.zeros(Y.shape[0], dtype=bool)
    n_rep = 0
    for i in range(Y.shape[0]):
        if covered[i]:
            continue
        n_rep += 1
        covered |= (1.0 - cos[i]) < eps
    return n_rep + int(zero.sum())


def clustered(rng, n_centres, n_points, dim, spread):
    """Points scattered around random unit centres, in a shuffled order."""
    centres = rng.standard_normal((n_centres, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    labels = rng.integers(0, n_centres, size=n_points)
    return centres[labels] + spread * rng.standard_normal((n_points, dim))


# ---------------------------------------------------------------- exact small cases


def test_duplicates_collapse_to_one():
    C = np.tile([[0.3, -1.2, 0.5]], (50, 1))
    for eps in (1e-6, 0.025, 0.5, 2.0):
        assert unique_prototypes(C, eps) == 1


def test_orthogonal_vectors_all_unique_below_one():
    C = np.eye(7)
    for eps in (0.025, 0.5, 0.999):
        assert unique_prototypes(C, eps) == 7


def test_orthogonal_boundary_at_eps_one():
    # cos = 0 exactly: 1 - cos = 1 is not < 1, so eps = 1 keeps them apart.
    C = np.eye(5)
    assert unique_prototypes(C, 1.0) == 5
    assert unique_prototypes(C, 1.0 + 1e-9) == 1


def test_antipodal_boundary_at_eps_two():
    C = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]])
    # eps = 2: everything but exact opposites merges. Row 0 covers row 2, not row 1.
    assert unique_prototypes(C, 2.0) == 2
    assert unique_prototypes(C, 1.5) == 2  # cos(0, 2) = 0 > -0.5; cos(0, 1) = -1
    assert unique_prototypes(C, 0.5) == 3


def test_threshold_boundary_three_four_five():
    # cos = 0.6 between [1, 0] and [3, 4]: merged iff eps > 0.4.
    C = np.array([[1.0, 0.0], [3.0, 4.0]])
    assert unique_prototypes(C, 0.4 - 1e-9) == 2
    assert unique_prototypes(C, 0.4 + 1e-9) == 1


def test_greedy_order_matters():
    # a - b - c on a line of angles 0, 40, 80 degrees: at a threshold covering 40 degrees
    # but not 80, greedy from a picks a (covers b), then c: 2. Starting from b covers all.
    ang = np.deg2rad([0.0, 40.0, 80.0])
    C = np.stack([np.cos(ang), np.sin(ang)], axis=1)
    eps = 1 - np.cos(np.deg2rad(50.0))
    assert unique_prototypes(C, eps) == 2
    assert unique_prototypes(C[[1, 0, 2]], eps) == 1
    assert naive_unique(C[[1, 0, 2]], eps) == 1


def test_scale_invariance_of_rows():
    rng = np.random.default_rng(0)
    C = clustered(rng, 10, 200, 8, 0.05)
    scales = 10.0 ** rng.uniform(-150, 150, size=(200, 1))
    for eps in DEFAULT_EPS:
        expected = unique_prototypes(C, eps)
        assert unique_prototypes(C * scales, eps) == expected
        assert unique_prototypes(C * 1e-300, eps) == expected


def test_zero_rows_are_their_own_prototypes():
    C = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 0.0], [2.0, 0.0], [0.0, 0.0]])
    with np.errstate(all="raise"):
        assert unique_prototypes(C, 0.025) == 4  # three zero rows + one direction
        # Even at eps > 1 (where cos = 0 would count as close) zero rows merge with nothing.
        assert unique_prototypes(C, 2.0) == 4
    assert unique_prototypes(np.zeros((3, 4)), 0.5) == 3
    report = collapse_report(np.zeros((3, 4)))
    assert report["unique"] == {e: 3 for e in DEFAULT_EPS}


def test_empty_matrix():
    assert unique_prototypes(np.zeros((0, 3)), 0.1) == 0


def test_input_types_lists_ints_float32():
    C = [[1, 0], [2, 0], [0, 5]]
    assert unique_prototypes(C, 0.1) == 2
    assert unique_prototypes(np.asarray(C, dtype=np.float32), 0.1) == 2
    assert unique_prototypes(np.asarray(C, dtype=np.int64), 0.1) == 2


def test_accepts_tensor_like_objects_without_torch():
    class FakeTensor:
        def __init__(self, a):
            self.a = a

        def detach(self):
            return self

        def cpu(self):
            return self

        def numpy(self):
            return self.a

    C = np.array([[1.0, 0.0], [1.0, 1e-4], [0.0, 1.0]])
    assert unique_prototypes(FakeTensor(C), 0.025) == 2
    assert collapse_report(FakeTensor(C), weights=FakeTensor(np.ones(3)))["unique"][0.025] == 2


def test_accepts_torch_tensors_including_bfloat16():
    torch = pytest.importorskip("torch")
    C = torch.tensor([[1.0, 0.0], [1.0, 1e-3], [0.0, 1.0]], requires_grad=True)
    assert unique_prototypes(C, 0.025) == 2
    assert unique_prototypes(C.to(torch.bfloat16), 0.025) == 2


# ---------------------------------------------------------------- block algorithm


@pytest.mark.parametrize("block_size", [1, 2, 3, 7, 16, 1024])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_block_algorithm_matches_naive_on_clustered_data(block_size, seed):
    rng = np.random.default_rng(seed)
    # Near-duplicates of a few directions in shuffled order: members of one cluster land in
    # many different blocks, so blocks must remove rows covered by earlier blocks.
    C = clustered(rng, 12, 150, 6, spread=0.08)
    C[rng.integers(0, 150, 10)] = 0.0
    for eps in (0.005, 0.025, 0.1, 0.25, 0.5, 1.0, 1.5, 2.0):
        assert unique_prototypes(C, eps, block_size=block_size) == naive_unique(C, eps)


@pytest.mark.parametrize("block_size", [1, 5, 64])
def test_block_algorithm_matches_naive_on_random_data(block_size):
    rng = np.random.default_rng(3)
    C = rng.standard_normal((300, 3))
    results = set()
    for eps in (0.01, 0.05, 0.2, 0.6, 1.2):
        expected = naive_unique(C, eps)
        results.add(expected)
        assert unique_prototypes(C, eps, block_size=block_size) == expected
    assert len(results) == 5  # the thresholds exercise genuinely different covers


@pytest.mark.parametrize("block_size", [1, 8, 1024])
def test_pairs_within_float32_rounding_of_threshold_are_decided_exactly(block_size):
    # n independent pairs, each in its own plane: an anchor and a partner at an angle
    # arccos(1 - eps) -+ (1e-8 .. 3e-7) radians, closer to the threshold than float32
    # products can resolve (without the float64 re-check, block_size=8 gets this wrong).
    # A random rotation spreads every row over all dimensions. Exactly the pairs with a
    # negative angle offset merge, so U = n + (number of positive offsets).
    rng = np.random.default_rng(4)
    n, eps = 100, 0.1
    theta = np.arccos(1 - eps)
    offsets = rng.uniform(1e-8, 3e-7, size=n) * rng.choice([-1.0, 1.0], size=n)
    C = np.zeros((2 * n, 2 * n))
    planes = np.arange(n)
    C[planes, 2 * planes] = 1.0
    C[n + planes, 2 * planes] = np.cos(theta + offsets)
    C[n + planes, 2 * planes + 1] = np.sin(theta + offsets)
    Q, _ = np.linalg.qr(rng.standard_normal((2 * n, 2 * n)))
    C = (C @ Q)[rng.permutation(2 * n)]
    expected = n + int(np.sum(offsets > 0))
    assert 0 < np.sum(offsets > 0) < n
    assert naive_unique(C, eps) == expected
    assert unique_prototypes(C, eps, block_size=block_size) == expected
    assert unique_prototypes(C, 0.05, block_size=block_size) == 2 * n  # cos 0.9 < 0.95


def test_result_independent_of_block_size_on_larger_input():
    rng = np.random.default_rng(5)
    C = np.concatenate([clustered(rng, 50, 3000, 32, 0.01), rng.standard_normal((1000, 32))])
    C = C[rng.permutation(C.shape[0])]
    counts = {unique_prototypes(C, 0.025, block_size=b) for b in (37, 256, 1024, 5000)}
    assert len(counts) == 1
    (count,) = counts
    assert 1050 <= count <= 1050 + 5  # 50 clusters + 1000 random directions (all unique)


# ---------------------------------------------------------------- collapse report


def test_report_uniform_weights_effective_number_is_k():
    C = np.eye(6)
    report = collapse_report(C)
    assert report["n_prototypes"] == 6
    assert list(report["unique"]) == list(DEFAULT_EPS)
    assert report["unique"] == {e: 6 for e in DEFAULT_EPS}
    assert report["unique_fraction"] == {e: 1.0 for e in DEFAULT_EPS}
    assert report["weight_entropy"] == pytest.approx(math.log(6), rel=1e-12)
    assert report["effective_components"] == pytest.approx(6.0, rel=1e-12)
    explicit = collapse_report(C, weights=np.full(6, 3.5))
    assert explicit["weight_entropy"] == pytest.approx(math.log(6), rel=1e-12)


def test_report_one_hot_weights_effective_number_is_one():
    report = collapse_report(np.eye(4), weights=[0.0, 0.0, 7.0, 0.0])
    assert report["weight_entropy"] == 0.0
    assert report["effective_components"] == 1.0


def test_report_entropy_matches_formula_and_normalises():
    rng = np.random.default_rng(6)
    w = rng.uniform(0, 1, size=20)
    w[[3, 9]] = 0.0
    p = w / w.sum()
    nz = p > 0
    expected = -np.sum(p[nz] * np.log(p[nz]))
    report = collapse_report(rng.standard_normal((20, 5)), weights=w * 1e300)
    assert report["weight_entropy"] == pytest.approx(expected, rel=1e-12)
    assert report["effective_components"] == pytest.approx(np.exp(expected), rel=1e-12)
    assert 1.0 < report["effective_components"] < 18.0


def test_report_collapsed_set_and_fractions():
    rng = np.random.default_rng(7)
    base = rng.standard_normal(16)
    C = base + 1e-4 * rng.standard_normal((100, 16))
    C[:10] = rng.standard_normal((10, 16))
    report = collapse_report(C, eps=0.025)
    assert report["unique"] == {0.025: naive_unique(C, 0.025)}
    assert report["unique"][0.025] <= 11
    assert report["unique_fraction"][0.025] == report["unique"][0.025] / 100


def test_report_single_eps_and_iterables():
    C = np.eye(3)
    assert collapse_report(C, eps=0.5)["unique"] == {0.5: 3}
    assert collapse_report(C, eps=np.array([0.5, 1.5]))["unique"] == {0.5: 3, 1.5: 1}
    assert collapse_report(C, eps=(e for e in [1.5]))["unique"] == {1.5: 1}


def test_format_report():
    report = collapse_report(np.eye(4), weights=[1, 1, 0, 0], eps=(0.025, 1.5))
    text = format_report(report)
    lines = text.splitlines()
    assert len(lines) == 4
    assert "prototypes: 4" in lines[0]
    assert f"{math.log(2):.4f}" in lines[0]
    assert "effective components: 2.00" in lines[0]
    assert lines[2].split() == ["0.025", "4", "1.0000"]
    assert lines[3].split() == ["1.500", "1", "0.2500"]
    with pytest.raises(ValueError, match="missing the key"):
        format_report({"n_prototypes": 4})


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize("eps", [0.0, -0.1, 2.0001, float("nan"), float("inf"), "0.1", None, True])
def test_invalid_eps(eps):
    with pytest.raises(ValueError, match="eps"):
        unique_prototypes(np.eye(2), eps)
    with pytest.raises(ValueError, match="eps"):
        collapse_report(np.eye(2), eps=[0.1, eps])


def test_empty_eps_list():
    with pytest.raises(ValueError, match="at least one threshold"):
        collapse_report(np.eye(2), eps=[])


@pytest.mark.parametrize(
    ("C", "match"),
    [
        (np.ones(3), "2-D"),
        (np.ones((2, 2, 2)), "2-D"),
        (np.ones((3, 0)), "at least one column"),
        (np.array([[1.0, np.nan]]), "finite"),
        (np.array([[1.0, np.inf]]), "finite"),
        (np.array([["a", "b"]]), "real numeric"),
        (np.array([[1 + 1j, 0]]), "real numeric"),
    ],
)
def test_invalid_prototypes(C, match):
    with pytest.raises(ValueError, match=match):
        unique_prototypes(C, 0.1)
    with pytest.raises(ValueError, match=match):
        collapse_report(C)


def test_report_needs_a_prototype():
    with pytest.raises(ValueError, match="at least one prototype"):
        collapse_report(np.zeros((0, 3)))


@pytest.mark.parametrize("block_size", [0, -3, 2.5, True, "8"])
def test_invalid_block_size(block_size):
    with pytest.raises(ValueError, match="block_size"):
        unique_prototypes(np.eye(2), 0.1, block_size=block_size)


@pytest.mark.parametrize(
    ("weights", "match"),
    [
        ([1.0, 1.0], r"shape \(3,\)"),
        ([[1.0, 1.0, 1.0]], r"shape \(3,\)"),
        ([1.0, -0.5, 1.0], "non-negative"),
        ([0.0, 0.0, 0.0], "positive sum"),
        ([1.0, np.nan, 1.0], "finite"),
        ([1.0, np.inf, 1.0], "finite"),
        (["a", "b", "c"], "real numeric"),
    ],
)
def test_invalid_weights(weights, match):
    with pytest.raises(ValueError, match=match):
        collapse_report(np.eye(3), weights=weights)


def test_report_matches_unique_prototypes_for_any_eps_order():
    rng = np.random.default_rng(8)
    # Well-separated random directions plus a few near-duplicates: unique at small eps,
    # merged at large eps.
    C = np.concatenate([rng.standard_normal((40, 64)), np.tile(rng.standard_normal(64), (3, 1))])
    C[-3:] += 1e-3 * rng.standard_normal((3, 64))
    eps = (0.1, 1.2, 0.025, 0.9, 0.5)
    report = collapse_report(C, eps=eps)
    assert list(report["unique"]) == list(eps)
    assert report["unique"] == {e: naive_unique(C, e) for e in eps}
    assert report["unique"][0.025] == 41
    assert report["unique"][1.2] < 41
    spread = rng.standard_normal((50, 64))
    full = collapse_report(spread, eps=eps)
    assert full["unique"] == {e: naive_unique(spread, e) for e in eps}
    assert full["unique"][0.5] == 50  # hence all smaller eps are 50 without recomputing
    assert full["unique"][0.9] < 50
