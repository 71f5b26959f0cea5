"""Conversation state per user, in the encrypted database, so a restart resumes every chat.

This module is the one writer of the `sessions` table: what drafts and retention change
in a session is done here too (`report_sent`, `let_go_of_draft`, `expire_reports`,
`delete_idle`), inside the caller's transaction."""

from __future__ import annotations

import asyncio
import json
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from bot.conversation.state import EXPIRED, SENT, Session
from bot.model import UserRef
from bot.storage.database import Connection, Database

__all__ = [
    "EXPIRED",
    "SENT",
    "Session",
    "SessionStore",
    "delete_idle",
    "draft_of",
    "expire_reports",
    "let_go_of_draft",
    "report_sent",
]

SaveRow = tuple[str, str | None, str, int]
EXPIRE_SQL = f"json_set(json_remove(state, '$.report'), '$.{EXPIRED}', json('true'))"
"""The same change in SQL, for retention's batches."""
_UPSERT_HEAD = "INSERT INTO sessions (user_key, language, state, updated_at) VALUES "
_UPSERT_TAIL = (
    " ON CONFLICT(user_key) DO UPDATE SET language = excluded.language, "
    "state = excluded.state, updated_at = excluded.updated_at"
)
_ROWS_PER_STATEMENT = 100  # 400 parameters: within every SQLite's limit (999)
_REPORTER_SESSION = (
    "WHERE user_key IN (SELECT user_key FROM case_reporters WHERE case_id = ?) "
    "AND json_extract(state, '$.report.case') = ?"
)
_LET_GO = "UPDATE sessions SET state = json_remove(state, '$.report') " + _REPORTER_SESSION  # noqa: S608
_SENT = (
    f"UPDATE sessions SET state = json_set(json_remove(state, '$.report'), '$.{SENT}', ?) "  # noqa: S608  (constant SQL)
    + _REPORTER_SESSION
)
_END_REFERENCES = (
    f"UPDATE sessions SET state = {EXPIRE_SQL} "  # noqa: S608  (constant SQL)
    "WHERE user_key IN (SELECT user_key FROM case_reporters WHERE case_id IN ({marks})) "
    "AND json_extract(state, '$.report.case') IN ({marks}) RETURNING user_key"
)


class SessionStore:
    """Loads and saves sessions; `forget` removes every row about a user.

    Saves always reach the database (a restart resumes every chat); loads are served from
    a bounded write-through cache, since the last save is what the database holds. Code
    that edits sessions in SQL (retention) must call `dropped` with the users it changed.

    A session pointing at an unsent report (`state["report"]["case"]`) is only written
    while that draft exists: a save racing retention's batch cannot bring back a reference
    to a purged draft; the session is marked `EXPIRED` instead.

    Saves made while one write is under way all go in the next write, as one statement
    (a group commit): each save still returns only once its row is written, but a busy
    bot pays one database trip for many users, not one each. The database thread's every
    trip takes the interpreter lock from the event loop several times, which costs the
    loop far more than the write itself.
    """

    def __init__(self, db: Database, cached: int = 20_000) -> None:
        self._db = db
        self._forgetters: list[str] = ["DELETE FROM sessions WHERE user_key = ?"]
        self._cache: OrderedDict[str, tuple[str | None, str]] = OrderedDict()
        self._cached = cached
        self._pending: list[tuple[SaveRow, str | None, asyncio.Future[None]]] = []
        self._writing: asyncio.Task[None] | None = None

    def dropped(self, keys: Iterable[str]) -> None:
        """These users' rows were changed or deleted in SQL: their cached copies go."""
        for key in keys:
            self._cache.pop(key, None)

    def _remember(self, key: str, language: str | None, payload: str) -> None:
        self._cache[key] = (language, payload)
        self._cache.move_to_end(key)
        if len(self._cache) > self._cached:
            self._cache.popitem(last=False)

    def also_forget(self, statement: str) -> None:
        """Register a DELETE (one `?` for the user key) that `/forget` must run too."""
        self._forgetters.append(statement)

    async def load(self, user: UserRef) -> Session:
        if (hit := self._cache.get(user.key)) is not None:
            return Session(user=user, language=hit[0], state=json.loads(hit[1]), known=True)

        def read(conn: Connection) -> tuple[str | None, str] | None:
            row = conn.execute(
                "SELECT language, state FROM sessions WHERE user_key = ?", (user.key,)
            ).fetchone()
            return None if row is None else (row[0], str(row[1]))

        found = await self._db.run(read)
        if found is None:
            return Session(user=user)
        self._remember(user.key, *found)
        return Session(user=user, language=found[0], state=json.loads(found[1]), known=True)

    async def save(self, session: Session) -> None:
        """Written through before the reply leaves; a save that changes nothing is skipped."""
        payload = json.dumps(session.state, separators=(",", ":"), ensure_ascii=False)
        if self._cache.get(session.user.key) == (session.language, payload):
            return
        row = (session.user.key, session.language, payload, int(time.time()))
        loop = asyncio.get_running_loop()
        written: asyncio.Future[None] = loop.create_future()
        self._pending.append((row, draft_of(session.state), written))
        if self._writing is None or self._writing.done():
            self._writing = loop.create_task(self._write_pending())
        await written
        session.known = True

    async def _write_pending(self) -> None:
        """Write what is pending, again and again until nothing is; every save waiting
        learns how its write went (all of one write succeed or fail together)."""
        while self._pending:
            batch, self._pending = self._pending, []
            rows = [(row, draft) for row, draft, _ in batch]
            try:
                saved = await self._db.run(_upsert(rows))
            except Exception as exc:  # these saves fail; the next ones get their own write
                for _, _, written in batch:
                    if not written.done():
                        written.set_exception(exc)
                continue
            except BaseException:  # cancelled: nobody would write what is still waiting
                for _, _, written in batch + self._pending:
                    written.cancel()
                self._pending = []
                raise
            for key, language, payload, _ in saved:
                self._remember(key, language, payload)
            for _, _, written in batch:
                if not written.done():
                    written.set_result(None)

    async def forget(self, user: UserRef) -> None:
        self._cache.pop(user.key, None)
        statements = tuple(self._forgetters)

        def erase(conn: Connection) -> None:
            for statement in statements:
                conn.execute(statement, (user.key,))

        await self._db.transaction(erase, durable=True)  # "erased" must stay true


