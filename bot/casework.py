"""Risk reports and their triage: the engine side of `handlers.ports.CaseDesk` and `StaffDesk`.

Answers are sealed as they arrive (`CasesStore.add_item`). The plaintext of an unsent
report stays only in this process's memory, for the reporter's review screen and for
the alert: an end-to-end encrypted Matrix staff room gets the answers at submission,
a Telegram group only the case id, country and urgency. A restart drops that memory;
the sealed copy is all that is kept, and retention (`forget_drafts`) drops it with the
draft.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from pathlib import Path

from bot.cases_store import SYSTEM, CasesStore, CaseStoreError, Reporter
from bot.content.library import Library, Translator
from bot.crypto.records import CaseMeta
from bot.model import ChatRef, Reply, UserRef
from bot.storage.database import Connection, Database
from handlers.output import directed, paginate
from handlers.ports import CaseView, CaseworkError

log = logging.getLogger("hrd_bot.casework")
Deliver = Callable[[ChatRef, Reply], Awaitable[None]]
URGENCY_UP = {"normal": "high", "high": "critical", "critical": "critical"}
RELAY_CHARS = 3500
"""A team reply longer than this goes in parts, each marked, so no platform splits one
into a message without the "Protection team:" marker (Telegram's limit is 4,096)."""


class Casework:
    """Drafts, submission and alerts for reporters; checked, audited actions for staff."""

    def __init__(
        self,
        db: Database,
        library: Callable[[], Library],
        deliver: Deliver,
        *,
        staff_rooms: tuple[ChatRef, ...] = (),
        oncall: tuple[ChatRef, ...] = (),
        exports: Path | None = None,
        staff_language: str = "en",
    ) -> None:
        self.store = CasesStore(db)
        self._db = db
        self._library = library
        self.deliver = deliver
        self.staff_rooms = staff_rooms
        self._oncall = oncall
        self._exports = exports
        self._staff_language = staff_language
        self._drafts: dict[str, dict[str, str]] = {}

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

    def staff_translator(self) -> Translator:
        return self._library().translator(self._staff_language)

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

    async def route(
        self, case_id: str, *, country: str | None = None, urgency: str | None = None
    ) -> None:
        changes = {k: v for k, v in (("country", country), ("urgency", urgency)) if v}
        with _draft_gone():
            await self.store.record_action(case_id, SYSTEM, "case.route", changes=changes)

    def peek(self, case_id: str) -> Mapping[str, str] | None:
        return self._drafts.get(case_id)

    async def discard(self, case_id: str) -> None:
        await self.store.delete_draft(case_id)
        self._drafts.pop(case_id, None)

    async def submit(self, case_id: str) -> None:
        with _draft_gone():
            submitted = await self.store.submit(case_id)
        if not submitted.first:
            return
        case = submitted.case
        answers = self._drafts.pop(case_id, None)
        log.info("case submitted; alerting %d staff rooms", len(self.staff_rooms))
        t = self.staff_translator()
        head = Reply(
            t("staff.alert", case=case.id, urgency=case.urgency or "?", country=case.country or "?")
        )
        for room in self.staff_rooms:
            await self.deliver(room, head)
            if answers and room.encrypted:
                await self.deliver(room, self._answers(answers))

    def _answers(self, answers: Mapping[str, str]) -> Reply:
        """A message of its own: if a transport must withhold it, the alert still arrives."""
        t = self.staff_translator()
        questions = {q.id: q for q in t.interview().questions}
        lines = [t("staff.alert_answers")]
        for field, value in answers.items():
            question = questions.get(field.removeprefix("answer."))
            label = question.text.split("\n")[0] if question else field
            shown = question.choices.get(value, value) if question else value
            lines.append(f"• {label}\n  {shown}")
        return Reply("\n".join(lines), sensitive=True)

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

    async def escalate(self, case_id: str, actor: UserRef) -> tuple[str, bool]:
        meta = await self._meta(case_id)
        urgency = URGENCY_UP.get(meta.urgency or "normal", "high")
        await self._act(case_id, actor, "case.escalate", changes={"urgency": urgency})
        t = self.staff_translator()
        for chat in self._oncall:
            await self.deliver(chat, Reply(t("staff.escalated", case=case_id, urgency=urgency)))
        return urgency, bool(self._oncall)

    async def note(self, case_id: str, actor: UserRef, text: str) -> None:
        await self._act(case_id, actor, "case.note", item=("note", text.encode()))

    async def reply(self, case_id: str, actor: UserRef, text: str) -> None:
        await self._meta(case_id)

        def read(conn: Connection) -> tuple[str, str, str] | None:
            row = conn.execute(
                "SELECT platform, chat, language FROM case_reporters WHERE case_id = ?", (case_id,)
            ).fetchone()
            return None if row is None else (str(row[0]), str(row[1]), str(row[2]))

        reporter = await self._db.run(read)
        if reporter is None:
            raise CaseworkError("staff.no_reporter")
        platform, chat, language = reporter
        t = self._library().translator(language)
        parts = paginate(text, RELAY_CHARS)
        for number, part in enumerate(parts, 1):
            marked = t("report.from_team", text=part)
            if len(parts) > 1:
                marked += f" ({number}/{len(parts)})"
            reply = Reply(directed(marked, t.rtl), sensitive=True, rtl=t.rtl)
            await self.deliver(ChatRef(platform, chat), reply)
        await self._act(case_id, actor, "case.reply", item=("reply", text.encode()))

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

    def forget_statement(self) -> str:
        """For `/forget`: unlink the reporter from their cases (the sealed cases remain)."""
        return "DELETE FROM case_reporters WHERE user_key = ?"


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
