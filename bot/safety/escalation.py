"""Escalation of unacknowledged cases, tier after tier, until someone acknowledges.

Tier 1 is the staff rooms, alerted at submission (`Casework.submit`); tier 2 the on-call
chats (`HRD_BOT_ONCALL`), tier 3 the leads (`HRD_BOT_LEADS`); `bot.safety.ladder` says when,
per urgency. A case climbs only while it is `new`: acknowledging, claiming, assigning or
closing it stops the climb at once, since each step re-reads the case in the
transaction that records it.

Exactly once across restarts: a step's row (`escalation_steps`, keyed by case and step)
is written in the transaction that queues its messages in the outbox, so a step is
recorded with its messages or not at all, and never taken twice; a step missed while the
bot was down is taken at the next tick. In that transaction the staff rooms are told
which tier is being told, and which chats (by number and platform, never by name). Once
a chat's outbox row settles, the staff rooms hear whether it was reached, and why not;
that notice is queued in one transaction with marking it told, so it too comes once,
and a restart finishes what was left. A tier without a chat is said so plainly.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bot.cases.casework import Casework
from bot.cases.words import Climb, Reached, StaffWords
from bot.delivery import Outcome, Reason
from bot.delivery.outbox import Outbox, Staged
from bot.model import ChatRef, Reply
from bot.safety.ladder import DEFAULTS, Ladders
from bot.storage.database import Connection, Database

__all__ = ["TOLD_WITHIN", "Escalation", "Tier"]

log = logging.getLogger("hrd_bot.escalation")
TOLD_WITHIN = 8.0
"""Seconds to wait for the tier's chats before telling the staff rooms who has the
message; those still trying are reported when they settle."""


@dataclass(frozen=True, slots=True)
class Tier:
    """The chats of one tier, and the setting listing them."""

    chats: tuple[ChatRef, ...]
    setting: str


@dataclass(slots=True)
class _Step:
    """What one transaction queued: the tier's messages (with their chat numbers) and
    the staff rooms' notices."""

    pages: list[tuple[int, Staged]] = field(default_factory=list)
    notices: list[Staged] = field(default_factory=list)


