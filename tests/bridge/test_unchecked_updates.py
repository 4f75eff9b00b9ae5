"""``nonfinite="ignore"`` (the checks off): a steady update reads nothing from the device,
and on clean data it is the checked update, step for step, reseeding included."""

from __future__ import annotations

import copy
import pickle
import warnings

import pytest
import torch

from online_gmm import core
from ssl_bridge import GMMPrototypes

from ._device_proxies import DeviceCalls

TYPES = ["spherical", "diag", "tied", "full"]
BACKENDS = ["numba", "reference"]
D = 8
COUNTED = (*core.STATE_FIELDS, "step", "n_samples_seen", "n_reseeded")


def _pair(ct: str, **kw) -> tuple[GMMPrototypes, GMMPrototypes]:
    """A checked head and an unchecked one, alike otherwise."""
    kw = dict(covariance_type=ct, warmup_size=0, **kw)
    return GMMPrototypes(16, D, **kw), GMMPrototypes(16, D, nonfinite="ignore", **kw)


def _collapsing_stream(n: int) -> list[torch.Tensor]:
    """Two spread batches, then three tight clusters: prototypes die and are reseeded."""
    g = torch.Generator().manual_seed(0)
    centres = 3 * torch.randn(3, D, generator=g)
    out = [torch.randn(64, D, generator=g) for _ in range(2)]
    for _ in range(n - 2):
        pick = torch.randint(0, 3, (64,), generator=g)
        out.append(centres[pick] + 0.1 * torch.randn(64, D, generator=g))
    return out


def _assert_same(a: GMMPrototypes, b: GMMPrototypes, where: object = None) -> None:
    for name in COUNTED:
        assert torch.equal(getattr(a, name), getattr(b, name)), (name, where)


