"""Conversation state per user, in the encrypted database, so a restart resumes every chat.

This module is the one writer of the `sessions` table: what drafts and retention change
in a session is done here too (`report_sent`, `let_go_of_draft`, `expire_reports`,
`delete_idle`), inside the caller's transaction.

`state` is sealed on PostgreSQL (`Connection.seal`), so SQL never looks inside it: every
save also writes `report_case`, the draft the state points at, and drafts find their
reporter's session by that column, then change the state in Python (read, edit, write
back, in the same transaction)."""

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
"""A session as saved: user key, language, state (JSON, plain), time."""
_STATE = "sessions.state"
_UPSERT_HEAD = "INSERT INTO sessions (user_key, language, state, report_case, updated_at) VALUES "
_UPSERT_TAIL = (
    " ON CONFLICT (user_key) DO UPDATE SET language = excluded.language, "
    "state = excluded.state, report_case = excluded.report_case, updated_at = excluded.updated_at"
)
_ROWS_PER_STATEMENT = 100  # 500 parameters: within every SQLite's limit (999)
_REPORTERS_OF = (
    "SELECT user_key, state, report_case FROM sessions "
    "WHERE report_case IN ({marks}) "
    "AND user_key IN (SELECT user_key FROM case_reporters WHERE case_id IN ({marks}))"
)
_REWRITE = "UPDATE sessions SET state = ?, report_case = NULL WHERE user_key = ?"


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
            return None if row is None else (row[0], conn.unseal(_STATE, str(row[1])))

        found = await self._db.run(read)
        if found is None:
            return Session(user=user)
        self._remember(user.key, *found)
        return Session(user=user, language=found[0], state=json.loads(found[1]), known=True)

    async def save(self, session: Session) -> None:
        """Written through before the reply leaves; a save that changes nothing is skipped."""
        payload = _dumps(session.state)
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
    _let_go(conn, [case_id], lambda state, case: state.__setitem__(SENT, case))


def let_go_of_draft(conn: Connection, case_id: str) -> None:
    """The reporter's session lets go of a discarded draft."""
    _let_go(conn, [case_id], lambda state, case: None)


def expire_reports(conn: Connection, case_ids: Sequence[str]) -> list[str]:
    """Sessions pointing at these purged drafts are marked `EXPIRED`; their users' keys
    (cached copies must be `dropped`)."""
    return _let_go(conn, case_ids, lambda state, case: state.__setitem__(EXPIRED, True))


def _let_go(
    conn: Connection, case_ids: Sequence[str], mark: Callable[[dict[str, Any], str], None]
) -> list[str]:
    """Reporters' sessions whose draft is one of `case_ids` drop it and get `mark`ed,
    read, changed and written back here (no JSON in SQL: PostgreSQL sees sealed text);
    the users' keys."""
    if not case_ids:
        return []
    marks = ", ".join("?" * len(case_ids))
    found = conn.execute(_REPORTERS_OF.format(marks=marks), [*case_ids, *case_ids])
    changed = []
    for key, sealed, case in found.fetchall():
        state = json.loads(conn.unseal(_STATE, str(sealed)))
        state.pop("report", None)
        mark(state, str(case))
        conn.execute(_REWRITE, (conn.seal(_STATE, _dumps(state)), key))
        changed.append(str(key))
    return changed


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


def _dumps(state: dict[str, Any]) -> str:
    return json.dumps(state, separators=(",", ":"), ensure_ascii=False)


def _expired(payload: str) -> str:
    state = json.loads(payload)
    state.pop("report", None)
    state[EXPIRED] = True
    return _dumps(state)


def _settle_drafts(conn: Connection, rows: list[tuple[SaveRow, str | None]]) -> list[SaveRow]:
    """Rows as they may be written, the last of each user only (one statement may not
    change a row twice in PostgreSQL): a reference to a draft that is gone becomes
    `EXPIRED`."""
    latest = list({row[0]: (row, draft) for row, draft in rows}.values())
    drafts = {draft for _, draft in latest if draft is not None}
    gone = {
        d
        for d in drafts
        if conn.execute("SELECT 1 FROM cases WHERE id = ?", (d,)).fetchone() is None
    }
    return [
        (key, language, _expired(payload) if draft in gone else payload, at)
        for (key, language, payload, at), draft in latest
    ]


def _upsert(pending: list[tuple[SaveRow, str | None]]) -> Callable[[Connection], list[SaveRow]]:
    """All rows in one transaction, as few statements as the parameter limit allows;
    a user saved twice keeps the later state. `report_case` is the state's draft, so
    drafts find their session without reading its (sealed) state. Returns the rows as
    written."""

    def write(conn: Connection) -> list[SaveRow]:
        rows = _settle_drafts(conn, pending)
        chunks = [
            rows[start : start + _ROWS_PER_STATEMENT]
            for start in range(0, len(rows), _ROWS_PER_STATEMENT)
        ]
        own = conn.sqlite and len(chunks) > 1  # PostgreSQL: every call is one transaction
        if own:
            conn.execute("BEGIN IMMEDIATE")
        try:
            for chunk in chunks:
                values = ", ".join(["(?, ?, ?, ?, ?)"] * len(chunk))
                args = [
                    value
                    for key, language, payload, at in chunk
                    for value in (
                        key,
                        language,
                        conn.seal(_STATE, payload),
                        draft_of(json.loads(payload)),
                        at,
                    )
                ]
                conn.execute(_UPSERT_HEAD + values + _UPSERT_TAIL, args)
        except BaseException:
            if own:
                conn.execute("ROLLBACK")
            raise
        if own:
            conn.execute("COMMIT")
        return rows

    return write
