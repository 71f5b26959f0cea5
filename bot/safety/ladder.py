"""When an unacknowledged case climbs to the next tier, per urgency (pure arithmetic).

Tier 1, the staff rooms, hears of a case at submission. A ladder gives the minutes
after submission at which tier 2 (on-call) and tier 3 (leads) are told, and optionally
how often the last tier is told again after that. Written as in the settings:
`"15,30,every 30"` (critical by default), `"60,90"` (high), `"480"` (normal), `"off"`
(never escalated).

Steps are numbered from 0: step i < len(minutes) reaches tier i + 2; each later step is
a repeat of the last tier, `every` minutes after the one before.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

__all__ = ["DEFAULTS", "MAX_TIER", "Ladder", "Ladders"]

MAX_TIER = 3
MAX_MINUTES = 30 * 24 * 60


@dataclass(frozen=True, slots=True)
class Ladder:
    """Minutes after submission for tiers 2 and 3, and the repeat interval (0: none)."""

    minutes: tuple[int, ...] = ()
    every: int = 0

    @classmethod
    def parse(cls, text: str) -> Ladder:
        """`"15,30,every 30"` or `"off"`; raises ValueError with a message fit for the
        operator."""
        if text.strip().lower() == "off":
            return cls()
        parts = [p.strip() for p in text.split(",") if p.strip()]
        every = 0
        if parts and parts[-1].lower().startswith("every"):
            every = _minutes(parts.pop()[5:].strip(), "the repeat interval")
            if not parts:
                raise ValueError("'every N' needs the minutes of a tier before it")
        minutes = tuple(_minutes(p, "a tier's minutes") for p in parts)
        if len(minutes) > MAX_TIER - 1:
            raise ValueError(f"at most {MAX_TIER - 1} tiers after the staff rooms, got {text!r}")
        if any(b <= a for a, b in itertools.pairwise(minutes)):
            raise ValueError(f"each tier must come later than the one before, got {text!r}")
        return cls(minutes, every)

    def step(self, index: int) -> tuple[int, int] | None:
        """(tier, minutes after submission) of step `index`, or None past the last one."""
        if index < len(self.minutes):
            return index + 2, self.minutes[index]
        if not self.every or not self.minutes:
            return None
        repeat = index - len(self.minutes) + 1
        return len(self.minutes) + 1, self.minutes[-1] + repeat * self.every

    def tier(self, index: int) -> int:
        """The tier step `index` reaches (repeats reach the last one)."""
        return min(index + 2, len(self.minutes) + 1)

    def due(self, first: int, elapsed_s: int) -> list[int]:
        """The steps from `first` whose time has come. Each tier is reached once even
        after a long stop: of the last tier and its repeats missed meanwhile only the
        latest is taken (it reaches that tier)."""
        found: list[int] = []
        index = first
        while True:
            if self.every and self.minutes and index >= len(self.minutes) - 1:
                index = max(index, self._last_repeat(elapsed_s))
            step = self.step(index)
            if step is None or step[1] * 60 > elapsed_s:
                return found
            found.append(index)
            index += 1

    def _last_repeat(self, elapsed_s: int) -> int:
        """The index of the latest repeat due by `elapsed_s` (tiers all passed)."""
        since = elapsed_s // 60 - self.minutes[-1]
        return len(self.minutes) - 1 + since // self.every


@dataclass(frozen=True, slots=True)
class Ladders:
    """One ladder per urgency; a case without an urgency climbs as `normal`."""

    critical: Ladder
    high: Ladder
    normal: Ladder

    def of(self, urgency: str | None) -> Ladder:
        return {"critical": self.critical, "high": self.high}.get(urgency or "", self.normal)


def _minutes(text: str, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{what} must be a whole number of minutes, got {text!r}") from None
    if not 0 < value <= MAX_MINUTES:
        raise ValueError(f"{what} must be between 1 and {MAX_MINUTES} minutes, got {value}")
    return value


DEFAULTS = Ladders(
    critical=Ladder((15, 30), every=30),
    high=Ladder((60, 90)),
    normal=Ladder((480,)),
)
"""After the helpline runbook: critical at once, on-call at 15 min, leads at 30 and every
30 after; high 60 / 90; normal within 8 hours."""
