"""The bridge's random numbers: a ``torch.Generator`` on the module's device, its state a
buffer (``rng_state``, the generator's own bytes), exact through ``state_dict``.

The core's seeding (:mod:`online_gmm._em.seeding`, the warm-up's restarts) asks for NumPy
``RandomState`` draws; :class:`DeviceRandom` makes them from the generator: the uniforms of
k-means++ and of the restarts (``random_sample``, the draws that repeat) on the device, in
the device's arrays, so that no draw crosses from the host; the rare others (``choice``,
``permutation``, ``uniform``, ``randint``: degenerate seedings, the warm-up's row sample,
the ``"random"`` and ``"kmeans"`` initialisations) drawn there too and handed to the host
code that asks for them.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
from collections.abc import Iterator
from numbers import Integral
from typing import Any

import numpy as np
import torch
from torch import Tensor

#: The legacy state (a NumPy ``RandomState``'s MT19937 words, as int64), which checkpoints
#: made before the generator hold: 624 key words, position, has_gauss, cached gaussian.
LEGACY_WORDS = 624 + 3


class DeviceRandom:
    """NumPy ``RandomState``'s draws, as the core's seeding makes them, from a
    ``torch.Generator``. ``host``: the numba backend's NumPy rows (every draw as NumPy);
    otherwise ``random_sample`` gives arrays of the generator's device."""

    def __init__(self, generator: torch.Generator, host: bool) -> None:
        self.generator = generator
        self.host = host

    def _shape(self, size: Any) -> tuple[int, ...]:
        if size is None:
            return ()
        return (int(size),) if isinstance(size, Integral) else tuple(int(s) for s in size)

    def _rand(self, size: Any) -> Tensor:
        return torch.rand(self._shape(size), generator=self.generator, dtype=torch.float64,
                          device=self.generator.device)

    @staticmethod
    def _to_host(t: Tensor, size: Any) -> Any:
        a = t.cpu().numpy()
        return a.item() if size is None else a

    def random_sample(self, size: Any = None) -> Any:
        """Uniforms in [0, 1), float64: on the device unless :attr:`host`."""
        t = self._rand(size)
        return self._to_host(t, size) if self.host or size is None else t

    def uniform(self, low: float = 0.0, high: float = 1.0, size: Any = None) -> Any:
        """Host uniforms in [low, high)."""
        return low + (high - low) * self._to_host(self._rand(size), size)

    def randint(self, low: int, high: int | None = None, size: Any = None) -> Any:
        """Host integers in [low, high) ([0, low) without ``high``)."""
        low, high = (0, low) if high is None else (low, high)
        t = torch.randint(low, high, self._shape(size), generator=self.generator,
                          device=self.generator.device)
        return self._to_host(t, size)

    def permutation(self, x: Any) -> np.ndarray:
        """A host permutation of ``range(x)`` or of the host array ``x``."""
        n = x if isinstance(x, (int, np.integer)) else len(x)
        order = torch.randperm(int(n), generator=self.generator,
                               device=self.generator.device).cpu().numpy()
        return order if isinstance(x, (int, np.integer)) else np.asarray(x)[order]

    def choice(self, a: Any, size: Any = None, replace: bool = True, p: Any = None) -> Any:
        """Host draws from ``range(a)`` or the host array ``a``, as NumPy's ``choice``
        (``p``: host probabilities)."""
        n = int(a) if isinstance(a, (int, np.integer)) else len(a)
        m = int(np.prod(self._shape(size)))
        dev = self.generator.device
        if p is not None:
            probs = torch.as_tensor(np.asarray(p, dtype=np.float64), device=dev)
            idx = torch.multinomial(probs, m, replacement=replace, generator=self.generator)
        elif replace:
            idx = torch.randint(0, n, (m,), generator=self.generator, device=dev)
        else:
            if m > n:
                raise ValueError("Cannot take a larger sample than population when "
                                 "replace=False")
            idx = torch.randperm(n, generator=self.generator, device=dev)[:m]
        idx = idx.cpu().numpy().reshape(self._shape(size))
        out = idx if isinstance(a, (int, np.integer)) else np.asarray(a)[idx]
        return out.item() if size is None else out

    def get_state(self) -> Tensor:
        return self.generator.get_state()

    def set_state(self, state: Tensor) -> None:
        self.generator.set_state(state)


def generator_state(device: torch.device, seed: int | None) -> Tensor:
    """The state (host bytes) of a new generator on ``device``, seeded with ``seed`` (None:
    from the operating system's entropy)."""
    g = torch.Generator(device=_where(device))
    if seed is None:
        g.seed()
    else:
        g.manual_seed(int(seed))
    return g.get_state()


_CPU = torch.device("cpu")
_ON_CPU: contextvars.ContextVar[bool] = contextvars.ContextVar("draws_on_cpu", default=False)


@contextlib.contextmanager
def draws_on_cpu() -> Iterator[None]:
    """Within it, every module's generator is a CPU one (its state a CPU generator's),
    whose draws are moved to the data's device: a CUDA module then draws the same numbers
    as a CPU module of the same seed (a CUDA generator draws another stream). For
    comparing the two paths (``test_cuda_path_matches_cpu_path``, ``benchmarks.gpu``'s
    agreement section); enter it before the modules are made or moved."""
    token = _ON_CPU.set(True)
    try:
        yield
    finally:
        _ON_CPU.reset(token)


def _where(device: torch.device) -> torch.device:
    return _CPU if _ON_CPU.get() else device


def generator(device: torch.device, state: Tensor) -> torch.Generator:
    """A generator on ``device`` in ``state`` (host bytes, :func:`state_for`'s)."""
    g = torch.Generator(device=_where(device))
    g.set_state(state)
    return g


def state_for(device: torch.device, value: Tensor) -> Tensor:
    """``value`` (an ``rng_state`` buffer, read to the host) as the state of a generator
    on ``device``: itself where it is one; another kind of device's generator state (a
    move, a checkpoint of another device: bytes this device's generator does not take)
    seeds one from a hash of its bytes, and a legacy ``RandomState`` state from its next
    draw: deterministic both. Raises ``ValueError`` for anything else (not a non-empty
    1-d uint8 tensor, nor a valid legacy state)."""
    device = _where(device)
    value = value.detach().cpu()
    if value.dtype == torch.int64 and value.shape == (LEGACY_WORDS,):
        rs = legacy_random_state(value)
        return generator_state(device, int(rs.randint(2**62)))
    if value.dtype != torch.uint8 or value.ndim != 1 or value.numel() == 0:
        raise ValueError(f"{value.dtype} {tuple(value.shape)}, not a generator's state")
    try:
        generator(device, value)
        return value.clone()
    except RuntimeError:  # (another kind of device's)
        digest = hashlib.sha256(value.numpy().tobytes()).digest()
        return generator_state(device, int.from_bytes(digest[:8], "little") >> 1)


def legacy_random_state(value: Tensor) -> np.random.RandomState:
    """The NumPy ``RandomState`` of a legacy ``rng_state`` buffer (``ValueError`` if the
    words are not an MT19937 state)."""
    a = value.detach().cpu().numpy().astype(np.int64)
    key, pos, has_gauss = a[:624], int(a[624]), int(a[625])
    if ((key < 0) | (key >= 2**32)).any() or not (0 <= pos <= 624 and has_gauss in (0, 1)):
        raise ValueError("not a MT19937 state")
    rs = np.random.RandomState()
    gauss = float(np.int64(a[626]).view(np.float64))
    rs.set_state(("MT19937", key.astype(np.uint32), pos, has_gauss, gauss))
    return rs
