"""Safety check-ins: the bot asks "are you safe?" every day at a local time or every few
hours, and tells the protection team when a question goes unanswered or the answer is
"I need help" — or the duress word.

No case is needed to start: a missed check-in opens a critical case (a draft through the
report's path, submitted in the same transaction as its staff alerts, so a crash leaves
either both or neither). Everything is in the database (asked, answered, alerted, a
duress alert still to raise), so a restart loses no pending question or alert; the
rows are written by `bot.safety.checkin_rows`, the alerts worded through `bot.cases.words`.

The duress word (`bot.safety.duress`) is kept only as a keyed hash. Answering with it takes the
very same path as "I am safe" — one durable transaction, the same reply — and the urgent
alert (`bot.safety.sos`, marked duress) is raised after, beside the outbox lanes; `duress_at`
stays set until the alert's own transaction clears it, so a crash in between is retried.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from bot.cases import drafts, rows
from bot.cases.casework import TOLD_WITHIN, Casework
from bot.cases.store import SYSTEM, Reporter
from bot.cases.views import CheckinPlan
from bot.cases.words import CheckinAlert
from bot.crypto.records import CaseMeta
from bot.delivery import Outcome
from bot.delivery.outbox import Staged, any_delivered
from bot.model import ChatRef, Reply, UserRef
from bot.safety import checkin_rows, duress
from bot.safety.checkin_times import next_daily
from bot.storage.database import Connection, Database

__all__ = ["MISSED_FIELD", "NOTE_FIELD", "Checkins", "Push", "next_at"]

log = logging.getLogger("hrd_bot.checkins")
Push = Callable[[UserRef, ChatRef], Awaitable[None]]
NOTE_FIELD = "checkin.note"
MISSED_FIELD = "checkin"
_OPEN_CASE = (
    "SELECT c.id FROM case_reporters r JOIN cases c ON c.id = r.case_id "
    "WHERE r.user_key = ? AND c.state IN ('new', 'acknowledged', 'assigned') "
    "ORDER BY COALESCE(c.submitted_at, c.created_at) DESC, c.seq DESC LIMIT 1"
)


def _user(key: str) -> UserRef:
    platform, _, pseudonym = key.partition(":")
    return UserRef(platform, pseudonym)


def next_at(now: int, every_s: int | None, daily_at: int | None, zone: str | None) -> int:
    """When the next question is due after `now`: the next local daily time, or N hours."""
    if daily_at is not None:
        return next_daily(now, daily_at, zone or "UTC")
    return now + int(every_s or 0)


def _open_case(conn: Connection, user_key: str) -> str | None:
    found = conn.execute(_OPEN_CASE, (user_key,)).fetchone()
    return None if found is None else str(found[0])


@dataclass(frozen=True, slots=True)
class _Missed:
    user_key: str
    case: str | None
    platform: str
    chat: str
    language: str
    asked_at: int


def _reset(
    conn: Connection, now: int, user_key: str, key: bytes, word: str | None
) -> tuple[str | None, str, str, str] | None:
    """The answer: the question is closed and the next one scheduled. With a `word`,
    only when it is the duress word, and then `duress_at` marks the alert to raise."""
    found = checkin_rows.reading(conn, user_key)
    stored = None if found is None else found[7]
    hit = word is not None and duress.matches(key, user_key, word, stored)
    if found is None or (word is not None and not hit):
        return None
    due = next_at(now, found[4], found[5], found[6])
    checkin_rows.answered(conn, user_key, due, now if hit else None)
    return found[0], found[1], found[2], found[3]


def _open_for_missed(conn: Connection, now: int, one: _Missed) -> str:
    """A critical case through the report's own path: a draft, sealed, submitted."""
    reporter = Reporter(one.user_key, one.platform, one.chat, one.language)
    draft = drafts.open_draft(conn, now, reporter)
    rows.make_critical(conn, draft.id)
    rows.add_item(conn, now, draft.id, MISSED_FIELD, b"a safety check-in went unanswered")
    drafts.submit(conn, now, draft.id, SYSTEM, None)
    return draft.id


