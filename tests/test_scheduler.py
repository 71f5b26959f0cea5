"""One scheduler for every timed job (issue 14): the safety jobs and each transport's
sweeper are jobs by id on the App's scheduler, and readiness follows that one."""

from __future__ import annotations

import ast
import asyncio
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from bot.app import App
from bot.content.library import Library
from bot.conversation.chat_trail import ChatTrail
from bot.conversation.sweeper import Sweeper
from bot.safety.jobs import SafetyJobs
from bot.scheduler import Scheduler
from bot.storage import Database
from tests.conftest import TEST_KEY
from tests.test_architecture import ROOT, imports

HOUR = timedelta(hours=1)


@pytest.fixture
async def app(tmp_path: Path, library: Library) -> AsyncIterator[App]:
    db = await Database.open(tmp_path / "s.db", TEST_KEY)
    opened = await App.open(db, library)
    try:
        yield opened
    finally:
        opened.scheduler.shutdown()
        await db.close()


async def test_a_job_added_before_start_runs_once_the_scheduler_runs() -> None:
    scheduler = Scheduler()
    ran = asyncio.Event()

    async def job() -> None:
        ran.set()

    scheduler.every("job", job, HOUR)
    await asyncio.sleep(0)
    assert not ran.is_set() and not scheduler.running
    scheduler.start()
    try:
        await asyncio.wait_for(ran.wait(), 10)
        assert scheduler.has("job")
        scheduler.remove("job")
        scheduler.remove("job")  # gone already: nothing to do
        assert not scheduler.has("job")
    finally:
        scheduler.shutdown()
    assert not scheduler.running


async def test_the_safety_jobs_are_ready_only_while_the_one_scheduler_runs_them(app: App) -> None:
    jobs = SafetyJobs(app.db, casework=app.casework, checkins=app.checkins)
    jobs.start(app.scheduler)
    assert all(app.scheduler.has(j) for j in ("escalate", "purge", "checkins"))
    assert not jobs.running, "added, but the scheduler is not started"
    app.scheduler.start()
    assert jobs.running
    jobs.stop()
    assert not jobs.running and not app.scheduler.has("escalate")
    jobs.start(app.scheduler)
    assert jobs.running
    app.scheduler.shutdown()
    assert not jobs.running, "the scheduler stopped: readiness must say so"


async def test_each_sweeper_is_its_own_job_on_the_apps_scheduler(app: App) -> None:
    deleted: list[tuple[str, str]] = []
    swept = asyncio.Event()

    async def delete(chat: str, message_id: str) -> bool:
        deleted.append((chat, message_id))
        swept.set()
        return True

    telegram, matrix = ChatTrail(app.db, "telegram"), ChatTrail(app.db, "matrix")
    telegram.note("chat-1", [("m-1", timedelta(seconds=1))])
    await telegram.flush()
    late = time.time() + 60
    sweepers = [Sweeper(t, delete, interval=HOUR, clock=lambda: late) for t in (telegram, matrix)]
    for sweeper in sweepers:
        sweeper.start(app.scheduler)
    assert app.scheduler.has("sweep:telegram") and app.scheduler.has("sweep:matrix")
    app.scheduler.start()
    await asyncio.wait_for(swept.wait(), 10)
    await sweepers[0].stop()
    assert not app.scheduler.has("sweep:telegram") and app.scheduler.has("sweep:matrix")
    await sweepers[1].stop()
    assert deleted == [("chat-1", "m-1")]


def test_only_the_scheduler_module_makes_an_apscheduler() -> None:
    users = {
        path.relative_to(ROOT).as_posix()
        for package in ("bot", "handlers")
        for path in (ROOT / package).rglob("*.py")
        if any(
            name.startswith("apscheduler")
            for name in imports("", ast.parse(path.read_text(encoding="utf-8")))
        )
    }
    assert users == {"bot/scheduler.py"}
