"""Risk reports: the engine side of `handlers.ports.CaseDesk` (staff actions are
`bot.cases.staff_actions`, which `Casework` extends: one object serves both desks).

Answers are sealed as they arrive (`CasesStore.add_item`). The plaintext of an unsent
report stays only in this process's memory, for the reporter's review screen and for
the alert: an end-to-end encrypted Matrix staff room gets the answers and files at
submission, a Telegram group only the case id, country, urgency and each file's kind
and size (`bot.cases.attachments`). A restart drops that memory;
the sealed copy is all that is kept, and retention (`forget_drafts`) drops it with the
draft.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path

from bot.cases.attachments import HeldFiles
from bot.cases.staff_actions import TOLD_WITHIN, StaffActions
from bot.cases.store import SYSTEM, CaseStoreError, Reporter
from bot.cases.views import CaseworkError
from bot.cases.words import CaseAlert, StaffWords
from bot.content.library import Library, Translator
from bot.crypto.records import CaseMeta
from bot.delivery.outbox import Deliver, Outbox, Staged, any_delivered
from bot.model import ChatRef, UserRef
from bot.safety.sos import Sos
from bot.storage.database import Connection, Database

__all__ = ["TOLD_WITHIN", "Casework"]

log = logging.getLogger("hrd_bot.casework")


class Casework(StaffActions):
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
        super().__init__(
            db,
            library,
            deliver,
            outbox,
            words=words,
            staff_rooms=staff_rooms,
            oncall=oncall,
            exports=exports,
            staff_language=staff_language,
        )
        self._drafts: dict[str, dict[str, str]] = {}
        self._files = HeldFiles()
        self.sos = Sos(db, outbox, words, staff_rooms, told_within=TOLD_WITHIN)

    def forget_drafts(self, case_ids: Iterable[str]) -> None:
        """Retention deleted these drafts: their answers leave memory too."""
        for case_id in case_ids:
            self._drafts.pop(case_id, None)
            self._files.drop(case_id)

    # Staff members' languages (`handlers.staff` answers each in theirs) ---------------

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


def _sealed_files(conn: Connection, case_id: str) -> int:
    """How many files the sealed case holds: memory misses those sent before a restart."""
    row = conn.execute(
        "SELECT count(*) FROM case_items WHERE case_id = ? AND field LIKE 'attachment.%'",
        (case_id,),
    ).fetchone()
    return int(row[0])


@contextlib.contextmanager
def _draft_gone() -> Iterator[None]:
    """A draft purged by retention (or removed by an admin) ends the interview politely."""
    try:
        yield
    except CaseStoreError:
        raise CaseworkError("report.expired") from None
