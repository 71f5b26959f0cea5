"""Timed safety jobs (APScheduler): escalate unacknowledged cases tier by tier
(`bot.safety.escalation`), ask check-ins, purge old data.

Every job reads what it needs from the database, so a restart loses nothing: the first
run after start-up catches up. Retention (`bot.safety.retention`) is a real DELETE in short
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

from bot.cases.casework import Casework
from bot.conversation.sessions import SessionStore
from bot.safety.checkins import Checkins
from bot.safety.escalation import Escalation
from bot.safety.retention import Cutoffs, Purged, Retention
from bot.storage.database import Database

log = logging.getLogger("hrd_bot.jobs")
DAY = 86_400


@dataclass(frozen=True, slots=True)
class Policy:
    """How long data is kept (escalation deadlines are `bot.safety.ladder`'s)."""

    closed_days: int = 90
    draft_days: int = 7
    idle_session_days: int = 180


class SafetyJobs:
    """Runs `escalate` and check-ins every minute and `purge` every hour."""

    def __init__(
        self,
        db: Database,
        *,
        policy: Policy | None = None,
        clock: Callable[[], float] = time.time,
        casework: Casework | None = None,
        sessions: SessionStore | None = None,
        checkins: Checkins | None = None,
        escalation: Escalation | None = None,
    ) -> None:
        self._db = db
        self._casework, self._sessions = casework, sessions
        self._checkins = checkins
        self.escalation = escalation
        exports = None if casework is None else casework.exports
        self.retention = Retention(db, on_batch=self._forget_copies, exports=exports)
        self.policy = policy or Policy()
        self._clock = clock
        self._scheduler: AsyncIOScheduler | None = None

    async def escalate(self) -> int:
        """Take the escalation steps whose time has come (see `bot.safety.escalation`)."""
        return 0 if self.escalation is None else await self.escalation.tick()

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
        every_minute = {"minutes": 1, "next_run_time": soon, "misfire_grace_time": None}
        scheduler.add_job(self.escalate, "interval", id="escalate", **every_minute)
        scheduler.add_job(self.purge, "interval", hours=1, next_run_time=soon, id="purge")
        if self._checkins is not None:
            tick = self._checkins.tick
            scheduler.add_job(tick, "interval", id="checkins", **every_minute)
        scheduler.start()
        self._scheduler = scheduler

    @property
    def running(self) -> bool:
        """Whether the scheduler runs the jobs (readiness, `bot.health`)."""
        return self._scheduler is not None and bool(self._scheduler.running)

    def stop(self) -> None:
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None
