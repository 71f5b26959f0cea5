"""Safety check-ins: the bot asks a reporter "are you safe?" on a schedule, and tells the
protection team when a question goes unanswered or the answer is "I need help".

Check-ins belong to the reporter's open case, so staff know whom to help. Everything
is in the database (asked, answered, alerted), so a restart loses no pending question.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta

from bot.cases_store import SYSTEM
from bot.casework import TOLD_WITHIN, Casework
from bot.delivery import Outcome
from bot.delivery.outbox import any_delivered
from bot.model import ChatRef, Reply, UserRef
from bot.storage.database import Connection, Database

log = logging.getLogger("hrd_bot.checkins")
Push = Callable[[UserRef, ChatRef], Awaitable[None]]
Row = tuple[str, str, str, str, int, int]


def _user(key: str) -> UserRef:
    platform, _, pseudonym = key.partition(":")
    return UserRef(platform, pseudonym)


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

    def _now(self) -> int:
        return int(self._clock())

    async def schedule(self, user: UserRef, chat: ChatRef, every_hours: int) -> bool:
        now, every = self._now(), every_hours * 3600

        def upsert(conn: Connection) -> str | None:
            row = conn.execute(
                "SELECT c.id FROM case_reporters r JOIN cases c ON c.id = r.case_id "
                "WHERE r.user_key = ? AND c.state NOT IN ('draft', 'closed') "
                "ORDER BY c.created_at DESC LIMIT 1",
                (user.key,),
            ).fetchone()
            if row is None:
                return None
            conn.execute(
                "INSERT OR REPLACE INTO checkins VALUES (?, ?, ?, ?, ?, ?, NULL, NULL)",
                (user.key, row[0], chat.platform, chat.address, every, now + every),
            )
            return str(row[0])

        case = await self._db.transaction(upsert)
        if case is not None:
            await self._casework.store.record_action(case, SYSTEM, "checkin.start")
        return case is not None

    async def every(self, user: UserRef) -> int | None:
        def read(conn: Connection) -> int | None:
            row = conn.execute("SELECT every_s FROM checkins WHERE user_key = ?", (user.key,))
            found = row.fetchone()
            return None if found is None else int(found[0]) // 3600

        return await self._db.run(read)

    async def stop(self, user: UserRef) -> None:
        await self._db.run(
            lambda c: c.execute("DELETE FROM checkins WHERE user_key = ?", (user.key,))
        )

    async def answered(self, user: UserRef, *, safe: bool) -> str | None:
        """For "I need help": `told` once a staff room has the alert, `trying` while none
        has it yet; None for "I'm safe", or without a case (closed or purged while the
        question was open) or a staff room to tell."""
        now = self._now()

        def reset(conn: Connection) -> str | None:
            row = conn.execute("SELECT case_id FROM checkins WHERE user_key = ?", (user.key,))
            found = row.fetchone()
            conn.execute(
                "UPDATE checkins SET asked_at = NULL, alerted_at = NULL, next_at = ? + every_s "
                "WHERE user_key = ?",
                (now, user.key),
            )
            return None if found is None else str(found[0])

        case = await self._db.transaction(reset)
        if case is None or safe:
            return None
        await self._casework.store.record_action(
            case, SYSTEM, "checkin.help", changes={"urgency": "critical"}
        )
        return await self._alert("staff.checkin_help", case=case)

    async def tick(self) -> tuple[int, int]:
        """Ask the questions that are due; alert staff about those left unanswered."""
        now, grace = self._now(), int(self.grace.total_seconds())

        def due(conn: Connection) -> tuple[list[Row], list[Row]]:
            closed = "SELECT id FROM cases WHERE state = 'closed'"
            conn.execute(f"DELETE FROM checkins WHERE case_id IN ({closed})")  # noqa: S608
            select = "SELECT user_key, case_id, platform, chat, asked_at, next_at FROM checkins "
            ask = conn.execute(
                select + "WHERE asked_at IS NULL AND next_at <= ?", (now,)
            ).fetchall()
            missed = conn.execute(
                select + "WHERE alerted_at IS NULL AND asked_at <= ?", (now - grace,)
            ).fetchall()
            conn.executemany(
                "UPDATE checkins SET asked_at = ? WHERE user_key = ?", [(now, r[0]) for r in ask]
            )
            conn.executemany(
                "UPDATE checkins SET alerted_at = ? WHERE user_key = ?",
                [(now, r[0]) for r in missed],
            )
            return ask, missed

        ask, missed = await self._db.transaction(due)
        for user_key, _, platform, chat, _, _ in ask:
            await self._push(_user(user_key), ChatRef(platform, chat))
        for _, case, _, _, asked_at, _ in missed:
            await self._casework.store.record_action(case, SYSTEM, "checkin.missed")
            minutes = (now - asked_at) // 60
            await self._queue_alert("staff.checkin_missed", case, minutes=minutes)
        if missed:
            log.warning("%d check-ins went unanswered; staff alerted", len(missed))
        return len(ask), len(missed)

    async def _alert(self, key: str, case: str) -> str | None:
        """`told` once an alert room has it, `trying` while none has; None with no room."""
        sent = await self._queue_alert(key, case)
        if not sent:
            return None
        return "told" if await any_delivered(sent, TOLD_WITHIN) else "trying"

    async def _queue_alert(
        self, key: str, case: str, **values: object
    ) -> list[asyncio.Future[Outcome]]:
        """Queued (on disk) before this returns; the outbox retries and reports."""
        t = self._casework.staff_translator()
        alert = Reply(t(key, case=case, **values))
        deliver = self._casework.deliver
        return [
            await deliver(room, alert, kind="checkin", case_id=case)
            for room in self._casework.alert_rooms
        ]

    def forget_statement(self) -> str:
        return "DELETE FROM checkins WHERE user_key = ?"
