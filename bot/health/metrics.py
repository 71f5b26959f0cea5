"""Prometheus text format (0.0.4), written by hand: a dozen series do not need a library.

Every label value comes from a closed list the code knows (platform names, case
states, delivery reasons): nothing a user, a chat or a case can name reaches a label.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from bot.delivery.outcome import Reason
from bot.health.counts import Counts
from bot.health.shared import Shared
from bot.model import Transport
from bot.storage.database import Connection, Database

__all__ = ["CASE_STATES", "CONTENT_TYPE", "Figures", "Metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
CASE_STATES = ("draft", "new", "open", "acknowledged", "assigned", "closed")
"""`open`: a case submitted before drafts had a state of their own. Any other: `other`."""
OTHER = "other"
Sample = tuple[Mapping[str, str], int]


@dataclass(frozen=True, slots=True)
class Figures:
    """What the database holds now: cases by state, messages waiting in the outbox."""

    cases: Mapping[str, int]
    outbox_depth: int


def _figures(conn: Connection) -> Figures:
    cases: Counter[str] = Counter({state: 0 for state in CASE_STATES})
    for state, count in conn.execute("SELECT state, count(*) FROM cases GROUP BY state"):
        cases[state if state in CASE_STATES else OTHER] += int(count)
    queued = conn.execute("SELECT count(*) FROM outbox WHERE state = 'queued'").fetchone()
    return Figures(cases, int(queued[0]))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _family(name: str, kind: str, about: str, samples: Iterable[Sample]) -> list[str]:
    lines = [f"# HELP {name} {about}", f"# TYPE {name} {kind}"]
    for labels, value in samples:
        pairs = ",".join(f'{key}="{_escape(v)}"' for key, v in labels.items())
        lines.append(f"{name}{{{pairs}}} {value:d}" if pairs else f"{name} {value:d}")
    return lines


class Metrics:
    """Reads the in-memory counters and the database's figures (in its worker thread)."""

    def __init__(
        self,
        counts: Counts,
        failed: Mapping[Reason, int],
        transports: Mapping[str, Transport],
        db: Database,
    ) -> None:
        self._counts = counts
        self._failed = failed
        self._transports = transports
        self._figures = Shared(lambda: db.run(_figures))

    async def render(self) -> str:
        figures = await self._figures()
        platforms = sorted(set(self._transports) | set(self._counts.handled))
        handled = [({"platform": p}, self._counts.handled[p]) for p in platforms]
        failed = [({"reason": r.value}, self._failed.get(r, 0)) for r in Reason]
        states = [({"state": s}, n) for s, n in sorted(figures.cases.items())]
        up = [({"transport": n}, int(t.connected)) for n, t in sorted(self._transports.items())]
        lines = [
            *_family(
                "hrd_bot_messages_handled_total",
                "counter",
                "Messages taken in (not dropped), by platform.",
                handled,
            ),
            *_family(
                "hrd_bot_flood_drops_total",
                "counter",
                "Messages dropped by the flood limits.",
                [({}, self._counts.flood_drops)],
            ),
            *_family(
                "hrd_bot_deliveries_failed_total",
                "counter",
                "Messages the bot started that were not delivered, by reason.",
                failed,
            ),
            *_family("hrd_bot_cases", "gauge", "Cases in the database, by state.", states),
            *_family(
                "hrd_bot_outbox_depth",
                "gauge",
                "Messages waiting in the outbox.",
                [({}, figures.outbox_depth)],
            ),
            *_family(
                "hrd_bot_transport_connected",
                "gauge",
                "1 when the transport can take and send messages.",
                up,
            ),
        ]
        return "\n".join(lines) + "\n"
