"""The App's one timer, with every job run only by the leader (`bot.cluster.leader`).

Every timed job of the bot is the leader's: the safety jobs (check-ins, escalation,
retention) must fire once across the workers, and each transport's sweeper deletes
expired messages from rows every worker shares. Each worker still has them on its timer
(so readiness looks the same everywhere); a follower's run does nothing. A worker that
is deposed starts no new run; one already running finishes, as after a stop.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from bot.scheduler import Job, Scheduler

__all__ = ["LeaderScheduler"]


class LeaderScheduler(Scheduler):
    """A `Scheduler` whose jobs run only while `leads()` says this worker leads."""

    def __init__(self, leads: Callable[[], bool]) -> None:
        super().__init__()
        self._leads = leads
        self.skipped = 0
        """Runs a follower skipped (tests, metrics)."""

    def every(
        self, job_id: str, job: Job, interval: timedelta, *, first: timedelta = timedelta(0)
    ) -> None:
        async def if_leading() -> object:
            if not self._leads():
                self.skipped += 1
                return None
            return await job()

        super().every(job_id, if_leading, interval, first=first)