def report_sent(conn: Connection, case_id: str) -> None:
    """The reporter's session lets go of the submitted draft and carries `SENT` instead."""
    conn.execute(_SENT, (case_id, case_id, case_id))


def let_go_of_draft(conn: Connection, case_id: str) -> None:
    """The reporter's session lets go of a discarded draft."""
    conn.execute(_LET_GO, (case_id, case_id))


def expire_reports(conn: Connection, case_ids: Sequence[str]) -> list[str]:
    """Sessions pointing at these purged drafts are marked `EXPIRED`; their users' keys
    (cached copies must be `dropped`)."""
    marks = ", ".join("?" * len(case_ids))
    found = conn.execute(_END_REFERENCES.format(marks=marks), [*case_ids, *case_ids])
    return [str(row[0]) for row in found.fetchall()]


def delete_idle(conn: Connection, before: int, size: int) -> list[str]:
    """Up to `size` sessions untouched since `before` are deleted; their users' keys."""
    found = conn.execute(
        "DELETE FROM sessions WHERE user_key IN "
        "(SELECT user_key FROM sessions WHERE updated_at < ? LIMIT ?) RETURNING user_key",
        (before, size),
    )
    return [str(row[0]) for row in found.fetchall()]


def draft_of(state: dict[str, Any]) -> str | None:
    """The unsent report a session points at, if any."""
    report = state.get("report")
    case = report.get("case") if isinstance(report, dict) else None
    return case if isinstance(case, str) else None


def _expired(payload: str) -> str:
    state = json.loads(payload)
    state.pop("report", None)
    state[EXPIRED] = True
    return json.dumps(state, separators=(",", ":"), ensure_ascii=False)


def _settle_drafts(conn: Connection, rows: list[tuple[SaveRow, str | None]]) -> list[SaveRow]:
    """Rows as they may be written: a reference to a draft that is gone becomes `EXPIRED`."""
    drafts = {draft for _, draft in rows if draft is not None}
    gone = {
        d
        for d in drafts
        if conn.execute("SELECT 1 FROM cases WHERE id = ?", (d,)).fetchone() is None
    }
    return [
        (key, language, _expired(payload) if draft in gone else payload, at)
        for (key, language, payload, at), draft in rows
    ]


def _upsert(pending: list[tuple[SaveRow, str | None]]) -> Callable[[Connection], list[SaveRow]]:
    """All rows in one transaction, as few statements as the parameter limit allows;
    a user saved twice keeps the later state (rows are inserted in order). Returns the
    rows as written."""

    def write(conn: Connection) -> list[SaveRow]:
        rows = _settle_drafts(conn, pending)
        chunks = [
            rows[start : start + _ROWS_PER_STATEMENT]
            for start in range(0, len(rows), _ROWS_PER_STATEMENT)
        ]
        if len(chunks) > 1:
            conn.execute("BEGIN IMMEDIATE")
        try:
            for chunk in chunks:
                values = ", ".join(["(?, ?, ?, ?)"] * len(chunk))
                args = [value for row in chunk for value in row]
                conn.execute(_UPSERT_HEAD + values + _UPSERT_TAIL, args)
        except BaseException:
            if len(chunks) > 1:
                conn.execute("ROLLBACK")
            raise
        if len(chunks) > 1:
            conn.execute("COMMIT")
        return rows

    return write
