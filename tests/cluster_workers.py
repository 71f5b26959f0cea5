"""Several hrd-bot workers behind one webhook, against the Bot API emulator.

Each worker is what `hrd-bot run` makes with `HRD_BOT_DATABASE_URL` set: an App over
its own `Database.open_postgres` (or a SQLCipher file, for one worker alone) and a
Telegram transport in webhook mode on a port of its own. The emulator's own webhook
delivery is held; `Balancer` plays the load balancer instead: it posts each chat's
updates one after another (Telegram's order: the next once the previous was answered
200), to the workers in turn, chats concurrently. `first_disorder` is the checker.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp

from bot.app import App
from bot.cluster.worker import Membership, clustered
from bot.conversation.pseudonym import Pseudonymizer
from bot.model import Incoming, Reply
from bot.storage import Database
from bot.transports.telegram import TelegramConfig, TelegramTransport, WebhookConfig
from tests.telegram_emulator import Emulator, SimUser
from tests.telegram_emulator.harness import FAST_RETRIES, library

__all__ = [
    "PRESS",
    "SCRIPT",
    "Balancer",
    "Hooked",
    "Launch",
    "Worker",
    "first_disorder",
    "free_port",
    "serving",
    "transcript",
    "walk",
    "worker",
]

SCRIPT = (
    "/start",
    "English",
    "I have a digital security problem",
    "2",
    "1",
    "◂ Back",
    "/menu",
    "Legal information",
    "/help",
    "/menu",
)
"""Typed, not pressed, so a person can send the next before the answer: each answer
depends on the screen the previous one left."""
PRESS = "press:"
"""A script line that presses the button with this label on the newest screen having it."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(slots=True)
class Worker:
    name: str
    app: App
    transport: TelegramTransport
    hook: WebhookConfig
    task: asyncio.Task[None]
    handled: list[str] = field(default_factory=list)
    """The chat of every message this worker handled."""


Launch = Callable[[Callable[[], "asyncio.Task[None]"]], Awaitable["asyncio.Task[None]"]]
"""Starts the transport (the callable) and returns once it listens: see `worker`."""


def on_emulator(emu: Emulator) -> Launch:
    """The transport registers its webhook with `emu`, whose own delivery is then held."""

    async def launch(start: Callable[[], asyncio.Task[None]]) -> asyncio.Task[None]:
        earlier = len(emu.calls("setWebhook"))
        task = start()
        await emu.wait_for_call("setWebhook", after=earlier)
        emu.world.holding = True  # the Balancer delivers, not the emulator
        return task

    return launch


@asynccontextmanager
async def worker(
    emu: Emulator,
    open_db: Callable[[], Awaitable[Database]],
    name: str,
    *,
    cluster_url: str | None = None,
    delay: float = 0.0,
    lease: float = 10.0,
) -> AsyncIterator[Worker]:
    """One worker; `cluster_url` makes it one of several (the inbox and leases), else it
    handles what it receives itself. `delay` slows each of its answers (a busy worker)."""
    where = (emu.token, emu.api_base_url, free_port())
    async with serving(where, open_db, name, on_emulator(emu), cluster_url, delay, lease) as w:
        yield w


