"""Request budgets for outside APIs: one per system, shared by everything that calls it.

Inside a Prefect deployment the budget is a Prefect global concurrency limit with slot decay
(`prefect gcl create stripe-api --limit 20 --slot-decay-per-second 20`), so parallel flows share
it; `strict=True` because a missing limit would otherwise silently limit nothing. Outside one
(CLI runs, tests) an in-process token bucket keeps the same rate.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol


class Limiter(Protocol):
    """Blocks until one more request fits in the budget."""

    def acquire(self) -> None: ...


class TokenBucket:
    """At most `rate` requests per second on average, bursts up to `burst`."""

    def __init__(
        self,
        rate: float,
        burst: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.capacity = float(burst or max(1, int(rate)))
        self.tokens = self.capacity
        self.clock = clock
        self.sleep = sleep
        self.updated = clock()
        self.lock = threading.Lock()

    def acquire(self) -> None:
        with self.lock:
            now = self.clock()
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
            self.updated = now
            if self.tokens < 1:
                wait = (1 - self.tokens) / self.rate
                self.sleep(wait)
                self.updated = self.clock()
                self.tokens = 0.0
            else:
                self.tokens -= 1


class PrefectRateLimit:
    """A Prefect global concurrency limit used as a rate limit (must exist: strict)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def acquire(self) -> None:
        from prefect.concurrency.sync import rate_limit

        rate_limit(self.name, occupy=1, strict=True)


def limiter_for(rate: float, prefect_limit: str | None) -> Limiter:
    """The Prefect limit when one is named, else a local token bucket at `rate`."""
    return PrefectRateLimit(prefect_limit) if prefect_limit else TokenBucket(rate)
