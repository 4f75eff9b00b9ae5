"""The bridge's ``torch.Generator`` (``ssl_bridge._random``): its draws on the module's
device, its state a buffer exact through ``state_dict``, older checkpoints (a NumPy
``RandomState``'s words) and other devices' states converted deterministically."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from online_gmm import core
from ssl_bridge import GMMPrototypes, _random

D = 6


def _batches(n: int, seed: int = 0, B: int = 64) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    centres = 4 * torch.randn(5, D, generator=g)
    return [centres[torch.randint(0, 5, (B,), generator=g)] + torch.randn(B, D, generator=g)
            for _ in range(n)]


def _legacy_words(seed: int) -> torch.Tensor:
    """An ``rng_state`` as checkpoints before the generator held it: a ``RandomState``'s
    MT19937 words, position, has_gauss and cached gaussian, as int64."""
    _, key, pos, has_gauss, gauss = np.random.RandomState(seed).get_state(legacy=True)
    tail = np.array([pos, has_gauss, np.float64(gauss).view(np.int64)], dtype=np.int64)
    return torch.from_numpy(np.concatenate([key.astype(np.int64), tail]))


@pytest.mark.parametrize("backend", ["numba", "reference"])
def test_the_seeding_draws_come_from_the_generator_on_the_device(backend, monkeypatch):
    drawn = []
    sample = _random.DeviceRandom.random_sample

    def recorded(self, size=None):
        out = sample(self, size)
        drawn.append(out)
        return out

    monkeypatch.setattr(_random.DeviceRandom, "random_sample", recorded)
    with core.use_backend(backend):
        head = GMMPrototypes(8, D, warmup_size=128)
        for x in _batches(3):
            head.update(x)
    assert len(drawn) >= 2  # the first seeds, the warm-up's restarts
    if backend == "reference":  # (what a CUDA tensor runs: no uniform crosses from the host)
        assert all(isinstance(u, torch.Tensor) and u.device == head.device for u in drawn)
    else:  # (the numba kernels take NumPy)
        assert all(isinstance(u, np.ndarray) for u in drawn)


def test_the_two_cpu_paths_draw_the_same_seeds():
    heads = []
    for backend in ("numba", "reference"):
        with core.use_backend(backend):
            head = GMMPrototypes(8, D, warmup_size=0, random_state=5)
            head.update(_batches(1)[0])
            heads.append(head)
    torch.testing.assert_close(heads[0].means, heads[1].means, rtol=1e-5, atol=1e-6)
    assert torch.equal(heads[0].rng_state, heads[1].rng_state)


def test_random_state_seeds_the_generator():
    x = _batches(1)[0]
    a, b, c = (GMMPrototypes(8, D, warmup_size=0, random_state=s) for s in (1, 1, 2))
    for head in (a, b, c):
        head.update(x)
    assert torch.equal(a.means, b.means) and torch.equal(a.rng_state, b.rng_state)
    assert not torch.equal(a.rng_state, c.rng_state)


def test_the_generator_resumes_exactly_through_state_dict_while_reseeding():
    """Reseeding (dead prototypes) draws at many steps: a resume mid-stream must draw the
    same numbers as the run it was cut from."""
    batches = _batches(12)
    kw = dict(warmup_size=0, forgetting_rate=0.3, dead_threshold=0.3)
    straight = GMMPrototypes(8, D, **kw)
    for x in batches:
        straight.update(x)
    assert int(straight.n_reseeded) > 0
    first = GMMPrototypes(8, D, **kw)
    for x in batches[:5]:
        first.update(x)
    resumed = GMMPrototypes(8, D, **kw)
    resumed.load_state_dict(copy.deepcopy(first.state_dict()))
    for x in batches[5:]:
        resumed.update(x)
    for name, value in straight.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[name]), name


@pytest.mark.parametrize("strict", [True, False])
def test_a_checkpoint_with_a_numpy_random_state_loads_deterministically(strict):
    """Checkpoints made before the generator hold a ``RandomState``'s words: they load
    (strict too), the generator seeded from them, the same way every time."""
    source = GMMPrototypes(8, D, warmup_size=0)
    for x in _batches(3):
        source.update(x)
    old = dict(source.state_dict())
    old["rng_state"] = _legacy_words(7)
    loaded = []
    for _ in range(2):
        head = GMMPrototypes(8, D, warmup_size=0)
        head.load_state_dict(old, strict=strict)
        loaded.append(head.rng_state.clone())
        assert loaded[-1].dtype == torch.uint8
        head.update(_batches(1, seed=9)[0])
    assert torch.equal(loaded[0], loaded[1])
    other = dict(old, rng_state=_legacy_words(8))
    head = GMMPrototypes(8, D, warmup_size=0)
    head.load_state_dict(other)
    assert not torch.equal(head.rng_state, loaded[0])


def test_a_state_from_another_kind_of_device_seeds_this_one_deterministically():
    source = GMMPrototypes(8, D, warmup_size=0)
    source.update(_batches(1)[0])
    sd = dict(source.state_dict())
    for size in (16, 100):  # (a CUDA generator's size; another device's)
        sd["rng_state"] = torch.arange(size, dtype=torch.uint8)
        states = []
        for _ in range(2):
            head = GMMPrototypes(8, D, warmup_size=0)
            head.load_state_dict(sd)
            states.append(head.rng_state)
            _random.generator(head.device, head.rng_state)  # (a state this device takes)
        assert torch.equal(states[0], states[1])


@pytest.mark.parametrize("bad", [
    torch.zeros(0, dtype=torch.uint8),  # no state at all
    torch.zeros(5, dtype=torch.float32),
    torch.full((_random.LEGACY_WORDS,), -1, dtype=torch.int64),  # not an MT19937 state
])
def test_a_checkpoint_with_a_bad_generator_state_changes_nothing(bad):
    source = GMMPrototypes(8, D, warmup_size=0)
    source.update(_batches(1)[0])
    target = GMMPrototypes(8, D, warmup_size=0)
    target.update(_batches(1, seed=3)[0])
    before = copy.deepcopy(target.state_dict())
    sd = dict(source.state_dict(), rng_state=bad)
    with pytest.raises(RuntimeError, match="rng_state"):
        target.load_state_dict(sd)
    for name, value in target.state_dict().items():
        assert torch.equal(value, before[name]), name


def test_device_random_draws_as_numpy_does():
    """The draws the core asks for, with NumPy's meaning: ranges, shapes, no repeats
    where asked, probabilities respected."""
    rng = _random.DeviceRandom(torch.Generator().manual_seed(0), host=True)
    u = rng.random_sample((3, 4))
    assert u.shape == (3, 4) and u.dtype == np.float64 and ((u >= 0) & (u < 1)).all()
    assert isinstance(rng.random_sample(), float)
    assert sorted(rng.permutation(10)) == list(range(10))
    assert sorted(rng.permutation(np.array([5, 7, 9]))) == [5, 7, 9]
    picked = rng.choice(50, size=20, replace=False)
    assert len(set(picked.tolist())) == 20 and picked.max() < 50
    assert set(rng.choice(np.array([3, 4]), size=30).tolist()) <= {3, 4}
    p = np.zeros(6)
    p[2] = 1.0
    assert (rng.choice(6, size=8, p=p) == 2).all()
    assert 0 <= rng.randint(4) < 4 and rng.randint(2, 3, size=5).tolist() == [2] * 5
    v = rng.uniform(size=(2, 2))
    assert v.shape == (2, 2) and ((v >= 0) & (v < 1)).all()
    with pytest.raises(ValueError, match="larger sample"):
        rng.choice(3, size=4, replace=False)
    device = _random.DeviceRandom(torch.Generator().manual_seed(0), host=False)
    assert isinstance(device.random_sample(5), torch.Tensor)
    # NumPy's integer types as sizes, as NumPy takes them
    assert rng.random_sample(np.int64(3)).shape == (3,)
    assert rng.choice(5, size=np.int64(2), replace=False).shape == (2,)


@pytest.mark.parametrize("init_params", ["k-means++", "kmeans", "random", "random_from_data"])
def test_every_initialisation_draws_from_the_generator_alike_on_both_cpu_paths(init_params):
    """Each initialisation's draws (``random_sample``, ``choice``, ``uniform``, ``randint``
    for scikit-learn's KMeans) come from the generator: the numba path and the CUDA code
    path on CPU seed the same prototypes, a batch smaller than K (``permutation``) too."""
    heads = []
    for backend in ("numba", "reference"):
        with core.use_backend(backend):
            head = GMMPrototypes(8, D, init_params=init_params, warmup_size=0)
            head.update(_batches(1, B=5)[0])  # fewer rows than prototypes
            head.update(_batches(1, seed=1)[0])
            heads.append(head)
    assert bool(heads[0].seeded.all())
    torch.testing.assert_close(heads[0].means, heads[1].means, rtol=1e-4, atol=1e-5)
    assert torch.equal(heads[0].rng_state, heads[1].rng_state)


def test_draws_on_cpu_makes_the_cuda_code_path_draw_the_cpu_stream():
    """``draws_on_cpu`` (what the CUDA comparisons use): the generic path (the code a CUDA
    tensor runs) then draws a CPU generator's numbers, moved to the data's device; the
    numba path and it seed alike, and the state stays a CPU generator's."""
    with _random.draws_on_cpu():
        heads = []
        for backend in ("numba", "reference"):
            with core.use_backend(backend):
                head = GMMPrototypes(8, D, warmup_size=128)
                for x in _batches(3):
                    head.update(x)
                heads.append(head)
        assert _random.generator(torch.device("cuda"), heads[1].rng_state).device.type == "cpu"
    torch.testing.assert_close(heads[0].means, heads[1].means, rtol=1e-4, atol=1e-5)
    assert torch.equal(heads[0].rng_state, heads[1].rng_state)
    assert not _random._ON_CPU.get()  # (left on exit)
