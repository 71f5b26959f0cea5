"""How long and how often the outbox tries again: exponential backoff with jitter."""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["RetryPolicy"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """`window` bounds how long a message is tried before it is reported undelivered;
    `attempt` bounds one try (a platform that hangs counts as a failed try)."""

    window: float = 12 * 3600.0
    first: float = 2.0
    cap: float = 300.0
    attempt: float = 60.0

    def delay(self, tries: int, retry_after: float | None = None) -> float:
        """Full jitter over the doubling delay, so restarted bots and rooms do not retry in
        step; never sooner than the platform asked."""
        backoff = min(self.cap, self.first * 2 ** min(tries, 30))
        wait = random.uniform(backoff / 2, backoff)  # noqa: S311 - jitter, not a secret
        return max(wait, retry_after or 0.0)
