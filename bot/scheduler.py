"""The one timer of the bot: every timed job (escalation, check-ins, retention, each
transport's sweeper) is an interval job on this scheduler, added and removed by id.

One scheduler, not one per part: one place starts and stops timed work (`hrd-bot run`
through the App), and readiness (`bot.health`) watches that one. APScheduler's
`AsyncIOScheduler` runs the jobs on the event loop; a job added before `start` waits
for it, and a job that comes late (a busy loop, a suspended machine) still runs, once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.asyncio import AsyncIOScheduler

__all__ = ["Job", "Scheduler"]

Job = Callable[[], Awaitable[object]]


class Scheduler:
    """Interval jobs by id on the running event loop."""

    def __init__(self) -> None:
        self._scheduler = AsyncIOScheduler(timezone=UTC)
        self._running = False

    def every(
        self, job_id: str, job: Job, interval: timedelta, *, first: timedelta = timedelta(0)
    ) -> None:
        """Run `job` every `interval`, the first time `first` from now; one run at a time,
        missed runs folded into one. A job of the same id is replaced."""
        self._scheduler.add_job(
            job,
            "interval",
            id=job_id,
            seconds=interval.total_seconds(),
            next_run_time=datetime.now(UTC) + first,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=None,
            replace_existing=True,
        )

    def remove(self, job_id: str) -> None:
        """Stop running the job `job_id`; nothing if there is none."""
        with contextlib.suppress(JobLookupError):
            self._scheduler.remove_job(job_id)

    def has(self, job_id: str) -> bool:
        return self._scheduler.get_job(job_id) is not None

    def start(self) -> None:
        """Start the timer on the running event loop (jobs added before now wait for it)."""
        if not self._running:
            self._scheduler.start()
            self._running = True

    def shutdown(self) -> None:
        """Stop the timer; running jobs are not waited for (their owners stop them)."""
        if self._running:
            self._running = False
            self._scheduler.shutdown(wait=False)

    @property
    def running(self) -> bool:
        """Whether the timer runs: False from `shutdown` on, though APScheduler stops on
        the loop's next turn."""
        return self._running
