"""Retry policy and its backoff schedule (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .checks import count, is_number
from .errors import DefinitionError

Backoff = Literal["exponential", "linear", "constant"]


@dataclass(frozen=True, slots=True)
class Retry:
    """How often a failed step is tried again, and how long to wait between tries.

    ``max_attempts`` counts every attempt, the first included. The delay before
    attempt ``n + 1`` (after ``n`` failures) is ``base * 2**(n-1)`` for
    exponential, ``base * n`` for linear and ``base`` for constant, capped at
    ``max_delay``. ``jitter`` of True spreads each delay uniformly over
    ``[delay/2, delay]``; a float ``f`` in (0, 1] over ``[delay*(1-f), delay]``.
    """

    max_attempts: int = 3
    backoff: Backoff = "exponential"
    base: float = 1.0
    max_delay: float = 300.0
    jitter: bool | float = False

    def __post_init__(self) -> None:
        count(self.max_attempts, "Retry.max_attempts", error=DefinitionError)
        if self.backoff not in ("exponential", "linear", "constant"):
            raise DefinitionError(
                f"Retry.backoff must be 'exponential', 'linear' or 'constant', got {self.backoff!r}"
            )
        if not is_number(self.base) or not is_number(self.max_delay):
            raise DefinitionError("Retry.base and Retry.max_delay must be numbers of seconds")
        if self.base < 0 or self.max_delay < 0:
            raise DefinitionError("Retry.base and Retry.max_delay must not be negative")
        if not self.max_delay <= 10**12 or not self.base <= 10**12:  # NaN and inf too
            raise DefinitionError("Retry.base and Retry.max_delay must be at most 1e12 seconds")
        if not isinstance(self.jitter, bool) and not 0 < float(self.jitter) <= 1:
            raise DefinitionError(
                f"Retry.jitter must be a bool or a float in (0, 1], got {self.jitter!r}"
            )

    def delay_seconds(self, failures: int, rand: float = 1.0) -> float:
        """Seconds to wait after ``failures`` failed attempts; ``rand`` in [0, 1)."""
        n = max(1, failures)
        if self.backoff == "exponential":
            delay = self.base * (2 ** (n - 1))
        elif self.backoff == "linear":
            delay = self.base * n
        else:
            delay = self.base
        delay = min(delay, self.max_delay)
        spread = (
            0.5 if self.jitter is True else (0.0 if self.jitter is False else float(self.jitter))
        )
        return float(delay * (1 - spread * rand)) if spread else float(delay)


NO_RETRY = Retry(max_attempts=1)