class Escalation:
    """Takes the steps that are due (`tick`, run every minute by `bot.safety.jobs`)."""

    def __init__(
        self,
        db: Database,
        outbox: Outbox,
        words: StaffWords,
        staff_rooms: tuple[ChatRef, ...],
        *,
        oncall: tuple[ChatRef, ...] = (),
        leads: tuple[ChatRef, ...] = (),
        ladders: Ladders = DEFAULTS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db, self._outbox, self._words = db, outbox, words
        self._rooms = staff_rooms
        self.tiers = {
            2: Tier(oncall, "HRD_BOT_ONCALL"),
            3: Tier(leads, "HRD_BOT_LEADS"),
        }
        self.ladders = ladders
        self._clock = clock

    @classmethod
    def of(
        cls,
        db: Database,
        casework: Casework,
        *,
        leads: tuple[ChatRef, ...] = (),
        ladders: Ladders = DEFAULTS,
        clock: Callable[[], float] = time.time,
    ) -> Escalation:
        """Tiers 1 and 2 as casework knows them (staff rooms, on-call), `leads` as tier 3."""
        return cls(
            db,
            casework.outbox,
            casework.words,
            casework.staff_rooms,
            oncall=casework.oncall,
            leads=leads,
            ladders=ladders,
            clock=clock,
        )

    async def tick(self) -> int:
        """Take every step whose time has come; report settled ones. Returns steps taken."""
        now = int(self._clock())
        waiting = await self._db.run(_waiting)
        taken = 0
        for case_id, urgency, start, base, first in waiting:
            if self.ladders.of(urgency).due(first - base, now - start):
                taken += await self._take(case_id, now)
        await self.report()
        return taken

    async def _take(self, case_id: str, now: int) -> int:
        step = _Step()

        def work(conn: Connection) -> int:
            step.pages.clear()
            step.notices.clear()
            found = conn.execute(_CLIMB + " WHERE id = ?", (case_id,)).fetchone()
            if found is None or found[0] != "new" or found[2] is None:
                return 0  # acknowledged, claimed, closed or purged meanwhile
            urgency = conn.unseal(_URGENCY, found[1]) or "normal"
            start, base = int(found[2]), int(found[3])
            ladder = self.ladders.of(urgency)
            due = ladder.due(_next_step(conn, case_id) - base, now - start)
            for index in due:
                tier = ladder.tier(index)
                chats = tuple((n, c.platform) for n, c in enumerate(self.tiers[tier].chats, 1))
                climb = Climb(
                    case_id, urgency, (now - start) // 60, tier, chats, self.tiers[tier].setting
                )
                self._queue(conn, step, climb, base + index, now)
            return len(due)

        taken = await self._db.transaction(work)
        sent = [self._outbox.launch(staged) for _, staged in step.pages]
        for notice in step.notices:
            self._outbox.launch(notice)
        if taken:
            log.warning("escalation: an unacknowledged case took %d step(s)", taken)
        if sent:
            self._outbox.after(self._follow(sent))
        return taken

    def _queue(
        self,
        conn: Connection,
        step: _Step,
        climb: Climb,
        index: int,
        now: int,
    ) -> None:
        """One step (its number, and the tier it reaches): the page to each chat of the
        tier, the notice to the staff rooms, and the step's row, all in the caller's
        transaction."""
        page = self._words.page(climb)
        targets: list[list[object]] = []
        for number, chat in enumerate(self.tiers[climb.tier].chats, 1):
            staged = self._outbox.stage(chat, page, kind="escalation", case_id=climb.case)
            staged.write(conn)
            step.pages.append((number, staged))
            targets.append([number, staged.row_id, chat.platform])
        self._notify(conn, step, self._words.climbing(climb), climb.case)
        conn.execute(
            "INSERT INTO escalation_steps (case_id, step, tier, at, targets, reported, open)"
            " VALUES (?, ?, ?, ?, ?, '[]', ?)",
            (climb.case, index, climb.tier, now, json.dumps(targets), int(bool(targets))),
        )

    def _notify(self, conn: Connection, step: _Step, notice: Reply, case_id: str) -> None:
        for room in self._rooms:
            staged = self._outbox.stage(room, notice, kind="reminder", case_id=case_id)
            staged.write(conn)
            step.notices.append(staged)

    async def _follow(self, sent: list[asyncio.Future[Outcome]]) -> None:
        """Report who was reached once the pages settle (first batch within `TOLD_WITHIN`)."""
        _, pending = await asyncio.wait(sent, timeout=TOLD_WITHIN)
        await self.report()
        if pending:
            await asyncio.wait(pending)
            await self.report()

    async def report(self) -> int:
        """Tell the staff rooms the outcome of every page that settled and was not yet
        reported; returns how many notices that made."""
        step = _Step()

        def work(conn: Connection) -> None:
            step.notices.clear()
            for case_id, index, tier, targets, reported in conn.execute(
                "SELECT case_id, step, tier, targets, reported FROM escalation_steps WHERE open = 1"
            ).fetchall():
                self._report_step(
                    conn, step, (str(case_id), int(index), int(tier)), targets, reported
                )

        await self._db.transaction(work)
        for notice in step.notices:
            self._outbox.launch(notice)
        return len(step.notices)

    def _report_step(
        self,
        conn: Connection,
        step: _Step,
        key: tuple[str, int, int],
        targets: str,
        reported: str,
    ) -> None:
        case_id, index, tier = key
        pages = [(int(n), int(row), str(p)) for n, row, p in json.loads(targets)]
        told = set(json.loads(reported))
        settled = _settled(conn, [row for n, row, _ in pages if n not in told])
        reached = [(n, p) for n, row, p in pages if settled.get(row, "") == "delivered"]
        missed = [
            (n, p, settled[row])
            for n, row, p in pages
            if settled.get(row, "delivered") != "delivered"
        ]
        if not reached and not missed:
            return
        notice = self._words.reached(Reached(case_id, tier, tuple(reached), tuple(missed)))
        self._notify(conn, step, notice, case_id)
        told |= {n for n, _ in reached} | {n for n, *_ in missed}
        conn.execute(
            "UPDATE escalation_steps SET reported = ?, open = ? WHERE case_id = ? AND step = ?",
            (json.dumps(sorted(told)), int(len(told) < len(pages)), case_id, index),
        )


_URGENCY = "cases.urgency"  # sealed on PostgreSQL, like `outbox.reason`
_CLIMB = "SELECT state, urgency, COALESCE(climb_from, submitted_at), climb_base FROM cases"
"""Where a case's climb starts: its submission, or the SOS that made it unacknowledged."""


def _waiting(conn: Connection) -> list[tuple[str, str | None, int, int, int]]:
    """Submitted cases nobody acknowledged: when their climb started, its first step's
    number, and the next step each may take."""
    rows = conn.execute(
        "SELECT id, urgency, COALESCE(climb_from, submitted_at), climb_base FROM cases"
        " WHERE state = 'new' AND submitted_at IS NOT NULL"
    ).fetchall()
    return [
        (str(c), conn.unseal(_URGENCY, u), int(at), int(b), _next_step(conn, str(c)))
        for c, u, at, b in rows
    ]


def _next_step(conn: Connection, case_id: str) -> int:
    row = conn.execute(
        "SELECT COALESCE(max(step), -1) FROM escalation_steps WHERE case_id = ?", (case_id,)
    ).fetchone()
    return int(row[0]) + 1


def _settled(conn: Connection, row_ids: list[int]) -> dict[int, str]:
    """For each settled outbox row: 'delivered', or why not. A row pruned meanwhile (a
    stop of over a week) is reported as unconfirmed."""
    if not row_ids:
        return {}
    marks = ",".join("?" * len(row_ids))
    found = {
        int(i): (str(s), conn.unseal("outbox.reason", r))
        for i, s, r in conn.execute(
            f"SELECT id, state, reason FROM outbox WHERE id IN ({marks})",  # noqa: S608
            row_ids,
        )
    }
    settled = {}
    for row_id in row_ids:
        state, reason = found.get(row_id, ("failed", Reason.UNCERTAIN.value))
        if state == "delivered":
            settled[row_id] = "delivered"
        elif state != "queued":
            settled[row_id] = str(reason or Reason.UNCERTAIN.value)
    return settled