@pytest.mark.parametrize("ct", TYPES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_unchecked_is_the_checked_update_on_clean_data_reseeds_included(ct, backend):
    with core.use_backend(backend):
        checked, unchecked = _pair(ct, forgetting_rate=0.2, dead_threshold=0.04)
        for i, x in enumerate(_collapsing_stream(30)):
            checked.update(x)
            unchecked.update(x)
            _assert_same(checked, unchecked, i)
        assert int(checked.n_reseeded) > 0  # (the deferred seeding flag was used)


@pytest.mark.parametrize("ct", TYPES)
def test_unchecked_steady_update_reads_nothing(ct):
    with core.use_backend("reference"):
        _, head = _pair(ct)
        for _ in range(3):
            head.update(torch.randn(128, D))
        x = torch.randn(128, D)
        x[3] = float("nan")  # (a bad row: dropped on the device, no read)
        for kwargs in ({}, {"return_targets": True},
                       {"return_targets": True, "balance": "sinkhorn"}):
            with DeviceCalls() as calls:
                head.update(x, **kwargs)
            assert calls.n_syncs == 0, (kwargs, dict(calls.syncs))
        checked = GMMPrototypes(16, D, warmup_size=0)
        for _ in range(3):
            checked.update(torch.randn(128, D))
        with DeviceCalls() as calls:
            checked.update(torch.randn(128, D))
        assert calls.n_syncs == 1  # (the checked update's one read, for comparison)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("phase", ["steady", "seeding"])
@pytest.mark.parametrize("balance", [None, "sinkhorn"])
def test_unchecked_drops_bad_rows_silently_as_skip_does(backend, phase, balance):
    with core.use_backend(backend):
        skip = GMMPrototypes(16, D, warmup_size=0, nonfinite="skip")
        ignore = GMMPrototypes(16, D, warmup_size=0, nonfinite="ignore")
        for head in (skip, ignore):
            for _ in range(3 if phase == "steady" else 0):
                head.update(torch.randn(128, D, generator=torch.Generator().manual_seed(1)))
        x = torch.randn(128, D)
        x[[5, 9]] = float("nan")
        x[11, 2] = float("inf")
        expected = None if phase == "seeding" or balance else copy.deepcopy(skip).targets(
            x[12:])
        kw = dict(return_targets=True, balance=balance, sinkhorn_iterations=20)
        with pytest.warns(RuntimeWarning, match="skipped 3 of 128"):
            _, q_skip = skip.update(x, **kw)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            info, q = ignore.update(x, **kw)
        assert int(info["n_skipped"]) == 3 and bool(info["updated"])
        _assert_same(skip, ignore)
        bad = torch.zeros(128, dtype=torch.bool)
        bad[[5, 9, 11]] = True
        assert torch.isnan(q[bad]).all() and torch.isfinite(q[~bad]).all()
        # (balanced over the kept rows only, as skip's, which never saw the others)
        torch.testing.assert_close(q[~bad], q_skip[~bad], rtol=1e-5, atol=1e-6)
        if expected is not None:  # the posterior under the parameters before the step
            torch.testing.assert_close(q[12:], expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("ct", ["spherical", "full"])
def test_unchecked_discards_a_step_that_would_not_be_finite(backend, ct):
    """Where the checked update raises (a scale that overflows), the unchecked one keeps
    every buffer but the step counter, and says it did not update."""
    with core.use_backend(backend):
        checked, head = _pair(ct, normalize=False)
        for _ in range(3):
            x = torch.randn(64, D, dtype=torch.float64)
            checked.update(x)
            head.update(x)
        huge = 1e200 * torch.randn(64, D, dtype=torch.float64)
        before = {k: v.clone() for k, v in head.state_dict().items()}
        with pytest.raises(FloatingPointError), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # (NumPy's overflow, on CPU)
            checked.update(huge)
        info, q = head.update(huge, return_targets=True)
        assert not bool(info["updated"])
        assert torch.isnan(q).all()
        for k, v in head.state_dict().items():
            if k == "step":
                assert int(v) == int(before[k]) + 1
            else:
                assert torch.equal(v, before[k]), k
        # the stream goes on as the checked one does
        x = torch.randn(64, D, dtype=torch.float64)
        checked.update(x)
        head.update(x)
        for name in core.STATE_FIELDS:
            assert torch.equal(getattr(checked, name), getattr(head, name)), name


@pytest.mark.parametrize("backend", BACKENDS)
def test_unchecked_all_bad_batch_counts_a_step_and_changes_nothing_else(backend):
    with core.use_backend(backend):
        _, head = _pair("diag")
        for _ in range(3):
            head.update(torch.randn(64, D))
        before = {k: v.clone() for k, v in head.state_dict().items()}
        info = head.update(torch.full((16, D), float("nan")))
        assert not bool(info["updated"]) and int(info["n_skipped"]) == 16
        for k, v in head.state_dict().items():
            assert torch.equal(v, before[k] + (k == "step")), k


def test_a_pending_seeding_flag_survives_copies_and_pickles():
    with core.use_backend("reference"):
        checked, head = _pair("spherical", forgetting_rate=0.2, dead_threshold=0.04)
        stream = _collapsing_stream(12)
        for x in stream[:6]:
            checked.update(x)
            head.update(x)
        for twin in (copy.deepcopy(head), pickle.loads(pickle.dumps(head))):
            ref = copy.deepcopy(checked)
            for x in stream[6:]:
                ref.update(x)
                twin.update(x)
            _assert_same(ref, twin)


def test_targets_and_forward_do_not_wait_on_the_deferred_flag():
    """The deferred seeding flag is taken by the next update only: on a GPU, ``targets``
    and ``forward`` between two updates never wait for the last update's kernels."""
    from ssl_bridge import _update

    with core.use_backend("reference"):
        _, head = _pair("diag")
        for _ in range(3):
            head.update(torch.randn(64, D))
        assert isinstance(head._host_view[1].seeding, _update.DeferredFlag)
        x = torch.randn(16, D)
        head.targets(x)
        head(x)
        head.targets(x, balance="sinkhorn")
        assert isinstance(head._host_view[1].seeding, _update.DeferredFlag)
        head.update(x)  # (taken here, and deferred again)
        assert isinstance(head._host_view[1].seeding, _update.DeferredFlag)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("phase", ["warm-up", "seeding"])
def test_unchecked_discards_a_failed_warm_up_or_seeding_step_on_both_backends(backend,
                                                                              phase):
    """The general path (seeding, the warm-up) under "ignore": a step that fails
    numerically (the numba backend raises where the reference one flags) is discarded the
    same way on both backends, silently."""
    with core.use_backend(backend):
        head = GMMPrototypes(4, D, covariance_type="full", normalize=False,
                             warmup_size=200 if phase == "warm-up" else 0,
                             nonfinite="ignore")
        if phase == "warm-up":
            head.update(torch.randn(64, D, dtype=torch.float64))  # (buffering)
        before = {k: v.clone() for k, v in head.state_dict().items()}
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            info, q = head.update(1e160 * torch.randn(64, D, dtype=torch.float64),
                                  return_targets=True)
        assert not bool(info["updated"]) and torch.isnan(q).all()
        for k, v in head.state_dict().items():
            assert torch.equal(v, before[k] + (k == "step")), k


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_discarded_step_still_lets_a_due_duplicate_check_run(backend):
    """A discarded step counts: if the next step is due to check for duplicate
    prototypes, it does (the state's own test, not the discarded one's)."""
    with core.use_backend(backend):
        _, head = _pair("spherical", normalize=False)
        for _ in range(3):
            head.update(torch.randn(64, D, dtype=torch.float64))
        assert core.redundancy_due(int(head.step) + 1, 16, D)
        head.update(1e200 * torch.randn(64, D, dtype=torch.float64))  # (discarded)
        seeding = head._host_view[1].seeding
        assert (seeding if isinstance(seeding, bool) else seeding.value()) is True
