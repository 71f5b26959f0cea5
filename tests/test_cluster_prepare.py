"""A leader-only transport's `prepare` (Matrix: enrol this worker's device) runs at
every worker's start, leading or not, and the leader makes its transport only after it
ended: one client at a time on a folder's device store."""

from __future__ import annotations

import asyncio

from bot.app import App
from bot.cluster.leader import Leadership
from bot.cluster.worker import leader_only
from bot.content.library import Library
from bot.storage import Database
from tests.fakes import FakeTransport
from tests.keys import TEST_KEY
from tests.postgres_server import PgServer, fresh_schema
from tests.telegram_emulator.harness import eventually


class Worker:
    """One worker's leadership and its leader-only transport, with a `prepare` that
    waits until the test lets it end."""

    def __init__(self, url: str, app: App) -> None:
        self.leadership = Leadership(url, retry=0.1, heartbeat=0.05)
        self.made: list[FakeTransport] = []
        self.prepared = asyncio.Event()
        self.release = asyncio.Event()
        self.transport = leader_only(
            self.make, self.leadership, app, name="matrix", idempotent=True, prepare=self.prepare
        )

    def make(self) -> FakeTransport:
        self.made.append(FakeTransport(name="matrix"))
        return self.made[-1]

    async def prepare(self) -> bool:
        self.prepared.set()
        await self.release.wait()
        return True


async def test_every_worker_prepares_and_the_leader_runs_its_transport_after(
    pg_server: PgServer, library: Library
) -> None:
    url = pg_server.schema_url(fresh_schema(pg_server))
    db = await Database.open_postgres(url, TEST_KEY)
    app = await App.open(db, library)
    a, b = Worker(url, app), Worker(url, app)
    tasks = [asyncio.create_task(a.leadership.run())]
    tasks += [asyncio.create_task(w.transport.run(app.handle)) for w in (a, b)]
    try:
        await eventually(lambda: _true(a.leadership.leading), 10)
        tasks.append(asyncio.create_task(b.leadership.run()))
        await asyncio.wait_for(a.prepared.wait(), 10)
        await asyncio.wait_for(b.prepared.wait(), 10)  # a follower prepares too
        assert not b.leadership.leading
        assert a.made == []  # the leader waits for its own prepare
        a.release.set()
        await eventually(lambda: _true(len(a.made) == 1), 10)
        assert b.made == []  # a follower runs none
    finally:
        a.release.set()
        b.release.set()
        for worker in (a, b):
            await worker.transport.stop()
            await worker.leadership.stop()
        await asyncio.gather(*tasks)
        await db.close()


async def _true(check: bool) -> bool:
    return check
