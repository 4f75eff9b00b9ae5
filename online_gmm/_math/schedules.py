"""Annealing (temperature) and forgetting-rate schedules: plain functions of the step."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from numbers import Real

ANNEAL_SCHEDULES = ("constant", "linear", "cosine", "exponential")


def temperature_at(
    step: int,
    *,
    schedule: str | Callable[[int], float],
    temperature_init: float,
    temperature_final: float,
    anneal_steps: int,
) -> float:
    """The E-step temperature of batch number ``step`` (0-based).

    ``constant`` keeps ``temperature_init`` for ever. The other schedules move from
    ``temperature_init`` at step 0 to ``temperature_final`` at ``anneal_steps`` and hold it
    there; with ``anneal_steps=0`` they start at ``temperature_final``. A callable receives the
    step and returns the temperature.
    """
    if callable(schedule):
        temp = float(schedule(step))
        if not (math.isfinite(temp) and temp > 0):
            raise ValueError(
                f"anneal_schedule returned temperature {temp!r} at step {step}; "
                "it must be a finite number > 0."
            )
        return temp
    t0, t1 = float(temperature_init), float(temperature_final)
    if schedule == "constant":
        return t0
    if anneal_steps <= 0 or step >= anneal_steps:
        return t1
    frac = step / anneal_steps
    if schedule == "linear":
        return t0 + (t1 - t0) * frac
    if schedule == "cosine":
        return t1 + 0.5 * (t0 - t1) * (1.0 + math.cos(math.pi * frac))
    return t0 * (t1 / t0) ** frac  # exponential


def forgetting_rate_at(step: int, rate: float | Callable[[int], float]) -> float:
    """The forgetting rate eta of batch number ``step``; callables are checked for range."""
    eta = float(rate(step)) if callable(rate) else float(rate)
    if not (0.0 <= eta < 1.0):
        raise ValueError(f"forgetting_rate must lie in [0, 1), got {eta!r} at step {step}.")
    return eta


class PowerDecay:
    """Decreasing forgetting rate ``eta_t = eta0 * (1 + t / t0) ** -alpha``.

    With ``alpha`` in (0.5, 1] a stationary stream converges (Robbins-Monro) while early
    mistakes are still forgotten. Picklable, so models that use it can be saved.

    Parameters
    ----------
    eta0 : float
        Rate at step 0, in [0, 1).
    t0 : float
        Steps over which the rate stays near ``eta0``.
    alpha : float
        Decay exponent.

    Examples
    --------
    >>> from online_gmm import PowerDecay
    >>> sched = PowerDecay(0.1, t0=10, alpha=1.0)
    >>> round(sched(0), 3), round(sched(10), 3), round(sched(90), 3)
    (0.1, 0.05, 0.01)
    """

    def __init__(self, eta0: float, t0: float = 10.0, alpha: float = 0.6) -> None:
        if not (isinstance(eta0, Real) and 0 <= eta0 < 1):
            raise ValueError(f"eta0 must lie in [0, 1), got {eta0!r}.")
        if not (isinstance(t0, Real) and t0 > 0):
            raise ValueError(f"t0 must be > 0, got {t0!r}.")
        if not (isinstance(alpha, Real) and alpha > 0):
            raise ValueError(f"alpha must be > 0, got {alpha!r}.")
        self.eta0, self.t0, self.alpha = float(eta0), float(t0), float(alpha)

    def __call__(self, step: int) -> float:
        return self.eta0 * (1.0 + step / self.t0) ** (-self.alpha)

    def __repr__(self) -> str:
        return f"PowerDecay(eta0={self.eta0}, t0={self.t0}, alpha={self.alpha})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PowerDecay) and (self.eta0, self.t0, self.alpha) == (
            other.eta0,
            other.t0,
            other.alpha,
        )

    def __hash__(self) -> int:
        return hash((self.eta0, self.t0, self.alpha))


@dataclass(frozen=True)
class Schedules:
    """The step-dependent hyper-parameters: the E-step temperature and the forgetting rate."""

    anneal_schedule: str | Callable[[int], float] = "exponential"
    temperature_init: float = 1.0
    temperature_final: float = 1.0
    anneal_steps: int = 0
    forgetting_rate: float | Callable[[int], float] = 0.0

    def temperature_at(self, step: int) -> float:
        return temperature_at(
            step, schedule=self.anneal_schedule, temperature_init=self.temperature_init,
            temperature_final=self.temperature_final, anneal_steps=self.anneal_steps,
        )

    def forgetting_rate_at(self, step: int) -> float:
        return forgetting_rate_at(step, self.forgetting_rate)

    def at(self, step: int) -> tuple[float, float]:
        """``(temperature, forgetting rate)`` of step ``step``."""
        return self.temperature_at(step), self.forgetting_rate_at(step)
