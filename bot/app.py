"""The bot as one object: every transport hands it messages; it owns storage and content."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from bot.cases import reporter_rows
from bot.cases.casework import Casework
from bot.content.library import Library
from bot.content.problems import Problem
from bot.content.reloads import Reloader
from bot.conversation.chat_trail import ChatTrail
from bot.conversation.flood import Dropped, FloodGuard
from bot.conversation.pseudonym import PSEUDONYM_SECRET, Pseudonymizer
from bot.conversation.sessions import SessionStore
from bot.conversation.turns import Turns
from bot.delivery import Outcome, RetryPolicy, rows
from bot.delivery.outbox import Outbox
from bot.health.counts import Counts
from bot.model import ChatRef, Incoming, Reply, Transport, UserRef
from bot.safety import checkin_rows
from bot.safety.checkins import Checkins
from bot.scheduler import Scheduler
from bot.storage import Database, StorageError, StorageFullError
from handlers import respond
from handlers.notices import flood_notice, internal_error, storage_notice
from handlers.router import prompt
from handlers.sos import urgent
from handlers.staff import StaffScope, respond_staff
from handlers.staff_text import StaffText

__all__ = ["FORGOTTEN_TTL", "UNLIMITED", "App"]

FORGOTTEN_TTL = timedelta(minutes=10)
"""How long the confirmation of `/forget` stays at most: long enough to read."""
log = logging.getLogger("hrd_bot.app")
UNLIMITED = ("console",)


class App:
    """Serialises each user's messages, saves their state, and applies flood limits and TTLs.

    To transports it is a `bot.transports.port.TransportPort`, and they see no more of it.
    `scheduler` is the one timer of every timed job (`bot.scheduler`): the safety jobs and
    each transport's sweeper; `hrd-bot run` starts and stops it."""

    def __init__(
        self,
        db: Database,
        library: Library,
        pseudonyms: Pseudonymizer,
        *,
        sensitive_ttl: timedelta | None = timedelta(hours=1),
        flood: FloodGuard | None = None,
        staff_rooms: tuple[ChatRef, ...] = (),
        oncall: tuple[ChatRef, ...] = (),
        exports: Path | None = None,
        delivery: RetryPolicy | None = None,
        staff_without_device: StaffScope = "triage",
        staff_language: str = "en",
        cached_sessions: int = 20_000,  # 0 with several workers: see `bot.cluster`
    ) -> None:
        self.db = db
        self.staff_without_device = staff_without_device
        self.library, self.pseudonyms = library, pseudonyms
        self.sessions = SessionStore(db, cached=cached_sessions)
        self.sensitive_ttl = sensitive_ttl
        self.staff_rooms, self.oncall = staff_rooms, oncall
        self.flood = flood or FloodGuard()
        self.transports: dict[str, Transport] = {}
        self.scheduler, self.counts = Scheduler(), Counts()
        words = StaffText(lambda: self.library, staff_language)
        self.outbox = Outbox(
            db,
            self.transports,
            words,
            alert_rooms=staff_rooms,
            oncall=oncall,
            policy=delivery,
        )
        self.casework = Casework(
            db,
            lambda: self.library,
            self.deliver,
            self.outbox,
            staff_rooms=staff_rooms,
            oncall=oncall,
            exports=exports,
            staff_language=staff_language,
            words=words,
        )
        self.checkins = Checkins(db, self.casework, self.push)
        _forget_everywhere(self.sessions)
        self._staff_rooms = {(room.platform, room.address) for room in staff_rooms}
        self._turns = Turns()
        self._reloader = Reloader(self._swap_library, busy=lambda: len(self._turns) > 0)

    @classmethod
    async def open(
        cls,
        db: Database,
        library: Library,
        *,
        sensitive_ttl: timedelta | None = timedelta(hours=1),
        staff_rooms: tuple[ChatRef, ...] = (),
        oncall: tuple[ChatRef, ...] = (),
        exports: Path | None = None,
        delivery: RetryPolicy | None = None,
        staff_without_device: StaffScope = "triage",
        staff_language: str = "en",
        cached_sessions: int = 20_000,
    ) -> App:
        pseudonyms = Pseudonymizer(await db.secret(PSEUDONYM_SECRET))
        return cls(
            db,
            library,
            pseudonyms,
            sensitive_ttl=sensitive_ttl,
            staff_rooms=staff_rooms,
            oncall=oncall,
            exports=exports,
            delivery=delivery,
            staff_without_device=staff_without_device,
            staff_language=staff_language,
            cached_sessions=cached_sessions,
        )

    @property
    def storage(self) -> Database:
        """For transports: the database worker, for their own rows."""
        return self.db

    async def language(self, user: UserRef) -> str | None:
        """For transports' own notices: the language the person chose, if any."""
        return (await self.sessions.load(user)).language

    def chat_trail(self, platform: str) -> ChatTrail:
        """For a transport: the record of its messages, to delete them when due."""
        return ChatTrail(self.db, platform)

    def forget_cached(self, user_key: str) -> None:
        """Drop what this process remembers of a user (cached session, flood buckets):
        another worker served them meanwhile (`bot.cluster`); the database has the rest."""
        self.sessions.dropped([user_key])
        self.flood.forget(user_key)

    def attach(self, transport: Transport) -> None:
        """Transports register so replies to other chats (staff alerts, relays) can be sent."""
        self.transports[transport.name] = transport

    async def start_delivery(self) -> None:
        """Once the transports are attached: resume the outbox, and record in their cases
        the team's replies a stop lost (staff rooms are told by the outbox)."""
        await self.casework.lost(await self.outbox.start())

    async def deliver(
        self,
        chat: ChatRef,
        reply: Reply,
        *,
        kind: str = "notice",
        case_id: str | None = None,
        person: str | None = None,
    ) -> asyncio.Future[Outcome]:
        """Queue a message to a chat that did not just write to us: a staff room, a
        reporter, on-call. The future resolves once it is delivered or known not to be."""
        return await self.outbox.post(
            chat, self._with_ttl(reply), kind=kind, case_id=case_id, person=person
        )

    async def reload_content(self, root: Path) -> list[Problem]:
        """Load in the loader process and swap the new content in at once, only if it has no
        errors; until then (and otherwise) messages are answered from the old content."""
        return await self._reloader.reload(root)

    async def close(self) -> None:
        """Stop the content loader process the first reload started."""
        await self._reloader.close()

    def _swap_library(self, library: Library) -> Library:
        old, self.library = self.library, library
        return old

    async def handle(self, msg: Incoming) -> Sequence[Reply]:
        """Every message: flood limits first (staff rooms included), then its handler.

        A dropped message is answered with `Dropped` (see `bot.conversation.flood`): the transport
        keeps no trace of it."""
        key = msg.user.key
        if msg.user.platform not in UNLIMITED:
            allowed, warn = self.flood.check(key)
            if not allowed and (self.flood.in_sos(key) or urgent(msg, self.library)):
                allowed, warn = self.flood.check_sos(key)
            if not allowed:
                log.info("flood: dropped a message (warned=%s)", warn)
                self.counts.flood_drops += 1
                return Dropped((await self._flood_notice(msg.user),) if warn else ())
        self.counts.handled[msg.user.platform] += 1
        if (msg.chat.platform, msg.chat.address) in self._staff_rooms:
            t = await self.casework.translator_for(msg.user)
            staff_reply = await respond_staff(msg, self.casework, t, self.staff_without_device)
            return [] if staff_reply is None else [staff_reply]
        if msg.claim_of is not None:  # a claim counts only in a staff room
            return []
        started = time.perf_counter()
        async with self._turns.turn(key):
            try:
                reply = await self._handle_locked(msg)
            except StorageError as exc:  # load or save failed: the user is told so
                reply = self._storage_notice(msg, exc)
        self.flood.note_sos(key, reply.urgent)
        log.debug(
            "handled %s in %.1f ms", msg.user.platform, (time.perf_counter() - started) * 1000
        )
        return [self._with_ttl(reply)]

    async def push(self, user: UserRef, chat: ChatRef) -> None:
        """Ask a check-in question in a user's chat, as the screen they are now on."""
        async with self._turns.turn(user.key):
            session = await self.sessions.load(user)
            reply = prompt(Incoming(user, chat), session, self.library, "checkin", self.checkins)
            await self.sessions.save(session)
        await self.deliver(chat, reply, kind="checkin", person=user.key)

    async def _handle_locked(self, msg: Incoming) -> Reply:
        session = await self.sessions.load(msg.user)

        async def forget() -> None:
            await self.sessions.forget(msg.user)
            await self.db.truncate_wal()  # no older copy of the rows left in the WAL
            log.info("forget: erased a user's data")

        try:
            reply = await respond(msg, session, self.library, forget, self.casework, self.checkins)
        except StorageError as exc:
            return self._storage_notice(msg, exc, session.language)
        except Exception as exc:  # one broken message must not stop the bot for everyone
            log.error("handler failed: %s", type(exc).__name__)
            return internal_error(self.library.translator(session.language or "en"))
        if msg.chat.private and not reply.erase_chat:
            await self.sessions.save(session)
        return reply

    def _storage_notice(
        self, msg: Incoming, fault: StorageError, language: str | None = None
    ) -> Reply:
        """The storage module has logged the fault for the operator; the user is told
        their message was not kept (a full disk) or that storage failed (damage)."""
        t = self.library.translator(language or msg.language_hint or "en")
        return storage_notice(t, full=isinstance(fault, StorageFullError))

    async def _flood_notice(self, user: UserRef) -> Reply:
        session = await self.sessions.load(user)
        return flood_notice(self.library.translator(session.language or "en"))

    def _with_ttl(self, reply: Reply) -> Reply:
        """The confirmation of `/forget` goes sooner: deleting it is all its chat's
        address is still kept for."""
        if reply.sensitive and reply.ttl is None and self.sensitive_ttl:
            ttl = min(self.sensitive_ttl, FORGOTTEN_TTL) if reply.erase_chat else None
            return replace(reply, ttl=ttl or self.sensitive_ttl)
        return reply


def _forget_everywhere(sessions: SessionStore) -> None:
    """`/forget` deletes, in its one transaction, every row that names the person."""
    for statement in (
        reporter_rows.forget_statement(),
        checkin_rows.forget_statement(),
        rows.forget_statement(),
    ):
        sessions.also_forget(statement)