@asynccontextmanager
async def serving(
    where: tuple[str, str, int],
    open_db: Callable[[], Awaitable[Database]],
    name: str,
    launch: Launch,
    cluster_url: str | None = None,
    delay: float = 0.0,
    lease: float = 10.0,
) -> AsyncIterator[Worker]:
    """`worker` for a Bot API at `where` (token, base URL, this worker's webhook port),
    also in a process of its own (`bench.worker_process`)."""
    token, api_base_url, port = where
    db = await open_db()
    pseudonyms = Pseudonymizer(await db.secret("pseudonym-secret"))
    app = App(db, library(), pseudonyms, cached_sessions=0 if cluster_url else 20_000)
    app.outbox.policy = FAST_RETRIES
    hook = WebhookConfig(f"http://127.0.0.1:{port}/hook-{name}", f"secret-{name}", port=port)
    config = TelegramConfig(token=token, api_base_url=api_base_url, webhook=hook, max_rate=0)
    member = None
    if cluster_url is not None:
        member = Membership(cluster_url, app.forget_cached, lease=lease, poll=min(1.0, lease))
    handled: list[str] = []

    async def handle(msg: Incoming) -> Sequence[Reply]:
        handled.append(msg.chat.address)
        if delay:
            await asyncio.sleep(delay)
        return await app.handle(msg)

    try:
        async with clustered(cluster_url, app):
            transport = TelegramTransport(app, config, member)
            app.attach(transport)
            app.scheduler.start()
            task = await launch(lambda: asyncio.create_task(transport.run(handle)))
            await app.start_delivery()
            try:
                yield Worker(name, app, transport, hook, task, handled)
            finally:
                await app.outbox.close()
                await transport.stop()
                await task
                app.scheduler.shutdown()
    finally:
        await db.close()


class Hooked(Protocol):
    """A worker as the balancer sees it: its webhook (in this process or another)."""

    @property
    def hook(self) -> WebhookConfig: ...


@dataclass
class Balancer:
    """Takes the emulator's queued updates and posts them to `workers` (see the module)."""

    emu: Emulator
    workers: Sequence[Hooked]
    latencies: list[float] = field(default_factory=list)
    _chats: dict[int, asyncio.Queue[dict[str, Any]]] = field(default_factory=dict)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def run(self) -> None:
        world = self.emu.world
        async with aiohttp.ClientSession() as session:
            try:
                while True:
                    await world.wait_for(lambda: bool(world.updates), within=3600)
                    taken, world.updates[:] = list(world.updates), []
                    for update in taken:
                        self._route(session, update)
            finally:
                for task in self._tasks:
                    task.cancel()
                await asyncio.gather(*self._tasks, return_exceptions=True)

    def _route(self, session: aiohttp.ClientSession, update: dict[str, Any]) -> None:
        message = update.get("message") or update["callback_query"]["message"]
        chat = int(message["chat"]["id"])
        if chat not in self._chats:
            self._chats[chat] = asyncio.Queue()
            self._tasks.append(asyncio.create_task(self._post_in_turn(session, chat)))
        self._chats[chat].put_nowait(update)

    async def _post_in_turn(self, session: aiohttp.ClientSession, chat: int) -> None:
        queue, turn = self._chats[chat], 0
        while True:
            update = await queue.get()
            status = 0
            while status != 200:
                target = self.workers[turn % len(self.workers)].hook
                turn += 1
                headers = {"X-Telegram-Bot-Api-Secret-Token": target.secret}
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.post(target.url, json=update, headers=headers) as answer:
                        status = answer.status


def transcript(user: SimUser) -> list[str]:
    """Every answer the bot sent in the chat, in the order it sent them (deleted ones too)."""
    bot = user.world.bot
    return [m.text or "" for m in user.world.messages[user.chat.id] if m.sender is bot]


async def walk(users: Sequence[SimUser], script: Sequence[str], within: float = 60.0) -> float:
    """Each user types the whole script without waiting (a press needs its screen: only
    first in a script); returns once every message was answered (seconds taken)."""
    started = time.perf_counter()
    for line in script:
        for user in users:
            if line.startswith(PRESS):
                await user.press(line.removeprefix(PRESS))
            else:
                await user.send(line)

    def answered() -> bool:
        return all(len(transcript(user)) >= len(script) for user in users)

    await users[0].world.wait_for(answered, within)
    return time.perf_counter() - started


def first_disorder(got: Sequence[Sequence[str]], expected: Sequence[str]) -> str | None:
    """None if every transcript is `expected`; else where the first one departs from it."""
    for number, lines in enumerate(got):
        for step, (seen, wanted) in enumerate(zip(lines, expected, strict=False)):
            if seen != wanted:
                return f"user {number}, answer {step}: {seen[:40]!r} instead of {wanted[:40]!r}"
        if len(lines) != len(expected):
            return f"user {number}: {len(lines)} answers instead of {len(expected)}"
    return None
