"""Timed safety jobs (APScheduler): remind staff of unacknowledged cases, ask check-ins,
purge old data.

Every job reads what it needs from the database, so a restart loses nothing: the first
run after start-up catches up. Retention (`bot.retention`) is a real DELETE in short
batches that never hold messages up, takes every copy with it (cached sessions, drafts
in memory, exports), then checkpoints the WAL and vacuums.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.casework import Casework
from bot.checkins import Checkins
from bot.content.library import Library
from bot.delivery.outbox import Deliver
from bot.model import ChatRef, Reply
from bot.retention import Cutoffs, Purged, Retention
from bot.sessions import SessionStore
from bot.storage.database import Connection, Database

log = logging.getLogger("hrd_bot.jobs")
DAY = 86_400


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
        casework: Casework | None = None,
        sessions: SessionStore | None = None,
        checkins: Checkins | None = None,
    ) -> None:
        self._db, self._library, self._deliver, self._rooms = db, library, deliver, rooms
        self._casework, self._sessions = casework, sessions
        self._checkins = checkins
        exports = None if casework is None else casework.exports
        self.retention = Retention(db, on_batch=self._forget_copies, exports=exports)
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
                await self._deliver(room, Reply(text), kind="reminder", case_id=case)
        if due:
            log.warning("%d cases still unacknowledged; staff reminded", len(due))
        return len(due)

    async def purge(self) -> int:
        """Delete closed and abandoned cases and idle sessions past their time; compact."""
        now, policy = int(self._clock()), self.policy
        cutoffs = Cutoffs(
            closed_before=now - policy.closed_days * DAY,
            drafts_before=now - policy.draft_days * DAY,
            idle_before=now - policy.idle_session_days * DAY,
        )
        report = await self.retention.purge(cutoffs)
        if report.removed or report.exports:
            log.info(
                "retention: %d records and %d exports purged in %d batches (longest %.1f ms)",
                report.removed,
                report.exports,
                report.batches,
                report.longest_s * 1000,
            )
        return report.removed

    def _forget_copies(self, purged: Purged) -> None:
        if self._casework is not None:
            self._casework.forget_drafts(purged.cases)
        if self._sessions is not None:
            self._sessions.dropped(purged.sessions)

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
