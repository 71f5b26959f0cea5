"""One outbox for every message the bot starts: alerts, reminders, escalations, check-in
questions, relays, notices and the team's replies to reporters.

Each destination has its own lane, so messages to one chat keep their order and a chat
that cannot be reached holds up nothing else. An urgent message (an SOS: `Reply.urgent`,
or kind `sos`, which a restart keeps) goes ahead of every message waiting in its lane,
behind only the one being sent and earlier urgent ones. Staff alerts, escalations and
the team's replies to reporters are handed to the transport as urgent too
(`AHEAD_KINDS`): there they pass the ordinary screens waiting under the platform's rate
limit, while in their lanes they still wait behind an SOS. A transient failure (429, 5xx, timeout,
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
from collections import Counter, deque
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from contextvars import Context
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple, Protocol

from bot.delivery import rows
from bot.delivery.commits import GroupCommit
from bot.delivery.outcome import Outcome, Reason, Undelivered
from bot.delivery.policy import RetryPolicy
from bot.delivery.rooms import AlertRooms, Place, RoomWords, place
from bot.model import ChatRef, Reply, Transport
from bot.storage.database import Connection, Database

__all__ = ["Deliver", "Outbox", "Outgoing", "Parcel", "Staged", "any_delivered"]

log = logging.getLogger("hrd_bot.outbox")
FINAL_FOR_ROOMS = (Reason.WITHHELD, Reason.REFUSED)
URGENT_KINDS = frozenset({"sos"})
AHEAD_KINDS = frozenset({"alert", "escalation", "reply"})
PRUNE_EVERY = 3600.0


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

    @property
    def urgent(self) -> bool:
        return self.reply.urgent or self.kind in URGENT_KINDS


@dataclass(slots=True)
class Staged:
    """A message written in someone else's transaction (see `Outbox.stage`)."""

    chat: ChatRef
    reply: Reply
    kind: str
    case_id: str | None
    person: str | None
    row_id: int | None = None

    def write(self, conn: Connection) -> None:
        self.row_id = rows.insert(self.chat, self.reply, self.kind, self.case_id, self.person)(conn)


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
        words: RoomWords,
        *,
        alert_rooms: tuple[ChatRef, ...] = (),
        oncall: tuple[ChatRef, ...] = (),
        policy: RetryPolicy | None = None,
    ) -> None:
        """`alert_rooms` (staff rooms) and `oncall` chats are tried for the whole retry
        window, and the staff rooms are told when one cannot be reached, by its number."""
        self._db = db
        self._transports = transports
        self._rooms = AlertRooms(words, self._notify, alert_rooms, oncall)
        self.policy = policy or RetryPolicy()
        self._lanes: dict[Place, _Lane] = {}
        self._background: set[asyncio.Task[None]] = set()
        self._pruned = time.monotonic()
        self._writes = GroupCommit(db)
        self.failed: Counter[Reason] = Counter()
        """Messages settled as not delivered since the start, by reason (metrics)."""
        self.elsewhere: Callable[[str], bool] = lambda platform: False
        self.handed: Callable[[Parcel], object] = lambda parcel: None
        self.settled: Callable[[Iterable[int]], object] = lambda ids: None
        """Hooks for `bot.cluster`: whether another worker sends on a platform now; a
        parcel left for it; rows settled."""

    async def start(self) -> list[tuple[rows.Row, Reason]]:
        """Resume what was queued before a stop. Not resent: sensitive content (held only
        in memory, so lost, or uncertain if a try had left), and a message that may have
        left on a platform that cannot deduplicate it (resending could double it). The
        alert rooms are told exactly which; those rows are returned."""
        return await self.resume(await self._db.transaction(rows.pending))

    async def resume(self, found: list[rows.Row]) -> list[tuple[rows.Row, Reason]]:
        """`start` for these rows (several workers: rows a dead worker or a follower left)."""
        unsure = [row for row in found if self._unsure(row)]
        lost = [row for row in found if row.reply is None and row not in unsure]
        ended = [(r.id, Reason.LOST) for r in lost] + [(r.id, Reason.UNCERTAIN) for r in unsure]
        await self._db.transaction(rows.give_up(ended))
        self.settled(row_id for row_id, _ in ended)
        self.failed.update(reason for _, reason in ended)
        for row in found:
            if row.reply is not None and row not in unsure:
                self._enqueue(row.id, row.chat, row.reply, row.kind, row.case_id, row.created_at)
        if lost or unsure:
            log.warning("outbox: %d lost and %d uncertain in a stop", len(lost), len(unsure))
            await self._rooms.announce(self._rooms.stop_notice(lost, unsure))
        return [(r, Reason.LOST) for r in lost] + [(r, Reason.UNCERTAIN) for r in unsure]

    def _unsure(self, row: rows.Row) -> bool:
        """A try may have left, and it cannot be repeated exactly: its content is gone
        (sensitive), or the platform cannot deduplicate a repeat."""
        if row.attempts == 0:
            return False
        transport = self._transports.get(row.chat.platform)
        return row.reply is None or (transport is not None and not transport.idempotent)

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

    def stage(
        self,
        chat: ChatRef,
        reply: Reply,
        *,
        kind: str,
        case_id: str | None = None,
        person: str | None = None,
    ) -> Staged:
        """A message whose row the caller writes in its own transaction (`Staged.write`),
        so it is queued exactly when that commits; `launch` it after the commit."""
        return Staged(chat, reply, kind, case_id, person)

    def launch(self, staged: Staged) -> asyncio.Future[Outcome]:
        if staged.row_id is None:
            raise RuntimeError("a staged message was launched before its row was written")
        parcel = self._enqueue(
            staged.row_id, staged.chat, staged.reply, staged.kind, staged.case_id, time.time()
        )
        return parcel.done

    def after(self, work: Coroutine[Any, Any, None]) -> None:
        """Run follow-up work (a confirmation once outcomes are known) beside the lanes."""
        task = _detached(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

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
        if self.elsewhere(chat.platform):
            self.handed(parcel)
            return parcel
        lane = self._lanes.setdefault(place(chat), _Lane())
        _queue(lane, parcel)
        if lane.task is None:
            lane.task = _detached(self._drain(place(chat), lane))
        return parcel

    async def release(self, platform: str) -> None:
        """Stop sending to `platform`: another worker sends there now (`bot.cluster`).
        Its rows stay queued on disk, as at `close`."""
        places = [where for where in self._lanes if where[0] == platform]
        tasks = [task for where in places if (task := self._lanes[where].task) is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for where in places:
            self._lanes.pop(where, None)

    def held(self, platform: str | None = None) -> dict[Place, list[int]]:
        """Row ids in each lane (of one platform), the one being sent first (`bot.cluster`)."""
        return {
            where: [parcel.id for parcel in lane.queue]
            for where, lane in self._lanes.items()
            if platform is None or where[0] == platform
        }

    async def _drain(self, place: Place, lane: _Lane) -> None:
        try:
            while lane.queue:
                parcel = lane.queue[0]
                outcome = await self._deliver(parcel)
                await self._writes.write(rows.settle(parcel.id, outcome, parcel.attempts))
                self.settled((parcel.id,))
                await self._prune_now_and_then()
                lane.queue.popleft()
                if not parcel.done.done():
                    parcel.done.set_result(outcome)
                if outcome.reason is not None:
                    self.failed[outcome.reason] += 1
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

    async def _prune_now_and_then(self) -> None:
        if time.monotonic() - self._pruned > PRUNE_EVERY:
            self._pruned = time.monotonic()
            await self._db.transaction(rows.prune)

    async def _deliver(self, parcel: Parcel) -> Outcome:
        transport = self._transports.get(parcel.chat.platform)
        if transport is None:
            return Outcome(reason=Reason.NO_TRANSPORT)
        deadline = parcel.created_at + self.policy.window
        marked = parcel.reply.sensitive or not transport.idempotent
        while True:
            parcel.attempts += 1
            if marked:
                await self._writes.write(rows.trying(parcel.id))
            try:
                ids = await self._try(transport, parcel)
            except Undelivered as failure:
                if failure.uncertain and not transport.idempotent:
                    return Outcome(reason=Reason.UNCERTAIN)
                if marked and not failure.uncertain:
                    await self._writes.write(rows.trying(parcel.id, left=False))
                if not self._retries(parcel.chat, failure):
                    return Outcome(reason=failure.reason)
                await self._rooms.down(parcel.chat, failure.reason, self.policy.window)
                wait = self.policy.delay(parcel.attempts - 1, failure.retry_after)
                if time.time() + wait > deadline:
                    return Outcome(reason=failure.reason)
                await asyncio.sleep(wait)
                continue
            await self._rooms.up(parcel.chat)
            return Outcome(ids)

    async def _try(self, transport: Transport, parcel: Parcel) -> tuple[str, ...]:
        key = f"hrd{parcel.id}"
        try:
            async with asyncio.timeout(self.policy.attempt):
                return await transport.send(parcel.chat, _for_transport(parcel), key)
        except Undelivered:
            raise
        except TimeoutError:
            raise Undelivered(Reason.UNREACHABLE, transient=True, uncertain=True) from None
        except RuntimeError:  # the transport is starting or restarting
            raise Undelivered(Reason.UNREACHABLE, transient=True) from None
        except Exception as exc:  # a library's own error: the try may have left
            log.error("outbox: a send failed unexpectedly (%s)", type(exc).__name__)
            raise Undelivered(Reason.UNREACHABLE, transient=True, uncertain=True) from None

    def _retries(self, chat: ChatRef, failure: Undelivered) -> bool:
        if failure.transient:
            return True
        return chat in self._rooms and failure.reason not in FINAL_FOR_ROOMS

    async def _notify(self, rooms: Sequence[ChatRef], reply: Reply) -> None:
        await self.post_many([Outgoing(room, reply, "notice") for room in rooms])


def _queue(lane: _Lane, parcel: Parcel) -> None:
    """At the end, or for an urgent parcel ahead of every waiting one that is not urgent;
    never ahead of the lane's first, which is being sent while the lane runs."""
    if not parcel.urgent:
        lane.queue.append(parcel)
        return
    at = 1 if lane.task is not None else 0
    while at < len(lane.queue) and lane.queue[at].urgent:
        at += 1
    lane.queue.insert(at, parcel)


def _detached(work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
    """A task in a fresh context: it must not inherit the chat turns its creator holds
    (see `bot.transports.telegram.dispatch`)."""
    return asyncio.get_running_loop().create_task(work, context=Context())


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


def _for_transport(parcel: Parcel) -> Reply:
    """Urgent for the platform's rate limit as well, if it is to pass ordinary screens."""
    if parcel.kind in AHEAD_KINDS and not parcel.reply.urgent:
        return replace(parcel.reply, urgent=True)
    return parcel.reply