class Checkins:
    """Implements `handlers.ports.CheckinDesk`; `tick` is the minute job."""

    def __init__(
        self,
        db: Database,
        casework: Casework,
        push: Push,
        *,
        grace: timedelta = timedelta(minutes=30),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db, self._casework, self._push = db, casework, push
        self.grace = grace
        self._clock = clock
        self._secret: bytes | None = None
        self._raising: set[str] = set()
        self._unraised: set[str] = set()

    def _now(self) -> int:
        return int(self._clock())

    async def _key(self) -> bytes:
        if self._secret is None:
            self._secret = await self._db.secret(duress.DURESS_SECRET)
        return self._secret

    async def schedule(
        self,
        user: UserRef,
        chat: ChatRef,
        every_hours: int | None = None,
        *,
        daily_at: int | None = None,
        zone: str | None = None,
        language: str = "en",
    ) -> bool:
        """Start (or change) check-ins; the open case, if any, is the one staff hear about."""
        now = self._now()
        every = None if every_hours is None else every_hours * 3600
        due = next_at(now, every, daily_at, zone)

        def upsert(conn: Connection) -> str | None:
            case = _open_case(conn, user.key)
            row = (chat.platform, chat.address, language, every, daily_at, zone, due)
            checkin_rows.upsert(conn, user.key, case, row)
            if case is not None:
                rows.append_audit(conn, now, SYSTEM, "checkin.start", rows.case_meta(conn, case))
            return case

        await self._db.transaction(upsert)
        return True

    async def plan(self, user: UserRef) -> CheckinPlan | None:
        """What is scheduled, or None when nothing is."""

        def read(conn: Connection) -> CheckinPlan | None:
            found = checkin_rows.plan_with_country(conn, user.key)
            if found is None:
                return None
            every, daily, zone, paused, word, due, country = found
            hours = None if every is None else int(every) // 3600
            return CheckinPlan(hours, daily, zone, bool(paused), bool(word), int(due), country)

        return await self._db.run(read)

    async def every(self, user: UserRef) -> int | None:
        found = await self.plan(user)
        return None if found is None else found.every_hours

    async def stop(self, user: UserRef) -> None:
        await self._db.run(lambda c: checkin_rows.delete(c, user.key))

    async def pause(self, user: UserRef, paused: bool) -> bool:
        """Pause, or resume from now (the next question at the next due time)."""
        now = self._now()

        def switch(conn: Connection) -> bool:
            plan = checkin_rows.plan(conn, user.key)
            if plan is None:
                return False
            checkin_rows.set_paused(conn, user.key, paused, next_at(now, *plan))
            return True

        return await self._db.transaction(switch)

    async def set_zone(self, user: UserRef, zone: str) -> None:
        """A new time zone moves a daily check-in's next question to the new local time."""
        now = self._now()

        def move(conn: Connection) -> None:
            plan = checkin_rows.plan(conn, user.key)
            if plan is None or plan[1] is None:
                return
            checkin_rows.move_zone(conn, user.key, zone, next_daily(now, int(plan[1]), zone))

        await self._db.transaction(move)

    async def set_duress(self, user: UserRef, word: str | None) -> bool:
        """Keep the word's keyed hash (None removes it); False without check-ins."""
        hashed = None if word is None else duress.digest(await self._key(), user.key, word)

        def store(conn: Connection) -> bool:
            return checkin_rows.set_duress(conn, user.key, hashed)

        return await self._db.transaction(store, durable=True)

    async def add_note(self, user: UserRef, text: str) -> str | None:
        """Seal a note for the team to the user's open case; None when there is none."""
        now = self._now()

        def seal(conn: Connection) -> str | None:
            case = _open_case(conn, user.key)
            if case is None:
                return None
            rows.add_item(conn, now, case, NOTE_FIELD, text.encode())
            rows.append_audit(conn, now, SYSTEM, "checkin.note", rows.case_meta(conn, case))
            return case

        return await self._db.transaction(seal, durable=True)

    async def answered(self, user: UserRef, *, safe: bool) -> str | None:
        """For "I need help": `told` once a staff room has the alert, `trying` while none
        has it yet; None for "I'm safe", or when nobody could be alerted."""
        key = await self._key()
        found = await self._db.transaction(
            lambda conn: _reset(conn, self._now(), user.key, key, None), durable=True
        )
        if found is None or safe:
            return None
        case, platform, chat, language = found
        if case is None:
            raised = await self._casework.sos.raise_alert(user, ChatRef(platform, chat), language)
            return None if raised is None else raised.told
        await self._casework.store.record_action(
            case, SYSTEM, "checkin.help", changes={"urgency": "critical"}
        )
        return await self._alert(CheckinAlert(case, "help"))

    async def answered_word(self, user: UserRef, word: str) -> bool:
        """True when `word` is the user's duress word: recorded exactly as "I am safe" is,
        and the duress alert raised afterwards, in the background."""
        key = await self._key()
        found = await self._db.transaction(
            lambda conn: _reset(conn, self._now(), user.key, key, word), durable=True
        )
        if found is None:
            return False
        self._casework.after(self._raise_duress(user.key))
        return True

    async def _raise_duress(self, user_key: str) -> None:
        """The urgent alert, marked duress; `duress_at` is cleared in its transaction."""
        if user_key in self._raising:
            return
        self._raising.add(user_key)
        try:
            found = await self._db.run(lambda c: checkin_rows.duress_chat(c, user_key))
            if found is None:
                return

            def settle(conn: Connection, case: CaseMeta) -> None:
                checkin_rows.settle_duress(conn, user_key, case.id)

            chat = ChatRef(found[0], found[1])
            sos = self._casework.sos
            raised = await sos.raise_alert(
                _user(user_key), chat, found[2], duress=True, within=settle
            )
            if raised is None and user_key not in self._unraised:
                self._unraised.add(user_key)  # retried every minute, said once
                log.error("an urgent check-in alert could not be raised: no staff room or key")
            elif raised is not None:
                self._unraised.discard(user_key)
        finally:
            self._raising.discard(user_key)

    async def tick(self) -> tuple[int, int]:
        """Ask the questions that are due; alert staff about those left unanswered (opening
        a case where there is none); raise duress alerts a stop interrupted."""
        now, grace = self._now(), int(self.grace.total_seconds())
        staged: list[Staged] = []

        def due(conn: Connection) -> tuple[list[tuple[str, str, str]], int, list[str]]:
            checkin_rows.drop_closed(conn)
            ask = checkin_rows.due(conn, now)
            missed = [_Missed(*row) for row in checkin_rows.missed(conn, now - grace)]
            checkin_rows.mark_asked(conn, [key for key, _, _ in ask], now)
            for one in missed:
                staged.extend(self._missed(conn, now, one))
            return ask, len(missed), checkin_rows.pending_duress(conn)

        ask, missed, pending = await self._db.transaction(due, durable=True)
        outbox = self._casework.outbox
        for one in staged:
            outbox.launch(one)
        for user_key in pending:
            self._casework.after(self._raise_duress(user_key))
        for user_key, platform, chat in ask:
            await self._push(_user(user_key), ChatRef(platform, chat))
        if missed:
            log.warning("%d check-ins went unanswered; staff alerted", missed)
        return len(ask), missed

    def _missed(self, conn: Connection, now: int, one: _Missed) -> list[Staged]:
        """Alert staff about one unanswered question, on its case or on a case opened for
        it; in the tick's transaction, with the alerts' outbox rows."""
        checkin_rows.mark_alerted(conn, one.user_key, now)
        case = one.case or _open_case(conn, one.user_key)
        opened = case is None
        if case is None:
            if not rows.current_recipients(conn):
                log.error("a missed check-in could not open a case: no staff and no recovery key")
                return []
            case = _open_for_missed(conn, now, one)
        checkin_rows.link_case(conn, one.user_key, case)
        meta = rows.case_meta(conn, case)
        rows.append_audit(conn, now, SYSTEM, "checkin.missed", meta)
        minutes = (now - one.asked_at) // 60
        said = CheckinAlert(case, "missed", opened, minutes, meta.country)
        staged = []
        for room in self._casework.alert_rooms:
            alert = self._worded(said, room)
            message = self._casework.outbox.stage(room, alert, kind="checkin", case_id=case)
            message.write(conn)
            staged.append(message)
        return staged

    async def _alert(self, said: CheckinAlert) -> str | None:
        """`told` once an alert room has it, `trying` while none has; None with no room."""
        sent: list[asyncio.Future[Outcome]] = [
            await self._casework.deliver(
                room, self._worded(said, room), kind="checkin", case_id=said.case
            )
            for room in self._casework.alert_rooms
        ]
        if not sent:
            return None
        return "told" if await any_delivered(sent, TOLD_WITHIN) else "trying"

    def _worded(self, said: CheckinAlert, room: ChatRef) -> Reply:
        """In a staff room, claimable with one tap like a report's alert (not in an
        on-call person's private chat, where a claim is refused)."""
        claim = room in self._casework.staff_rooms
        return self._casework.words.alert(said, room, claim=claim)
