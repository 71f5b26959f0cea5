"""SOS: "I am in danger now", the engine side of `handlers.ports.SosDesk`.

One press after a confirmation raises an urgent alert at once, in one durable
transaction: with no open case it opens one (a draft, made critical, its SOS sealed,
submitted), with an open case it makes that case critical; the audit entry that records
it, and the staff rooms' alerts (`Outbox.stage`), are written in the same transaction,
so a kill leaves either a critical case with its alerts queued or nothing at all.

What follows (a one-line message, a shared location) is sealed to the case as it
arrives. Staff rooms are told that it came, never what it is; an end-to-end encrypted
room whose members are all staff also gets it, quoted (`handlers.staff_text.framed`).
Every SOS message is `urgent`: ahead of all others in the outbox lanes and the
Telegram transport, and outside the flood guard's ordinary bucket (`handlers.sos.urgent`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from bot.cases import drafts, rows
from bot.cases.store import SYSTEM, CaseStoreError, Reporter
from bot.cases.views import SosRaised
from bot.cases.words import Relay, SosAlert, StaffWords
from bot.crypto.records import CaseMeta
from bot.delivery import Outcome
from bot.delivery.outbox import Outbox, Staged, any_delivered
from bot.model import ChatRef, Location, UserRef
from bot.storage.database import Connection, Database

__all__ = ["KIND", "Sos"]

log = logging.getLogger("hrd_bot.sos")
KIND = "sos"
"""The outbox kind of every SOS message: the outbox sends it first, after a restart too."""
MESSAGE_FIELD = "sos.message"
LOCATION_FIELD = "sos.location"
_OPEN_CASE = (
    "SELECT c.id FROM case_reporters r JOIN cases c ON c.id = r.case_id "
    "WHERE r.user_key = ? AND c.state IN ('new', 'acknowledged', 'assigned') "
    "ORDER BY COALESCE(c.submitted_at, c.created_at) DESC, c.seq DESC LIMIT 1"
)
_RAISED = "SELECT count(*) FROM audit WHERE case_id = ? AND action = 'case.sos'"
_ALERTED = "SELECT 1 FROM outbox WHERE case_id = ? AND kind = 'sos' AND state = 'delivered' LIMIT 1"
_MINE = (
    "SELECT 1 FROM case_reporters r JOIN cases c ON c.id = r.case_id "
    "WHERE r.user_key = ? AND c.id = ? AND c.state != 'draft'"
)


class Sos:
    """Implements `handlers.ports.SosDesk` over the cases store and the outbox."""

    def __init__(
        self,
        db: Database,
        outbox: Outbox,
        words: StaffWords,
        staff_rooms: tuple[ChatRef, ...],
        *,
        told_within: float = 8.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = db
        self._outbox = outbox
        self._words = words
        self._rooms = staff_rooms
        self.told_within = told_within
        self._clock = clock

    async def ready(self) -> bool:
        """Whether an SOS can reach anyone: a staff room is configured, and someone
        (staff or recovery) could read the case."""
        return bool(self._rooms) and bool(await self._db.run(rows.current_recipients))

    async def raised(self, user: UserRef) -> int:
        def count(conn: Connection) -> int:
            found = conn.execute(_OPEN_CASE, (user.key,)).fetchone()
            return 0 if found is None else int(conn.execute(_RAISED, found).fetchone()[0])

        return await self._db.run(count)

    async def raise_alert(
        self,
        user: UserRef,
        chat: ChatRef,
        language: str,
        *,
        seen: int | None = None,
        duress: bool = False,
        within: Callable[[Connection, CaseMeta], None] | None = None,
    ) -> SosRaised | None:
        """None when reporting is not set up (no staff room, or no key to seal to).

        `seen`: see `handlers.ports.SosDesk.raise_alert`; a repeated press is answered with
        the SOS already raised (`told` once its alert was delivered). `duress`: a check-in
        answered with the duress word (`bot.safety.checkins`); the audit and the alert say so.
        `within` runs in the same transaction, given the case."""
        if not self._rooms:
            return None
        staged: list[Staged] = []
        now, action = int(self._clock()), "case.duress" if duress else "case.sos"
        repeated = False

        def work(conn: Connection) -> tuple[CaseMeta, bool]:
            nonlocal repeated
            found = conn.execute(_OPEN_CASE, (user.key,)).fetchone()
            if found is not None and seen is not None:
                repeated = int(conn.execute(_RAISED, found).fetchone()[0]) > seen
                if repeated:
                    return rows.case_meta(conn, str(found[0])), False
            if found is None:
                reporter = Reporter(user.key, chat.platform, chat.address, language)
                case = _open_critical(conn, now, reporter, action)
            else:
                case = _make_critical(conn, now, str(found[0]), action)
            if within is not None:
                within(conn, case)
            said = SosAlert(case.id, case.country, opened=found is None, duress=duress)
            staged.extend(self._stage_alerts(conn, said))
            return case, found is None

        try:
            case, opened = await self._db.transaction(work, durable=True)
        except CaseStoreError:
            log.error("an SOS could not open a case: no staff and no recovery key")
            return None
        if repeated:
            return await self._again(case)
        alerts = [self._outbox.launch(one) for one in staged]
        log.info("SOS raised (%s case); alerting %d staff rooms", _what(opened), len(alerts))
        return SosRaised(case.id, opened, case.country, await self._told(alerts))

    async def _again(self, case: CaseMeta) -> SosRaised:
        """A press repeated after its answer was lost: `told` once the first one's alert
        was delivered."""
        log.info("SOS pressed again after its answer was lost: no second alert")
        alerted = await self._db.run(lambda c: c.execute(_ALERTED, (case.id,)).fetchone())
        return SosRaised(case.id, False, case.country, "told" if alerted else "trying")

    def _stage_alerts(self, conn: Connection, said: SosAlert) -> list[Staged]:
        """Each staff room's alert, queued in the caller's transaction."""
        staged = []
        for room in self._rooms:
            alert = self._words.alert(said, room)
            staged.append(self._outbox.stage(room, alert, kind=KIND, case_id=said.case))
            staged[-1].write(conn)
        return staged

    async def add(
        self,
        user: UserRef,
        case_id: str,
        *,
        text: str | None = None,
        location: Location | None = None,
    ) -> str | None:
        """Seal a message or a location to the reporter's SOS case and tell the staff rooms;
        `told` or `trying` as for `SosRaised`; None if the case is not theirs (now)."""
        field, words = (
            (LOCATION_FIELD, location.geo) if location is not None else (MESSAGE_FIELD, text or "")
        )
        now = int(self._clock())
        notices, relays = self._relay(case_id, words, location is not None)

        def seal(conn: Connection) -> bool:
            if conn.execute(_MINE, (user.key, case_id)).fetchone() is None:
                return False
            rows.add_item(conn, now, case_id, field, words.encode())
            action = "sos.location" if location is not None else "sos.message"
            rows.append_audit(conn, now, SYSTEM, action, rows.case_meta(conn, case_id))
            for one in (*notices, *relays):
                one.write(conn)
            return True

        if not await self._db.transaction(seal, durable=True):
            return None
        told = [self._outbox.launch(one) for one in notices]
        for one in relays:
            self._outbox.launch(one)
        return await self._told(told)

    def _relay(self, case_id: str, words: str, place: bool) -> tuple[list[Staged], list[Staged]]:
        """Every staff room hears that something came; only an encrypted all-staff room
        gets what it is, quoted. Queued with the item, in its transaction, so a kill never
        keeps one without the other. The notices count for `told`, not the relays."""
        relayed = self._words.relay(Relay(case_id, words, "sos", place=place))
        notices, relays = [], []
        for room in self._rooms:
            notices.append(self._outbox.stage(room, relayed.notice, kind=KIND, case_id=case_id))
            if room.encrypted:
                for part in relayed.parts:
                    relays.append(self._outbox.stage(room, part, kind=KIND, case_id=case_id))
        return notices, relays

    async def _told(self, alerts: list[asyncio.Future[Outcome]]) -> str:
        """`told` once a staff room has it (within `told_within`), else `trying`."""
        return "told" if await any_delivered(alerts, self.told_within) else "trying"


_SEALED = {"case.sos": b"I am in danger now", "case.duress": b"duress word given at a check-in"}


def _open_critical(conn: Connection, now: int, reporter: Reporter, action: str) -> CaseMeta:
    """A draft through the report's own path, made critical, its SOS sealed, submitted."""
    draft = drafts.open_draft(conn, now, reporter)
    rows.make_critical(conn, draft.id)
    rows.add_item(conn, now, draft.id, KIND, _SEALED[action])
    drafts.submit(conn, now, draft.id, SYSTEM, None)
    case = rows.case_meta(conn, draft.id)
    rows.append_audit(conn, now, SYSTEM, action, case)
    return case


def _make_critical(conn: Connection, now: int, case_id: str, action: str) -> CaseMeta:
    """The open case becomes critical; the audit entry records it in the same transaction.
    A case someone acknowledged needs acknowledging again, and climbs the escalation
    tiers anew from now (`bot.safety.escalation`); one nobody acknowledged climbs on, faster."""
    rows.make_critical(conn, case_id, now)
    rows.add_item(conn, now, case_id, KIND, _SEALED[action])
    case = rows.case_meta(conn, case_id)
    rows.append_audit(conn, now, SYSTEM, action, case)
    return case


def _what(opened: bool) -> str:
    return "new" if opened else "open"
