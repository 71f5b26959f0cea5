"""What the App counts for metrics: totals by platform, never by person or chat."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

__all__ = ["Counts"]


@dataclass(slots=True)
class Counts:
    """Since the start. `handled` is keyed by platform name (a transport's fixed name),
    the only label a message may add: a per-person or per-chat series would let whoever
    reads the metrics follow one person's activity."""

    handled: Counter[str] = field(default_factory=Counter)
    flood_drops: int = 0
