"""The bot as one object: every transport hands it messages; it owns storage and content."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from bot.content.library import Library
from bot.content.loader import load_library
from bot.content.problems import Problem
from bot.flood import FloodGuard
from bot.model import Incoming, Reply, UserRef
from bot.pseudonym import Pseudonymizer
from bot.sessions import SessionStore
from bot.storage import Database
from handlers import respond
from handlers.output import directed

log = logging.getLogger("hrd_bot.app")
UNLIMITED = ("console",)


class App:
    """Serialises each user's messages, saves their state, and applies flood limits and TTLs."""

    def __init__(
        self,
        db: Database,
        library: Library,
        pseudonyms: Pseudonymizer,
        *,
        sensitive_ttl: timedelta | None = timedelta(hours=1),
        flood: FloodGuard | None = None,
    ) -> None:
        self.db = db
        self.library = library
        self.pseudonyms = pseudonyms
        self.sessions = SessionStore(db)
        self.sensitive_ttl = sensitive_ttl
        self.flood = flood or FloodGuard()
        self._locks: dict[str, asyncio.Lock] = {}
        self._waiting: dict[str, int] = {}

    @classmethod
    async def open(
        cls, db: Database, library: Library, *, sensitive_ttl: timedelta | None = timedelta(hours=1)
    ) -> App:
        pseudonyms = Pseudonymizer(await db.secret("pseudonym-secret"))
        return cls(db, library, pseudonyms, sensitive_ttl=sensitive_ttl)

    def reload_content(self, root: Path) -> list[Problem]:
        """Swap in new content only if it loads without errors; the old stays otherwise."""
        library, problems = load_library(root)
        if library is not None:
            self.library = library
        return problems

    async def handle(self, msg: Incoming) -> Sequence[Reply]:
        key = msg.user.key
        if msg.user.platform not in UNLIMITED:
            allowed, warn = self.flood.check(key)
            if not allowed:
                log.info("flood: dropped a message (warned=%s)", warn)
                return [await self._flood_notice(msg.user)] if warn else []
        started = time.perf_counter()
        self._waiting[key] = self._waiting.get(key, 0) + 1
        lock = self._locks.setdefault(key, asyncio.Lock())
        try:
            async with lock:
                reply = await self._handle_locked(msg)
        finally:
            self._waiting[key] -= 1
            if not self._waiting[key]:
                del self._waiting[key], self._locks[key]
        log.debug(
            "handled %s in %.1f ms", msg.user.platform, (time.perf_counter() - started) * 1000
        )
        return [self._with_ttl(reply)]

    async def _handle_locked(self, msg: Incoming) -> Reply:
        session = await self.sessions.load(msg.user)

        async def forget() -> None:
            await self.sessions.forget(msg.user)
            log.info("forget: erased a user's data")

        reply = await respond(msg, session, self.library, forget)
        if msg.chat.private and not reply.erase_chat:
            await self.sessions.save(session)
        return reply

    async def _flood_notice(self, user: UserRef) -> Reply:
        session = await self.sessions.load(user)
        t = self.library.translator(session.language or "en")
        return Reply(directed(t("error.flood"), t.rtl), rtl=t.rtl)

    def _with_ttl(self, reply: Reply) -> Reply:
        if reply.sensitive and reply.ttl is None and self.sensitive_ttl:
            return replace(reply, ttl=self.sensitive_ttl)
        return reply
