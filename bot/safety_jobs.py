"""Timed safety jobs (APScheduler): remind staff of unacknowledged cases, ask check-ins,
purge old data.

Both jobs read everything they need from the database, so a restart loses nothing:
the first run after start-up catches up. Retention is a real DELETE, then a WAL
checkpoint and VACUUM, so purged rows do not linger in free pages or the journal.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.checkins import Checkins
from bot.content.library import Library
from bot.model import ChatRef, Reply
from bot.storage.database import Connection, Database

log = logging.getLogger("hrd_bot.jobs")
Deliver = Callable[[ChatRef, Reply], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Policy:
    """How long a new case may wait for an acknowledgement, and how long data is kept."""

    ack_minutes: tuple[tuple[str, int], ...] = (("critical", 15), ("high", 60), ("normal", 480))
    closed_days: int = 90
    draft_days: int = 7
    idle_session_days: int = 180


def _overdue(conn: Connection, now: int, policy: Policy) -> list[tuple[str, str, int]]:
    limits = dict(policy.ack_minutes)
    rows = conn.execute(
        "SELECT id, COALESCE(urgency, 'normal'), submitted_at FROM cases "
        "WHERE state = 'new' AND reminded_at IS NULL AND submitted_at IS NOT NULL"
    ).fetchall()
    due = [
        (str(case), str(urgency), int(at))
        for case, urgency, at in rows
        if now - at >= 60 * limits.get(urgency, limits["normal"])
    ]
    conn.executemany("UPDATE cases SET reminded_at = ? WHERE id = ?", [(now, c) for c, *_ in due])
    return due


def _purge(conn: Connection, now: int, policy: Policy) -> int:
    day = 86_400
    gone = conn.execute(
        "SELECT id FROM cases WHERE (state = 'closed' AND updated_at < ?) "
        "OR (state = 'draft' AND updated_at < ?)",
        (now - policy.closed_days * day, now - policy.draft_days * day),
    ).fetchall()
    for (case,) in gone:
        conn.execute(
            "UPDATE sessions SET state = json_remove(state, '$.report') "
            "WHERE json_extract(state, '$.report.case') = ?",
            (case,),
        )
        conn.execute("DELETE FROM cases WHERE id = ?", (case,))
    idle = conn.execute(
        "DELETE FROM sessions WHERE updated_at < ?", (now - policy.idle_session_days * day,)
    )
    return len(gone) + int(idle.rowcount)


def _compact(conn: Connection) -> None:
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("VACUUM")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


class SafetyJobs:
    """Runs `remind` every minute and `purge` every hour on an AsyncIOScheduler."""

    def __init__(
        self,
        db: Database,
        library: Callable[[], Library],
        deliver: Deliver,
        rooms: tuple[ChatRef, ...],
        *,
        policy: Policy | None = None,
        clock: Callable[[], float] = time.time,
        purged: Callable[[], None] = lambda: None,
        checkins: Checkins | None = None,
    ) -> None:
        self._db, self._library, self._deliver, self._rooms = db, library, deliver, rooms
        self._purged = purged
        self._checkins = checkins
        self.policy = policy or Policy()
        self._clock = clock
        self._scheduler: AsyncIOScheduler | None = None

    async def remind(self) -> int:
        """Tell staff rooms and on-call about cases nobody acknowledged in time (once each)."""
        now = int(self._clock())
        due = await self._db.transaction(lambda conn: _overdue(conn, now, self.policy))
        t = self._library().translator("en")
        for case, urgency, submitted in due:
            minutes = (now - submitted) // 60
            text = t("staff.unacknowledged", case=case, urgency=urgency, minutes=minutes)
            for room in self._rooms:
                await self._deliver(room, Reply(text))
        if due:
            log.warning("%d cases still unacknowledged; staff reminded", len(due))
        return len(due)

    async def purge(self) -> int:
        """Delete closed and abandoned cases and idle sessions past their time; compact."""
        now = int(self._clock())
        removed = await self._db.transaction(lambda conn: _purge(conn, now, self.policy))
        if removed:
            self._purged()
            await self._db.run(_compact)
            log.info("retention: %d records purged", removed)
        return removed

    def start(self) -> None:
        scheduler = AsyncIOScheduler(timezone=UTC)
        soon = datetime.now(UTC) + timedelta(seconds=5)
        scheduler.add_job(self.remind, "interval", minutes=1, next_run_time=soon, id="remind")
        scheduler.add_job(self.purge, "interval", hours=1, next_run_time=soon, id="purge")
        if self._checkins is not None:
            tick = self._checkins.tick
            scheduler.add_job(tick, "interval", minutes=1, next_run_time=soon, id="checkins")
        scheduler.start()
        self._scheduler = scheduler

    def stop(self) -> None:
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None
