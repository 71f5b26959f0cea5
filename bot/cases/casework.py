"""Risk reports and their triage: the engine side of `handlers.ports.CaseDesk` and `StaffDesk`.

Answers are sealed as they arrive (`CasesStore.add_item`). The plaintext of an unsent
report stays only in this process's memory, for the reporter's review screen and for
the alert: an end-to-end encrypted Matrix staff room gets the answers and files at
submission, a Telegram group only the case id, country, urgency and each file's kind
and size (`bot.cases.attachments`). A restart drops that memory;
the sealed copy is all that is kept, and retention (`forget_drafts`) drops it with the
draft.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import replace
from pathlib import Path

from bot.cases.attachments import HeldFiles
from bot.cases.staff_languages import StaffLanguages
from bot.cases.store import SYSTEM, CasesStore, CaseStoreError, Reporter
from bot.cases.thread import CaseThread
from bot.cases.views import CaseView, CaseworkError, Claimed
from bot.cases.words import CaseAlert, Settled, StaffWords
from bot.content.library import Library, Translator
from bot.crypto.records import CaseMeta
from bot.delivery import Outcome, Reason
from bot.delivery.outbox import Deliver, Outbox, Staged, any_delivered
from bot.delivery.rows import Row, alerted_case
from bot.model import ChatRef, UserRef
from bot.safety.sos import Sos
from bot.storage.database import Connection, Database

log = logging.getLogger("hrd_bot.casework")
TOLD_WITHIN = 8.0
"""Seconds a reporter's or staff member's answer waits to say truthfully that the team or
the on-call list was reached; after that it says the bot keeps trying (and the outbox
reports the end)."""
URGENCY_UP = {"normal": "high", "high": "critical", "critical": "critical"}


class Casework:
    """Drafts, submission and alerts for reporters; checked, audited actions for staff."""

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
        self._drafts: dict[str, dict[str, str]] = {}
        self._files = HeldFiles()
        self.thread = CaseThread(self.store, deliver, words, staff_rooms)
        self.sos = Sos(db, outbox, words, staff_rooms, told_within=TOLD_WITHIN)

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

    def forget_drafts(self, case_ids: Iterable[str]) -> None:
        """Retention deleted these drafts: their answers leave memory too."""
        for case_id in case_ids:
            self._drafts.pop(case_id, None)
            self._files.drop(case_id)

    def staff_translator(self) -> Translator:
        """The staff rooms' language: a room is read by the whole team."""
        return self._library().translator(self._staff_language)

    async def translator_for(self, user: UserRef) -> Translator:
        """A staff member's own language for answers to them, where they chose one."""
        member = await self._member(user)
        chosen = None if member is None else await self.staff_languages.get(member)
        return self._library().translator(chosen or self._staff_language)

    async def choose_language(self, user: UserRef, language: str) -> bool:
        """False when `user` is not on the staff list."""
        member = await self._member(user)
        if member is not None:
            await self.staff_languages.choose(member, language)
        return member is not None

    async def _member(self, user: UserRef) -> int | None:
        for member in await self.store.list_staff():
            if user.key in member.identities:
                return member.id
        return None

    # Reporter side (CaseDesk) -------------------------------------------------------

    async def open_draft(self, reporter: UserRef, chat: ChatRef, language: str) -> str | None:
        """None when no staff key and no recovery key exist: nobody could read the report."""
        link = Reporter(reporter.key, chat.platform, chat.address, language)
        try:
            case = await self.store.open_draft(link)
        except CaseStoreError:
            log.error("a report was refused: no staff and no recovery key are configured")
            return None
        self._drafts[case.id] = {}
        return case.id

    async def record(self, case_id: str, field: str, data: bytes) -> None:
        """Each field of a draft holds the reporter's last word on it (see `add_item`)."""
        with _draft_gone():
            await self.store.add_item(case_id, field, data, replace=True)
        if field.startswith("answer."):
            self._drafts.setdefault(case_id, {})[field] = data.decode("utf-8", errors="replace")
        self._files.note(case_id, field, data)

    async def route(
        self, case_id: str, *, country: str | None = None, urgency: str | None = None
    ) -> None:
        changes = {k: v for k, v in (("country", country), ("urgency", urgency)) if v}
        with _draft_gone():
            await self.store.record_action(case_id, SYSTEM, "case.route", changes=changes)

    def peek(self, case_id: str) -> Mapping[str, str] | None:
        return self._drafts.get(case_id)

    async def discard(self, case_id: str) -> None:
        """The draft goes at once from the WAL too, not at the next checkpoint: a
        cancelled report must leave no copy of its reporter link behind."""
        await self.store.delete_draft(case_id)
        await self._db.truncate_wal()
        self._drafts.pop(case_id, None)
        self._files.drop(case_id)

    async def submit(self, case_id: str) -> bool:
        """True once a staff room has the alert (within `TOLD_WITHIN`); until then, or if
        none can be reached, the outbox goes on trying and tells the other rooms.

        The alerts are queued in the submission's own transaction, so a case is never
        submitted without them, nor alerted twice."""
        files = tuple(self._files.peek(case_id))
        staged: list[Staged] = []

        def alert(conn: Connection, case: CaseMeta) -> None:
            unknown = _sealed_files(conn, case.id) - len(files)
            said = CaseAlert(case.id, case.urgency, case.country, files, unknown)
            for room in self.staff_rooms:
                offer = self.words.alert(said, room)
                staged.append(self.outbox.stage(room, offer, kind="alert", case_id=case.id))
                staged[-1].write(conn)

        with _draft_gone():
            submitted = await self.store.submit(case_id, then=alert)
        if not submitted.first:
            return True  # pressed twice: the first press alerted
        alerts = [self.outbox.launch(one) for one in staged]
        answers = self._drafts.pop(case_id, None)
        relay = self.words.files(case_id, self._files.pop(case_id))
        log.info("case submitted; alerting %d staff rooms", len(self.staff_rooms))
        for room in (r for r in self.staff_rooms if r.encrypted):
            if answers:
                said = self.words.answers(answers)
                await self.deliver(room, said, kind="answers", case_id=case_id)
            if relay is not None:
                await self.deliver(room, relay, kind="files", case_id=case_id)
        return await any_delivered(alerts, TOLD_WITHIN)

    # Staff side (StaffDesk) ---------------------------------------------------------

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

    async def _assignee(self, case_id: str) -> str | None:
        def read(conn: Connection) -> str | None:
            found = conn.execute("SELECT assignee FROM cases WHERE id = ?", (case_id,)).fetchone()
            return None if found is None else found[0]

        return await self._db.run(read)

    async def _view(self, meta: CaseMeta, labels: Mapping[str, str] | None = None) -> CaseView:
        assignee = await self._assignee(meta.id)
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
        def ids(conn: Connection) -> list[str]:
            rows = conn.execute(
                "SELECT id FROM cases WHERE state NOT IN ('draft', 'closed') "
                "ORDER BY CASE urgency WHEN 'critical' THEN 0 WHEN 'high' THEN 1 ELSE 2 END, "
                "created_at"
            )
            return [r[0] for r in rows]

        return [await self._view(await self.store.case(i)) for i in await self._db.run(ids)]

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

        def read(conn: Connection) -> tuple[str, str, str, str] | None:
            row = conn.execute(
                "SELECT platform, chat, language, user_key FROM case_reporters "
                "WHERE case_id = ? AND chat != ''",
                (case_id,),
            ).fetchone()
            return None if row is None else (str(row[0]), str(row[1]), str(row[2]), str(row[3]))

        reporter = await self._db.run(read)
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


def _sealed_files(conn: Connection, case_id: str) -> int:
    """How many files the sealed case holds: memory misses those sent before a restart."""
    row = conn.execute(
        "SELECT count(*) FROM case_items WHERE case_id = ? AND field LIKE 'attachment.%'",
        (case_id,),
    ).fetchone()
    return int(row[0])


def _ok(outcome: asyncio.Future[Outcome]) -> bool:
    return outcome.exception() is None and outcome.result().delivered


def _same_chat(chat: ChatRef, among: Iterable[ChatRef]) -> bool:
    return any((c.platform, c.address) == (chat.platform, chat.address) for c in among)


@contextlib.contextmanager
def _draft_gone() -> Iterator[None]:
    """A draft purged by retention (or removed by an admin) ends the interview politely."""
    try:
        yield
    except CaseStoreError:
        raise CaseworkError("report.expired") from None


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
