"""A reporter's thread with the protection team once the report is sent.

What a reporter writes (text, or a file within the report limit) is sealed to the case
key as it arrives, in one audited action (`reporter.message`, `reporter.file`), so staff
see it in `/case` history. A closed case takes it too and stays closed: staff are told
it is closed, and decide. Staff rooms are told each time: an end-to-end encrypted room
whose members are all staff (`ChatRef.encrypted`) gets the words, relayed from this
process's memory as they arrive (never read back from storage); any other room gets
only "new message on HRD-…".

Which reporter the team wrote to last is kept in memory (read once from the audit trail,
then kept current by `team_replied`), so what a reporter types after a team reply can be
taken as their answer without a database trip for every message anyone sends.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from bot.cases.store import SYSTEM, CasesStore, CaseStoreError
from bot.cases.views import TeamWrote, ThreadCase
from bot.cases.words import Relay, StaffWords
from bot.delivery.outbox import Deliver
from bot.model import Attachment, ChatRef, Reply, UserRef
from bot.storage.database import Connection

__all__ = ["PLAIN_STATES", "CaseThread", "plain_state"]

log = logging.getLogger("hrd_bot.thread")
PLAIN_STATES = {
    "new": "received",
    "acknowledged": "handling",
    "assigned": "handling",
    "closed": "closed",
}
_MINE = (
    "SELECT c.id, c.state FROM case_reporters r JOIN cases c ON c.id = r.case_id "
    "WHERE r.user_key = ? AND c.state != 'draft'"
)
_LATEST = _MINE + " ORDER BY COALESCE(c.submitted_at, c.created_at) DESC, c.seq DESC LIMIT 1"
_ONE = _MINE + " AND c.id = ?"
_REPLIES = (
    "SELECT r.user_key, a.case_id, MAX(a.at) FROM audit a "
    "JOIN case_reporters r ON r.case_id = a.case_id "
    "WHERE a.action LIKE 'case.reply%' GROUP BY r.user_key, a.case_id ORDER BY 3, 2"
)


def plain_state(state: str) -> str:
    """What a reporter is told: received, someone is handling it, or closed."""
    return PLAIN_STATES.get(state, "received")


class CaseThread:
    """Implements `handlers.ports.ThreadDesk`; `team_replied` is called by `/reply`.
    What staff rooms are told is worded by `words` (`bot.cases.words`)."""

    def __init__(
        self,
        store: CasesStore,
        deliver: Deliver,
        words: StaffWords,
        staff_rooms: tuple[ChatRef, ...] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._db = store.database
        self._deliver = deliver
        self._words = words
        self._staff_rooms = staff_rooms
        self._clock = clock
        self._replies: dict[str, TeamWrote] | None = None
        self._loading = asyncio.Lock()

    # What the reporter may know ---------------------------------------------------

    async def latest(self, user: UserRef) -> ThreadCase | None:
        return await self._read(_LATEST, (user.key,))

    async def status(self, user: UserRef, case_id: str) -> ThreadCase | None:
        """None unless the case is this reporter's, sent, and still kept."""
        return await self._read(_ONE, (user.key, case_id))

    async def _read(self, query: str, args: tuple[str, ...]) -> ThreadCase | None:
        def read(conn: Connection) -> ThreadCase | None:
            row = conn.execute(query, args).fetchone()
            return None if row is None else ThreadCase(str(row[0]), plain_state(str(row[1])))

        return await self._db.run(read)

    # Team replies -----------------------------------------------------------------

    async def team_wrote(self, user: UserRef) -> TeamWrote | None:
        return (await self._team_replies()).get(user.key)

    async def team_replied(self, case_id: str) -> None:
        """The team just wrote to this case's reporter: their next words answer it."""
        replies = await self._team_replies()

        def reporter(conn: Connection) -> str | None:
            row = conn.execute(
                "SELECT user_key FROM case_reporters WHERE case_id = ?", (case_id,)
            ).fetchone()
            return None if row is None else str(row[0])

        if (key := await self._db.run(reporter)) is not None:
            replies[key] = TeamWrote(case_id, int(self._clock() * 1000))

    async def _team_replies(self) -> dict[str, TeamWrote]:
        """Read once: the audit trail has seconds, so a reply from before a restart counts
        from the start of its second (one the reporter saw in that second stays seen)."""
        async with self._loading:
            if self._replies is None:

                def read(conn: Connection) -> dict[str, TeamWrote]:
                    """Per reporter and case, oldest first: each reporter keeps the latest."""
                    rows = conn.execute(_REPLIES).fetchall()
                    return {str(k): TeamWrote(str(c), int(at) * 1000) for k, c, at in rows}

                self._replies = await self._db.run(read)
            return self._replies

    def forget(self, user: UserRef) -> None:
        if self._replies is not None:
            self._replies.pop(user.key, None)

    # What the reporter writes -----------------------------------------------------

    async def write(self, user: UserRef, case_id: str, text: str) -> ThreadCase | None:
        case = await self.status(user, case_id)
        if case is None or not await self._seal(case, "reporter.message", "message", text.encode()):
            return None
        await self._relay(case, text)
        return case

    async def send_file(
        self, user: UserRef, case_id: str, attachment: Attachment, caption: str
    ) -> ThreadCase | None:
        """The file is sealed as a report's attachment is ("type\\nname\\n" + bytes); its
        caption, if any, as a message right after it."""
        case = await self.status(user, case_id)
        if case is None or attachment.data is None:
            return None
        header = f"{attachment.media_type}\n{attachment.name}\n".encode()
        if not await self._seal(case, "reporter.file", "message_file", header + attachment.data):
            return None
        if caption and not await self._seal(case, "reporter.message", "message", caption.encode()):
            return None
        await self._relay(case, caption, (attachment.media_type, attachment.size))
        return case

    async def _seal(self, case: ThreadCase, action: str, field: str, data: bytes) -> bool:
        try:
            await self._store.record_action(case.id, SYSTEM, action, item=(field, data))
        except CaseStoreError:  # purged a moment ago: nothing was sealed
            return False
        return True

    async def _relay(
        self, case: ThreadCase, words: str, file: tuple[str, int] | None = None
    ) -> None:
        """Every staff room is told; only an encrypted all-staff room gets the content."""
        relayed = self._words.relay(Relay(case.id, words, "thread", closed=case.closed, file=file))
        log.info("reporter message sealed; telling %d staff rooms", len(self._staff_rooms))
        for room in self._staff_rooms:
            await self._tell(room, relayed.notice, "notice", case.id)
            if room.encrypted:
                for part in relayed.parts:
                    await self._tell(room, part, "relay", case.id)

    async def _tell(self, room: ChatRef, reply: Reply, kind: str, case_id: str) -> None:
        """Queued for the outbox, which retries and reports; the message is sealed
        whatever happens here, so a failure to queue must not make the reporter think
        it was lost (and send it twice)."""
        try:
            await self._deliver(room, reply, kind=kind, case_id=case_id)
        except Exception as exc:  # storage failing under the queue, not the reporter's
            log.warning("a staff room was not told of a reporter message (%s)", type(exc).__name__)
