"""Per-user token buckets: a flooder is slowed down, everyone else is unaffected.

A flooder is told once per burst, not once per refilled token: a message let through
in the middle of a flood does not end it. The burst ends when the sender has been
quiet (sent nothing at all) for `quiet` seconds; the next drop after that warns again.

An SOS (`handlers.sos.urgent`, which the App asks: `/sos`, its buttons, a shared location)
is never dropped for the sender's ordinary messages: when their ordinary bucket is empty (`check`
refused it) it draws on a bucket of its own (`check_sos`), so someone who flooded the
bot a moment ago, or whose account a flooder uses, can still call for help. So does
everything they send while an SOS screen is open (`in_sos`, set from the answers:
their words to the team are typed there). That bucket is finite too (`sos_burst`,
refilled at `sos_rate`), so SOS presses cannot be used to flood in turn; a real SOS
is a handful of messages.

A dropped message must cost the bot nothing: no handler, no session, no chat-trail
row. `App.handle` answers one with `Dropped` (the notice, or nothing) so a transport
can tell it apart from an answered message and keep no trace of it.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from bot.model import Reply

__all__ = ["Dropped", "FloodGuard"]
SOS_SCREEN = 3600.0


class Dropped(tuple[Reply, ...]):
    """The replies to a message the flood guard dropped: its burst's one notice, or none."""

    __slots__ = ()


@dataclass(slots=True)
class _Bucket:
    tokens: float
    stamp: float
    warned: bool = False


class FloodGuard:
    """`check` says whether to handle a message, and whether to warn (once per burst)."""

    def __init__(
        self,
        rate: float = 2.0,
        burst: int = 30,
        users: int = 100_000,
        quiet: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        sos_rate: float = 0.2,
        sos_burst: int = 20,
    ) -> None:
        self.rate, self.burst, self.users, self.quiet = rate, burst, users, quiet
        self.sos_rate, self.sos_burst = sos_rate, sos_burst
        self._clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._sos: OrderedDict[str, float] = OrderedDict()

    def check(self, key: str, now: float | None = None) -> tuple[bool, bool]:
        return self._take(key, self.rate, self.burst, now)

    def check_sos(self, key: str, now: float | None = None) -> tuple[bool, bool]:
        """For a message that may be an SOS and that `check` refused: the SOS bucket."""
        return self._take(f"sos\x00{key}", self.sos_rate, self.sos_burst, now)

    def in_sos(self, key: str) -> bool:
        """Whether the sender's last answer was an SOS screen (within `SOS_SCREEN` seconds)."""
        since = self._sos.get(key)
        return since is not None and self._clock() - since < SOS_SCREEN

    def note_sos(self, key: str, open_: bool) -> None:
        """After each answer: is the sender now on an SOS screen?"""
        self._sos.pop(key, None)
        if open_:
            self._sos[key] = self._clock()
            if len(self._sos) > self.users:
                self._sos.popitem(last=False)

    def forget(self, key: str) -> None:
        """Another worker served this sender meanwhile (`bot.cluster`): start afresh."""
        self._buckets.pop(key, None)
        self._buckets.pop(f"sos\x00{key}", None)
        self._sos.pop(key, None)

    def _take(self, key: str, rate: float, burst: int, now: float | None) -> tuple[bool, bool]:
        now = self._clock() if now is None else now
        bucket = self._buckets.pop(key, None) or _Bucket(float(burst), now)
        self._buckets[key] = bucket
        if len(self._buckets) > self.users:
            self._buckets.popitem(last=False)
        if now - bucket.stamp >= self.quiet:
            bucket.warned = False
        bucket.tokens = min(burst, bucket.tokens + (now - bucket.stamp) * rate)
        bucket.stamp = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return True, False
        warn = not bucket.warned
        bucket.warned = True
        return False, warn
