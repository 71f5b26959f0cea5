"""Per-user token buckets: a flooder is slowed down, everyone else is unaffected."""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass


@dataclass(slots=True)
class _Bucket:
    tokens: float
    stamp: float
    warned: bool = False


class FloodGuard:
    """`check` says whether to handle a message, and whether to warn (once per flood)."""

    def __init__(self, rate: float = 2.0, burst: int = 30, users: int = 100_000) -> None:
        self.rate, self.burst, self.users = rate, burst, users
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def check(self, key: str, now: float | None = None) -> tuple[bool, bool]:
        now = time.monotonic() if now is None else now
        bucket = self._buckets.pop(key, None) or _Bucket(float(self.burst), now)
        self._buckets[key] = bucket
        if len(self._buckets) > self.users:
            self._buckets.popitem(last=False)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.stamp) * self.rate)
        bucket.stamp = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            bucket.warned = False
            return True, False
        warn = not bucket.warned
        bucket.warned = True
        return False, warn
