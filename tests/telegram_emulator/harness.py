"""hrd-bot as it runs in production (App, SQLCipher file, Telegram transport), against the emulator."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from bot.app import App
from bot.config import CHECKOUT
from bot.content.library import Library
from bot.content.loader import load_library
from bot.conversation.flood import FloodGuard
from bot.conversation.pseudonym import Pseudonymizer
from bot.delivery import RetryPolicy
from bot.model import ChatRef
from bot.storage import Database, DbKey
from bot.storage.database import Connection
from bot.transports.telegram import TelegramConfig, TelegramTransport, WebhookConfig
from handlers.staff import StaffScope
from tests.telegram_emulator import Emulator, Screen, SimUser

TEST_KEY = DbKey("aa" * 32)


@functools.cache
def library() -> Library:
    """The shipped content, loaded once per test run (it takes a few tenths of a second)."""
    loaded, problems = load_library(CHECKOUT / "content")
    assert loaded is not None, [str(p) for p in problems if not p.warning]
    return loaded


@dataclass(frozen=True, slots=True)
class RunningBot:
    app: App
    db: Database
    transport: TelegramTransport
    task: asyncio.Task[None]


FAST_RETRIES = RetryPolicy(window=3600.0, first=0.05, cap=1.0, attempt=10.0)
"""Retries in tests come quickly; each test that needs another window sets its own."""


@asynccontextmanager
async def running_bot(
    emu: Emulator,
    db_path: Path,
    *,
    sensitive_ttl: timedelta | None = timedelta(hours=1),
    sweep_interval: timedelta = timedelta(seconds=30),
    webhook: WebhookConfig | None = None,
    flood: FloodGuard | None = None,
    max_rate: float = 30.0,
    staff_rooms: tuple[ChatRef, ...] = (),
    oncall: tuple[ChatRef, ...] = (),
    delivery: RetryPolicy = FAST_RETRIES,
    staff_without_device: StaffScope = "triage",
) -> AsyncIterator[RunningBot]:
    """Start the bot and wait until it polls (or has set its webhook); stop it cleanly after.

    The transport is attached to the App, as `hrd-bot run` does, so staff alerts and the
    team's replies (`App.deliver`) reach Telegram."""
    db = await Database.open(db_path, TEST_KEY)
    try:
        pseudonyms = Pseudonymizer(await db.secret("pseudonym-secret"))
        app = App(
            db,
            library(),
            pseudonyms,
            sensitive_ttl=sensitive_ttl,
            flood=flood,
            staff_rooms=staff_rooms,
            oncall=oncall,
            delivery=delivery,
            staff_without_device=staff_without_device,
        )
        config = TelegramConfig(
            token=emu.token,
            api_base_url=emu.api_base_url,
            webhook=webhook,
            poll_timeout=10,
            sweep_interval=sweep_interval,
            max_rate=max_rate,
        )
        transport = TelegramTransport(app, config)
        app.attach(transport)
        app.scheduler.start()
        ready = "setWebhook" if webhook else "getUpdates"
        earlier = len(emu.calls(ready))
        task = asyncio.create_task(transport.run(app.handle))
        waiting = asyncio.create_task(emu.wait_for_call(ready, after=earlier))
        await asyncio.wait([task, waiting], return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
        if task.done():
            task.result()
        await app.start_delivery()
        try:
            yield RunningBot(app, db, transport, task)
        finally:
            await app.outbox.close()
            await transport.stop()
            await task
            app.scheduler.shutdown()
    finally:
        await db.close()


async def onboard(user: SimUser, language: str = "English") -> Screen:
    """First contact: /start, pick a language; returns the main menu."""
    await user.ask("/start")
    return await user.choose(language)


def chat_of(user: SimUser) -> ChatRef:
    return ChatRef("telegram", str(user.chat.id), private=user.chat.type == "private")


async def trail_rows(app: App, chat: int) -> list[tuple[str, int | None]]:
    """(message id, delete_at) of every message on record in one chat (named by its
    pseudonym in the trail)."""
    name = app.pseudonyms.chat("telegram", str(chat))

    def read(conn: Connection) -> list[tuple[str, int | None]]:
        rows = conn.execute(
            "SELECT message_id, delete_at FROM chat_messages WHERE platform = 'telegram' "
            "AND chat = ? ORDER BY id",
            (name,),
        )
        return [(str(r[0]), r[1]) for r in rows]

    return await app.db.run(read)


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 5.0) -> None:
    """Poll an async condition (the database is not part of the emulator's wake-ups)."""
    async with asyncio.timeout(within):
        while True:
            if await check():
                return
            await asyncio.sleep(0.02)
