"""Conversation state per user, in the encrypted database, so a restart resumes every chat."""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from bot.model import UserRef
from bot.storage.database import Connection, Database


@dataclass(slots=True)
class Session:
    """What the bot remembers about one user: language and where they are in a flow."""

    user: UserRef
    language: str | None = None
    state: dict[str, Any] = field(default_factory=dict)
    known: bool = False


class SessionStore:
    """Loads and saves sessions; `forget` removes every row about a user.

    Saves always reach the database (a restart resumes every chat); loads are served from
    a bounded write-through cache, since the last save is what the database holds. Code
    that edits sessions in SQL (retention) must call `invalidate`.
    """

    def __init__(self, db: Database, cached: int = 20_000) -> None:
        self._db = db
        self._forgetters: list[str] = ["DELETE FROM sessions WHERE user_key = ?"]
        self._cache: OrderedDict[str, tuple[str | None, str]] = OrderedDict()
        self._cached = cached

    def invalidate(self) -> None:
        self._cache.clear()

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
        args = (session.user.key, session.language, payload, int(time.time()))

        def write(conn: Connection) -> None:
            conn.execute(
                "INSERT INTO sessions (user_key, language, state, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(user_key) DO UPDATE SET language = excluded.language, "
                "state = excluded.state, updated_at = excluded.updated_at",
                args,
            )

        await self._db.run(write)
        self._remember(session.user.key, session.language, payload)
        session.known = True

    async def forget(self, user: UserRef) -> None:
        self._cache.pop(user.key, None)
        statements = tuple(self._forgetters)

        def erase(conn: Connection) -> None:
            for statement in statements:
                conn.execute(statement, (user.key,))

        await self._db.transaction(erase)
