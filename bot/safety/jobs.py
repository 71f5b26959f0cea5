"""Timed safety jobs, on the bot's one scheduler (`bot.scheduler`): escalate unacknowledged
cases tier by tier (`bot.safety.escalation`), ask check-ins, purge old data.

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
from datetime import timedelta

from bot.cases.casework import Casework
from bot.conversation.sessions import SessionStore
from bot.safety.checkins import Checkins
from bot.safety.escalation import Escalation
from bot.safety.retention import Cutoffs, Purged, Retention
from bot.scheduler import Scheduler
from bot.storage.database import Database

__all__ = ["FIRST_RUN", "Policy", "SafetyJobs"]

log = logging.getLogger("hrd_bot.jobs")
DAY = 86_400
FIRST_RUN = timedelta(seconds=5)
"""How long after `start` each job first runs (then every minute, or hour for `purge`)."""


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
        self._scheduler: Scheduler | None = None
        self._ids: tuple[str, ...] = ()

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

    def start(self, scheduler: Scheduler) -> None:
        """Add the jobs to `scheduler` (they run once it runs)."""
        minute, hour = timedelta(minutes=1), timedelta(hours=1)
        scheduler.every("escalate", self.escalate, minute, first=FIRST_RUN)
        scheduler.every("purge", self.purge, hour, first=FIRST_RUN)
        ids = ["escalate", "purge"]
        if self._checkins is not None:
            scheduler.every("checkins", self._checkins.tick, minute, first=FIRST_RUN)
            ids.append("checkins")
        self._scheduler, self._ids = scheduler, tuple(ids)

    @property
    def running(self) -> bool:
        """Whether the scheduler runs the jobs (readiness, `bot.health`)."""
        scheduler = self._scheduler
        return scheduler is not None and scheduler.running and all(map(scheduler.has, self._ids))

    def stop(self) -> None:
        """Take the jobs off the scheduler (a run in progress ends on its own)."""
        if self._scheduler is not None:
            for job_id in self._ids:
                self._scheduler.remove(job_id)
            self._scheduler, self._ids = None, ()
