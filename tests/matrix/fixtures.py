"""Matrix fixtures, a pytest plugin of tests/conftest.py: one real Synapse per session,
a fresh bot and fresh people per test."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from bot.app import App
from bot.cluster.matrix_position import SharedPosition
from bot.config import Settings
from bot.content.library import Library
from bot.delivery import RetryPolicy
from bot.model import ChatRef
from bot.storage import Database, DbKey
from bot.transports.matrix import MatrixConfig, MatrixTransport, Tuning
from bot.transports.matrix.rooms import Limits
from tests.matrix.activist import Activist
from tests.matrix.homeserver import Account, Synapse

if TYPE_CHECKING:
    from tests.matrix.staff import Desk

DB_KEY = DbKey("aa" * 32)
PASSPHRASE = "correct horse battery staple (test only)"
ROOMY = (1000.0, 1000)
TUNING = Tuning(
    poll_ms=10_000,
    sweep_interval=timedelta(seconds=0.25),
    decrypt_grace=0.5,
    hint_every=0.0,
    limits=Limits(joins=ROOMY, joins_per_inviter=ROOMY, offers=ROOMY, offers_per_user=ROOMY),
)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def synapse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synapse]:
    server = Synapse(tmp_path_factory.mktemp("synapse")).start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class Bot:
    """hrd-bot's Matrix transport on a real SQLCipher database; restartable on the same disk."""

    synapse: Synapse
    account: Account
    data: Path
    library: Library
    tuning: Tuning = TUNING
    sensitive_ttl: timedelta | None = timedelta(hours=1)
    with_token: bool = False
    staff_rooms: tuple[str, ...] = ()
    staff_user_ids: frozenset[str] = frozenset()
    staff_device_keys: frozenset[str] = frozenset()
    oncall: tuple[ChatRef, ...] = ()
    homeserver: str | None = None
    """Where the bot's client connects, when not straight to Synapse (a fault proxy)."""
    delivery: RetryPolicy | None = None
    database_url: str | None = None
    """A PostgreSQL schema instead of a SQLCipher file: then the Matrix position is the
    shared one, as on a worker of several (`bot.cluster.matrix_position`)."""
    transport: MatrixTransport | None = None
    app: App | None = None
    _db: Database | None = None
    _task: asyncio.Task[None] | None = None
    starts: list[str] = field(default_factory=list)

    @property
    def config(self) -> MatrixConfig:
        return MatrixConfig(
            homeserver=self.homeserver or self.synapse.url,
            user_id=self.account.user_id,
            store_dir=self.data / "matrix",
            store_passphrase=PASSPHRASE,
            access_token=self.account.access_token if self.with_token else None,
            password=None if self.with_token else self.account.password,
            staff_user_ids=self.staff_user_ids,
            staff_device_keys=self.staff_device_keys,
        )

    def chats(self) -> tuple[ChatRef, ...]:
        """The staff rooms as `HRD_BOT_STAFF_ROOMS` gives them to the App."""
        listed = ",".join(f"matrix:{room}" for room in self.staff_rooms)
        return Settings.from_env({"HRD_BOT_STAFF_ROOMS": listed}).chats("HRD_BOT_STAFF_ROOMS")

    async def start(self, tuning: Tuning | None = None) -> Bot:
        url, position = self.database_url, None
        if url is None:
            self._db = await Database.open(self.data / "x.db", DB_KEY)
        else:
            self._db = await Database.open_postgres(url, DB_KEY)
            position = partial(SharedPosition, self._db)
        self.app = await App.open(
            self._db,
            self.library,
            sensitive_ttl=self.sensitive_ttl,
            staff_rooms=self.chats(),
            oncall=self.oncall,
            delivery=self.delivery,
        )
        self.transport = MatrixTransport(
            self.config, self.app, tuning=tuning or self.tuning, position=position
        )
        self.app.attach(self.transport)
        self.app.scheduler.start()
        self._task = asyncio.create_task(self.transport.run(self.app.handle))
        ready = asyncio.create_task(self.transport.ready.wait())
        await asyncio.wait([ready, self._task], timeout=60, return_when=asyncio.FIRST_COMPLETED)
        if self._task.done():
            self._task.result()
        assert ready.done(), "the bot did not finish its first sync"
        await self.app.start_delivery()
        self.starts.append(str(self.transport.device_id))
        return self

    async def stop(self) -> None:
        """As the service stops: the outbox first (what is queued stays on disk)."""
        if self.app is not None:
            await self.app.outbox.close()
        if self.transport is not None and self._task is not None:
            await self.transport.stop()
            await asyncio.wait_for(self._task, 30)
        if self.app is not None:
            self.app.scheduler.shutdown()
        if self._db is not None:
            await self._db.close()
        self.transport, self._task, self._db = None, None, None

    async def restart(self, tuning: Tuning | None = None) -> Bot:
        await self.stop()
        return await self.start(tuning)


@pytest.fixture
async def bot(synapse: Synapse, tmp_path: Path, library: Library) -> AsyncIterator[Bot]:
    running = Bot(synapse, synapse.register(unique("bot")), tmp_path / "bot", library)
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


MakeActivist = Callable[[], Awaitable[Activist]]


@pytest.fixture
async def make_activist(synapse: Synapse, tmp_path: Path, bot: Bot) -> AsyncIterator[MakeActivist]:
    people: list[Activist] = []

    async def make() -> Activist:
        name = unique("activist")
        person = Activist(synapse.url, synapse.register(name), tmp_path / name, bot.account.user_id)
        people.append(await person.start())
        return person

    yield make
    for person in people:
        with contextlib.suppress(Exception):
            await person.stop()


@pytest.fixture
async def activist(make_activist: MakeActivist) -> Activist:
    return await make_activist()


@pytest.fixture
async def desk(synapse: Synapse, bot: Bot, tmp_path: Path) -> AsyncIterator[Desk]:
    """A staff member with their key, and an encrypted and a plain staff room the bot has
    joined (see `tests/matrix/staff.py`)."""
    from tests.matrix.staff import open_desk  # staff.py builds on this module's `Bot`

    opened = await open_desk(synapse, bot, tmp_path)
    try:
        yield opened
    finally:
        await opened.staff.stop()
