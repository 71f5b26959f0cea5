"""One outbox for every message the bot starts: alerts, reminders, escalations, check-in
questions, relays, notices and the team's replies to reporters.

Each destination has its own lane, so messages to one chat keep their order and a chat
that cannot be reached holds up nothing else. A transient failure (429, 5xx, timeout,
platform down) is retried with jittered exponential backoff for `RetryPolicy.window`;
a final one (blocked, removed, gone) settles the message as failed with its reason.
A staff or on-call room is never given up early: it may be restored, so it is retried
for the whole window, and the other alert rooms are told it cannot be reached, and
again when it can. A send whose answer was lost is repeated only on a platform that
deduplicates it (`Transport.idempotent`); elsewhere it settles as `uncertain`, never
doubled and never claimed delivered.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from contextvars import Context
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from bot.content.library import Translator
from bot.delivery import rows
from bot.delivery.outcome import Outcome, Reason, Undelivered
from bot.delivery.policy import RetryPolicy
from bot.model import ChatRef, Reply, Transport
from bot.storage.database import Database

__all__ = ["Deliver", "Outbox", "Outgoing", "Parcel", "any_delivered"]

log = logging.getLogger("hrd_bot.outbox")
Place = tuple[str, str]
FINAL_FOR_ROOMS = (Reason.WITHHELD, Reason.REFUSED)


class Outgoing(NamedTuple):
    """A message to queue with `Outbox.post_many`."""

    chat: ChatRef
    reply: Reply
    kind: str
    case_id: str | None = None
    person: str | None = None


@dataclass(slots=True)
class Parcel:
    """One message for one destination; `done` resolves once it is delivered or not."""

    id: int
    chat: ChatRef
    reply: Reply
    kind: str
    case_id: str | None
    created_at: float
    done: asyncio.Future[Outcome] = field(repr=False)
    attempts: int = 0


@dataclass(slots=True)
class _Lane:
    queue: deque[Parcel] = field(default_factory=deque)
    task: asyncio.Task[None] | None = None


class Outbox:
    """Queues, sends, retries and records; see the module docstring."""

    def __init__(
        self,
        db: Database,
        transports: Mapping[str, Transport],
        staff: Callable[[], Translator],
        *,
        alert_rooms: tuple[ChatRef, ...] = (),
        policy: RetryPolicy | None = None,
    ) -> None:
        self._db = db
        self._transports = transports
        self._staff = staff
        self._rooms = {_place(room): i for i, room in enumerate(alert_rooms, 1)}
        self._alert_rooms = alert_rooms
        self.policy = policy or RetryPolicy()
        self._lanes: dict[Place, _Lane] = {}
        self._down: dict[Place, Reason] = {}
        self._background: set[asyncio.Task[None]] = set()
        self._writes = rows.GroupCommit(db)

    async def start(self) -> list[rows.Row]:
        """Resume what was queued before a stop; return what was lost (sensitive content
        held only in memory when the process ended), after telling the alert rooms."""
        found = await self._db.transaction(rows.pending)
        lost = [row for row in found if row.reply is None]
        for row in found:
            if row.reply is not None:
                self._enqueue(row.id, row.chat, row.reply, row.kind, row.case_id, row.created_at)
        if lost:
            log.warning("outbox: %d sensitive messages were lost in a stop", len(lost))
            await self._announce(self._lost_notice(lost))
        return lost

    async def post(
        self,
        chat: ChatRef,
        reply: Reply,
        *,
        kind: str,
        case_id: str | None = None,
        person: str | None = None,
    ) -> asyncio.Future[Outcome]:
        """Queue a message (its row is committed before this returns) and return its outcome."""
        return (await self.post_many([Outgoing(chat, reply, kind, case_id, person)]))[0]

    async def post_many(self, messages: Sequence[Outgoing]) -> list[asyncio.Future[Outcome]]:
        """Queue several messages in one commit (an alert for every staff room): all their
        rows are on disk before this returns; the outcomes come in the same order."""
        inserts = [rows.insert(m.chat, m.reply, m.kind, m.case_id, m.person) for m in messages]
        ids = await self._writes.write(lambda conn: [insert(conn) for insert in inserts])
        now = time.time()
        return [
            self._enqueue(row_id, m.chat, m.reply, m.kind, m.case_id, now).done
            for row_id, m in zip(ids, messages, strict=True)
        ]

    async def announce(self, reply: Reply, *, skip: Iterable[ChatRef] = ()) -> list[ChatRef]:
        """Queue a notice for every alert room (but `skip`); return those it was queued for."""
        return await self._announce(reply, skip={_place(chat) for chat in skip})

    def after(self, work: Coroutine[Any, Any, None]) -> None:
        """Run follow-up work (a confirmation once outcomes are known) beside the lanes."""
        task = _detached(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def is_down(self, chat: ChatRef) -> bool:
        return _place(chat) in self._down

    async def drain(self) -> None:
        """Wait until every lane is empty (tests, benches, a clean stop)."""
        while busy := [lane.task for lane in self._lanes.values() if lane.task is not None]:
            await asyncio.gather(*busy, return_exceptions=True)
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)

    async def close(self) -> None:
        """Stop sending; what is still queued stays queued on disk (or is reported lost)."""
        tasks = [lane.task for lane in self._lanes.values() if lane.task is not None]
        tasks += list(self._background)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._lanes.clear()
        await self._writes.flush()

    async def counts(self) -> dict[str, int]:
        return await self._db.run(rows.counts)

    def _enqueue(
        self,
        row_id: int,
        chat: ChatRef,
        reply: Reply,
        kind: str,
        case_id: str | None,
        created_at: float,
    ) -> Parcel:
        done: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        parcel = Parcel(row_id, chat, reply, kind, case_id, created_at, done)
        lane = self._lanes.setdefault(_place(chat), _Lane())
        lane.queue.append(parcel)
        if lane.task is None:
            lane.task = _detached(self._drain(_place(chat), lane))
        return parcel

    async def _drain(self, place: Place, lane: _Lane) -> None:
        try:
            while lane.queue:
                parcel = lane.queue[0]
                outcome = await self._deliver(parcel)
                await self._writes.write(rows.settle(parcel.id, outcome, parcel.attempts))
                lane.queue.popleft()
                if not parcel.done.done():
                    parcel.done.set_result(outcome)
                if not outcome.delivered:
                    log.info("outbox: a %s was not delivered (%s)", parcel.kind, outcome.reason)
        except Exception as exc:  # the lane stops; its messages stay queued on disk
            log.error("outbox: a lane stopped (%s)", type(exc).__name__)
            for parcel in lane.queue:
                if not parcel.done.done():
                    parcel.done.set_exception(exc)
            lane.queue.clear()
        finally:
            lane.task = None
            if self._lanes.get(place) is lane and not lane.queue:
                del self._lanes[place]

    async def _deliver(self, parcel: Parcel) -> Outcome:
        transport = self._transports.get(parcel.chat.platform)
        if transport is None:
            return Outcome(reason=Reason.NO_TRANSPORT)
        deadline = parcel.created_at + self.policy.window
        while True:
            parcel.attempts += 1
            try:
                ids = await self._try(transport, parcel)
            except Undelivered as failure:
                if failure.uncertain and not transport.idempotent:
                    return Outcome(reason=Reason.UNCERTAIN)
                if not self._retries(parcel.chat, failure):
                    return Outcome(reason=failure.reason)
                await self._trouble(parcel.chat, failure.reason)
                wait = self.policy.delay(parcel.attempts - 1, failure.retry_after)
                if time.time() + wait > deadline:
                    return Outcome(reason=failure.reason)
                await asyncio.sleep(wait)
                continue
            await self._recovered(parcel.chat)
            return Outcome(ids)

    async def _try(self, transport: Transport, parcel: Parcel) -> tuple[str, ...]:
        key = f"hrd{parcel.id}"
        try:
            async with asyncio.timeout(self.policy.attempt):
                return await transport.send(parcel.chat, parcel.reply, key)
        except Undelivered:
            raise
        except TimeoutError:
            raise Undelivered(Reason.UNREACHABLE, transient=True, uncertain=True) from None
        except RuntimeError:  # the transport is starting or restarting
            raise Undelivered(Reason.UNREACHABLE, transient=True) from None

    def _retries(self, chat: ChatRef, failure: Undelivered) -> bool:
        if failure.transient:
            return True
        return _place(chat) in self._rooms and failure.reason not in FINAL_FOR_ROOMS

    async def _trouble(self, chat: ChatRef, reason: Reason) -> None:
        place = _place(chat)
        if place not in self._rooms or place in self._down:
            return
        self._down[place] = reason
        t = self._staff()
        hours = max(1, round(self.policy.window / 3600))
        text = t(
            "delivery.room_down",
            room=self._rooms[place],
            platform=chat.platform,
            reason=t(f"delivery.reason.{reason.value}"),
            hours=hours,
        )
        log.warning("outbox: an alert room cannot be reached (%s)", reason.value)
        await self._announce(Reply(text), skip={place})

    async def _recovered(self, chat: ChatRef) -> None:
        place = _place(chat)
        if self._down.pop(place, None) is None:
            return
        t = self._staff()
        text = t("delivery.room_up", room=self._rooms[place], platform=chat.platform)
        await self._announce(Reply(text), skip={place})

    async def _announce(self, reply: Reply, skip: set[Place] | None = None) -> list[ChatRef]:
        told = [
            room
            for room in self._alert_rooms
            if _place(room) not in (skip or set()) and _place(room) not in self._down
        ]
        await self.post_many([Outgoing(room, reply, "notice") for room in told])
        return told

    def _lost_notice(self, lost: list[rows.Row]) -> Reply:
        t = self._staff()
        lines = [t("delivery.lost", count=len(lost))]
        for row in lost:
            when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(row.created_at))
            what = t(f"delivery.kind.{row.kind}")
            lines.append(f"• {what} · {row.case_id or '—'} · {when} UTC")
        return Reply("\n".join(lines))


def _detached(work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
    """A task in a fresh context: it must not inherit the chat turns its creator holds
    (see `bot.transports.telegram.dispatch`)."""
    return asyncio.get_running_loop().create_task(work, context=Context())


def _place(chat: ChatRef) -> Place:
    return chat.platform, chat.address


class Deliver(Protocol):
    """How the engine hands a message to the outbox (`App.deliver`)."""

    async def __call__(
        self,
        chat: ChatRef,
        reply: Reply,
        *,
        kind: str = "notice",
        case_id: str | None = None,
        person: str | None = None,
    ) -> asyncio.Future[Outcome]: ...


async def any_delivered(outcomes: Iterable[asyncio.Future[Outcome]], wait: float) -> bool:
    """True as soon as one of them is delivered; False when none is within `wait` seconds
    (they go on being tried: the outbox reports their end)."""
    pending = set(outcomes)
    deadline = asyncio.get_running_loop().time() + wait
    while pending:
        left = deadline - asyncio.get_running_loop().time()
        if left <= 0:
            return False
        done, pending = await asyncio.wait(pending, timeout=left, return_when="FIRST_COMPLETED")
        if any(not f.cancelled() and f.exception() is None and f.result().delivered for f in done):
            return True
    return False
