"""Staff actions on submitted cases: the engine side of `handlers.ports.StaffDesk`.

Each action checks the case exists and is open, and is one audited transaction
(`CasesStore.record_action`). What staff rooms, on-call chats and reporters are told is
worded by `bot.cases.words.StaffWords` (in `handlers/`); this module says what happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from pathlib import Path

from bot.cases import staff_reads
from bot.cases.staff_languages import StaffLanguages
from bot.cases.store import SYSTEM, CasesStore, CaseStoreError
from bot.cases.thread import CaseThread
from bot.cases.views import CaseView, CaseworkError, Claimed
from bot.cases.words import Settled, StaffWords
from bot.content.library import Library
from bot.crypto.records import CaseMeta
from bot.delivery import Outcome, Reason
from bot.delivery.outbox import Deliver, Outbox
from bot.delivery.rows import Row, alerted_case
from bot.model import ChatRef, UserRef
from bot.storage.database import Connection, Database

__all__ = ["TOLD_WITHIN", "URGENCY_UP", "StaffActions"]

log = logging.getLogger("hrd_bot.casework")
TOLD_WITHIN = 8.0
"""Seconds a reporter's or staff member's answer waits to say truthfully that the team or
the on-call list was reached; after that it says the bot keeps trying (and the outbox
reports the end)."""
URGENCY_UP = {"normal": "high", "high": "critical", "critical": "critical"}


class StaffActions:
    """Checked, audited actions for staff; `bot.cases.casework.Casework` adds the reporter side."""

    def __init__(
        self,
        db: Database,
        library: Callable[[], Library],
        deliver: Deliver,
        outbox: Outbox,
        *,
        words: StaffWords,
        staff_rooms: tuple[ChatRef, ...] = (),
        oncall: tuple[ChatRef, ...] = (),
        exports: Path | None = None,
        staff_language: str = "en",
    ) -> None:
        self.store = CasesStore(db)
        self._db = db
        self._library = library
        self.deliver = deliver
        self.outbox = outbox
        self.after = outbox.after
        self.staff_rooms = staff_rooms
        self._oncall = oncall
        self._exports = exports
        self._staff_language = staff_language
        self.words = words
        self.staff_languages = StaffLanguages(db)
        self.thread = CaseThread(self.store, deliver, words, staff_rooms)

    @property
    def oncall(self) -> tuple[ChatRef, ...]:
        """The on-call chats: `/escalate` and escalation tier 2 (`bot.safety.escalation`)."""
        return self._oncall

    @property
    def alert_rooms(self) -> tuple[ChatRef, ...]:
        """Where alerts go: the staff rooms and the on-call list."""
        return self.staff_rooms + self._oncall

    @property
    def exports(self) -> Path | None:
        """The folder `/export` writes to; retention deletes what is there of purged cases."""
        return self._exports

    async def staff_label(self, user: UserRef) -> str | None:
        """Staff identities are stored as `platform:pseudonym`, the form of `UserRef.key`."""
        for member in await self.store.list_staff():
            if user.key in member.identities:
                return member.label
        return None

    async def _labels(self) -> dict[str, str]:
        labels = {SYSTEM: "bot"}
        for member in await self.store.list_staff(include_removed=True):
            labels.update(dict.fromkeys(member.identities, member.label))
        return labels

    async def _view(self, meta: CaseMeta, labels: Mapping[str, str] | None = None) -> CaseView:
        assignee = await self._db.run(lambda c: staff_reads.assignee(c, meta.id))
        history: tuple[tuple[int, str, str], ...] = ()
        if labels is not None:
            entries = await self.store.audit(meta.id)
            history = tuple((e.at, labels.get(e.actor, "?"), e.action) for e in entries)
        return CaseView(
            meta.id,
            meta.state,
            meta.country,
            meta.urgency,
            meta.created_at,
            meta.updated_at,
            assignee,
            history,
        )

    async def _meta(self, case_id: str, *, open_only: bool = True) -> CaseMeta:
        try:
            meta = await self.store.case(case_id)
        except CaseStoreError:
            raise CaseworkError("staff.no_case") from None
        if meta.state == "draft":
            raise CaseworkError("staff.no_case")
        if open_only and meta.state == "closed":
            raise CaseworkError("staff.closed")
        return meta

    async def open_cases(self) -> list[CaseView]:
        ids = await self._db.run(staff_reads.open_case_ids)
        return [await self._view(await self.store.case(i)) for i in ids]

    async def case(self, case_id: str) -> CaseView:
        return await self._view(await self._meta(case_id, open_only=False), await self._labels())

    async def _act(
        self,
        case_id: str,
        actor: UserRef,
        action: str,
        changes: Mapping[str, object] | None = None,
        item: tuple[str, bytes] | None = None,
    ) -> CaseMeta:
        """Staff actions need an open, submitted case; each is one audited transaction."""
        await self._meta(case_id)
        return await self.store.record_action(
            case_id, actor.key, action, changes=changes, item=item
        )

    async def acknowledge(self, case_id: str, actor: UserRef) -> None:
        changes = {"state": "acknowledged", "acknowledged_at": int(time.time())}
        await self._act(case_id, actor, "case.acknowledge", changes=changes)

    async def assign(self, case_id: str, actor: UserRef, assignee: str) -> None:
        members = {m.label.casefold(): m.label for m in await self.store.list_staff()}
        label = members.get(assignee.strip().casefold())
        if label is None:
            raise CaseworkError("staff.unknown_member")
        changes = {"state": "assigned", "assignee": label}
        await self._act(case_id, actor, "case.assign", changes=changes)

    async def alerted(self, room: ChatRef, alert: str) -> str | None:
        return await self._db.run(lambda c: alerted_case(c, room.platform, room.address, alert))

    async def claim(self, room: ChatRef, alert: str, actor: UserRef, label: str) -> Claimed | None:
        """The alert's case is read from the outbox row that delivered it, in the claim's
        own transaction; a message that is not one of the bot's alerts claims nothing
        (None: a 👍 on a colleague's message is no request to the bot)."""

        def find(conn: Connection) -> str | None:
            return alerted_case(conn, room.platform, room.address, alert)

        try:
            claim = await self.store.claim(find, actor.key, label)
        except CaseStoreError:
            raise CaseworkError("staff.no_case") from None
        if claim is None:
            log.info("a claim on a message that is no alert was ignored")
            return None
        if claim.closed:
            raise CaseworkError("staff.closed")
        log.info("a claim was %s", "won" if claim.won else "refused: the case is taken")
        return Claimed(claim.case_id, claim.won, claim.holder)

    async def escalate(self, case_id: str, actor: UserRef, room: ChatRef) -> tuple[str, str, str]:
        """The new urgency; `told` (with who has the message: the on-call chats by number),
        `trying` while none has it yet (the room hears the end), or `alone` when no
        on-call chat is configured."""
        meta = await self._meta(case_id)
        urgency = URGENCY_UP.get(meta.urgency or "normal", "high")
        await self._act(case_id, actor, "case.escalate", changes={"urgency": urgency})
        if not self._oncall:
            return urgency, "alone", ""
        notice = self.words.escalated(case_id, urgency)
        sent = {
            await self.deliver(chat, notice, kind="escalation", case_id=case_id): number
            for number, chat in enumerate(self._oncall, 1)
            if not _same_chat(chat, (room,))  # the room that asked reads its own answer
        }
        if sent:
            await asyncio.wait(sent, timeout=TOLD_WITHIN)
        told = [n for n, chat in enumerate(self._oncall, 1) if _same_chat(chat, (room,))]
        told += [n for f, n in sent.items() if f.done() and not f.cancelled() and _ok(f)]
        if not told:
            self.after(self._confirm_escalation(case_id, room, list(sent)))
            return urgency, "trying", ""
        who = self.words.oncall([(n, self._oncall[n - 1].platform) for n in sorted(told)])
        return urgency, "told", who

    async def _confirm_escalation(
        self, case_id: str, room: ChatRef, sent: list[asyncio.Future[Outcome]]
    ) -> None:
        outcomes = await asyncio.gather(*sent)
        arrived = any(o.delivered for o in outcomes)
        reasons = frozenset(o.reason.value for o in outcomes if o.reason is not None)
        said = self.words.settled(Settled(case_id, "escalation", arrived, reasons))
        await self.deliver(room, said, kind="notice", case_id=case_id)

    async def note(self, case_id: str, actor: UserRef, text: str) -> None:
        await self._act(case_id, actor, "case.note", item=("note", text.encode()))

    async def reply(self, case_id: str, actor: UserRef, text: str, room: ChatRef) -> None:
        """Queue the team's words for the reporter (in parts, each marked), and tell `room`
        "queued"; that notice becomes "delivered" or "not delivered: why" when it is
        known, and the case history records which."""
        if (await self._meta(case_id, open_only=False)).state == "closed":
            raise CaseworkError("staff.closed_reply")  # its link lost the chat address

        reporter = await self._db.run(lambda c: staff_reads.reporter_chat(c, case_id))
        if reporter is None:
            raise CaseworkError("staff.no_reporter")
        platform, chat, language, person = reporter
        await self._act(case_id, actor, "case.reply.queued", item=("reply", text.encode()))
        await self.thread.team_replied(case_id)
        parts = self.words.team_reply(language, text)
        target = ChatRef(platform, chat)
        sent = [
            await self.deliver(target, part, kind="reply", case_id=case_id, person=person)
            for part in parts
        ]
        queued = self.words.reply_queued(case_id, len(parts))
        notice = await self.deliver(room, queued, kind="notice", case_id=case_id)
        self.after(self._confirm_reply(case_id, actor, room, sent, notice))

    async def _confirm_reply(
        self,
        case_id: str,
        actor: UserRef,
        room: ChatRef,
        sent: list[asyncio.Future[Outcome]],
        queued: asyncio.Future[Outcome],
    ) -> None:
        """The history records delivered or failed (never "sent"); the room is told."""
        outcomes = await asyncio.gather(*sent)
        reasons = frozenset(o.reason.value for o in outcomes if o.reason is not None)
        if not reasons:
            await self.store.record_action(case_id, actor.key, "case.reply.delivered")
        else:
            detail = {"reason": ",".join(sorted(reasons))}
            await self.store.record_action(case_id, actor.key, "case.reply.failed", detail=detail)
        said = self.words.settled(Settled(case_id, "reply", not reasons, reasons))
        shown = (await queued).message_ids
        replaces = shown[-1] if shown else None
        await self.deliver(room, replace(said, replaces=replaces), kind="notice", case_id=case_id)

    async def lost(self, ended: list[tuple[Row, Reason]]) -> None:
        """After a restart: the team's replies a stop took (lost, or perhaps sent) are
        recorded as failed, with that reason."""
        replies = {(r.case_id, why.value) for r, why in ended if r.kind == "reply" and r.case_id}
        for case_id, reason in sorted(replies):
            with contextlib.suppress(CaseStoreError):
                await self.store.record_action(
                    str(case_id), SYSTEM, "case.reply.failed", detail={"reason": reason}
                )

    async def close(self, case_id: str, actor: UserRef, outcome: str) -> None:
        item = ("outcome", outcome.encode())
        await self._act(case_id, actor, "case.close", changes={"state": "closed"}, item=item)

    async def export(self, case_id: str, actor: UserRef) -> str:
        await self._meta(case_id, open_only=False)
        if self._exports is None:
            raise CaseworkError("staff.no_exports")
        bundle = await self.store.export_bundle(case_id, actor.key)
        path = self._exports / f"{case_id}.bundle.json"
        await asyncio.to_thread(_write_private, path, bundle.to_json())
        return path.name


def _ok(outcome: asyncio.Future[Outcome]) -> bool:
    return outcome.exception() is None and outcome.result().delivered


def _same_chat(chat: ChatRef, among: Iterable[ChatRef]) -> bool:
    return any((c.platform, c.address) == (chat.platform, chat.address) for c in among)


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
