"""``GMMPrototypes`` changes all or nothing: one update at a time (a lock), an interrupt
leaves it before or after a step (never between), and a checkpoint is checked whole before
anything is loaded."""

from __future__ import annotations

import copy
import sys
import threading
from pathlib import Path

import pytest
import torch

from online_gmm import core
from ssl_bridge import GMMPrototypes

D = 6
BUFFERS = (*core.STATE_FIELDS, "step", "n_samples_seen", "n_reseeded", "rng_state",
           "warmup_rows", "warmup_weights", "warmup_progress")
PACKAGES = tuple(str(Path(__file__).resolve().parents[2] / p) for p in ("online_gmm",
                                                                         "ssl_bridge"))


def _blobs(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    centres = torch.eye(D)[:4] * 5
    return centres[torch.randint(0, 4, (n,), generator=g)] + torch.randn(n, D, generator=g)


def _snapshot(head: GMMPrototypes) -> dict[str, torch.Tensor]:
    return {n: getattr(head, n).clone() for n in BUFFERS}


def _same(a: dict, b: dict) -> bool:
    return all(a[n].shape == b[n].shape and torch.equal(a[n], b[n]) for n in BUFFERS)


@pytest.mark.parametrize("backend", ["numba", "reference"])
def test_updates_from_several_threads_lose_no_evidence(backend):
    head = GMMPrototypes(4, D, warmup_size=0, forgetting_rate=0.0, normalize=False)
    head.update(_blobs(64, 0))
    batches = [_blobs(64, i + 1) for i in range(80)]
    serial = copy.deepcopy(head)
    for x in batches:
        serial.update(x)

    def run(part):
        with core.use_backend(backend):  # (a thread starts with the default backend)
            for x in part:
                head.update(x)

    threads = [threading.Thread(target=run, args=(batches[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert int(head.step) == int(serial.step) == 81
    assert int(head.n_samples_seen) == int(serial.n_samples_seen)
    # without forgetting the total evidence does not depend on the order of the batches
    torch.testing.assert_close(head.mass.sum(), serial.mass.sum())
    torch.testing.assert_close(head.nu.sum(), serial.nu.sum())


def _interrupt_after(n_lines: int):
    """A trace function raising KeyboardInterrupt at the ``n_lines``-th line run in the
    packages (where a Ctrl-C's handler would raise)."""
    count = 0

    def tracer(frame, event, arg):
        nonlocal count
        if event == "line" and frame.f_code.co_filename.startswith(PACKAGES):
            count += 1
            if count == n_lines:
                raise KeyboardInterrupt
        return tracer

    return tracer


@pytest.mark.parametrize("phase", ["steady", "warm-up", "seeding"])
def test_an_interrupt_leaves_the_module_before_or_after_the_step(phase):
    kw = dict(warmup_size=0) if phase != "warm-up" else dict(warmup_size=200)
    base = GMMPrototypes(4, D, **kw)
    if phase != "seeding":
        base.update(_blobs(64, 0))
    x = _blobs(64, 1)
    before = _snapshot(base)
    done = copy.deepcopy(base)
    done.update(x)
    after = _snapshot(done)
    assert not _same(before, after)
    n_lines, outcomes = 1, set()
    while True:
        head = copy.deepcopy(base)
        sys.settrace(_interrupt_after(n_lines))
        try:
            head.update(x)
            interrupted = False
        except KeyboardInterrupt:
            interrupted = True
        finally:
            sys.settrace(None)
        now = _snapshot(head)
        assert _same(now, before) or _same(now, after), f"torn at line {n_lines}"
        outcomes.add("before" if _same(now, before) else "after")
        if n_lines % 25 == 1:  # and it goes on as the module it is
            y = _blobs(32, 2)
            twin = copy.deepcopy(base if _same(now, before) else done)
            head.update(y)
            twin.update(y)
            assert _same(_snapshot(head), _snapshot(twin))
        if not interrupted:
            break
        n_lines += 3
    assert outcomes == {"before", "after"} or n_lines > 1


def _steady_head(**kw) -> GMMPrototypes:
    head = GMMPrototypes(4, D, warmup_size=0, **kw)
    head.update(_blobs(64, 0))
    return head


@pytest.mark.parametrize("strict", [True, False])
def test_a_checkpoint_with_a_missing_key_changes_nothing(strict):
    source = _steady_head()
    source.update(_blobs(64, 3))
    target = _steady_head()
    before = _snapshot(target)
    sd = source.state_dict()
    del sd["nu"]
    if strict:
        with pytest.raises(RuntimeError, match="Missing key"):
            target.load_state_dict(sd)
        assert _same(_snapshot(target), before)
    else:  # the mixture is one unit: a part of it does not load, and says so
        result = target.load_state_dict(sd, strict=False)
        assert result.missing_keys == ["nu"]
        assert _same(_snapshot(target), before)


def test_a_checkpoint_with_an_unexpected_key_changes_nothing():
    source, target = _steady_head(), _steady_head()
    source.update(_blobs(64, 3))
    before = _snapshot(target)
    sd = source.state_dict()
    sd["surprise"] = torch.zeros(3)
    with pytest.raises(RuntimeError, match="Unexpected key"):
        target.load_state_dict(sd)
    assert _same(_snapshot(target), before)


@pytest.mark.parametrize("strict", [True, False])
def test_a_checkpoint_from_before_the_warm_up_loads_with_it_done(strict):
    source = GMMPrototypes(4, D, forgetting_rate=0.0, warmup_size=0)
    for i in range(5):
        source.update(_blobs(64, i))
    sd = {k: v for k, v in source.state_dict().items() if not k.startswith("warmup_")}
    head = GMMPrototypes(4, D, forgetting_rate=0.0)  # warm-up on by default
    head.load_state_dict(sd, strict=strict)
    assert int(head.warmup_progress[0]) == 2  # DONE
    mass = head.mass.sum()
    head.update(_blobs(64, 9))  # an ordinary step: no restarts from a new buffer
    torch.testing.assert_close(head.mass.sum(), mass + 64)
    assert torch.equal(head.step, source.step + 1)


@pytest.mark.parametrize("progress", [
    [1, 10**11, 0, 0, 0],  # a warm-up of 10^11 rows (the next update would allocate TiBs)
    [1, -5, 0, 0, 0],
    [1, 20, 0, 0, 30],  # more rows held than buffered
    [7, 0, 0, 0, 0],  # no such phase
])
def test_a_checkpoint_with_an_impossible_warm_up_changes_nothing(progress):
    head = GMMPrototypes(4, D)
    head.update(_blobs(16, 0))  # buffering
    sd = head.state_dict()
    sd["warmup_progress"] = torch.tensor(progress)
    target = GMMPrototypes(4, D)
    before = _snapshot(target)
    with pytest.raises(RuntimeError, match="warmup_progress"):
        target.load_state_dict(sd)
    assert _same(_snapshot(target), before)


@pytest.mark.parametrize("field,value", [("means", float("nan")), ("weights", float("inf")),
                                         ("mass", -1.0)])
def test_a_checkpoint_with_a_bad_value_changes_nothing(field, value):
    source, target = _steady_head(), _steady_head()
    sd = source.state_dict()
    sd[field] = sd[field].clone()
    sd[field].view(-1)[0] = value
    before = _snapshot(target)
    with pytest.raises(RuntimeError, match=field):
        target.load_state_dict(sd)
    assert _same(_snapshot(target), before)


def test_a_loaded_checkpoint_resumes_exactly():
    source = _steady_head()
    source.update(_blobs(64, 3))
    target = GMMPrototypes(4, D, warmup_size=0)
    target.load_state_dict(source.state_dict())
    x = _blobs(64, 4)
    source.update(x)
    target.update(x)
    assert _same(_snapshot(source), _snapshot(target))
