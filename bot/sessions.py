"""Conversation state per user, in the encrypted database, so a restart resumes every chat."""

from __future__ import annotations

import json
import time
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
    """Loads and saves sessions; `forget` removes every row about a user."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._forgetters: list[str] = ["DELETE FROM sessions WHERE user_key = ?"]

    def also_forget(self, statement: str) -> None:
        """Register a DELETE (one `?` for the user key) that `/forget` must run too."""
        self._forgetters.append(statement)

    async def load(self, user: UserRef) -> Session:
        def read(conn: Connection) -> Session:
            row = conn.execute(
                "SELECT language, state FROM sessions WHERE user_key = ?", (user.key,)
            ).fetchone()
            if row is None:
                return Session(user=user)
            return Session(user=user, language=row[0], state=json.loads(row[1]), known=True)

        return await self._db.run(read)

    async def save(self, session: Session) -> None:
        payload = json.dumps(session.state, separators=(",", ":"), ensure_ascii=False)
        args = (session.user.key, session.language, payload, int(time.time()))

        def write(conn: Connection) -> None:
            conn.execute(
                "INSERT INTO sessions (user_key, language, state, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(user_key) DO UPDATE SET language = excluded.language, "
                "state = excluded.state, updated_at = excluded.updated_at",
                args,
            )

        await self._db.run(write)
        session.known = True

    async def forget(self, user: UserRef) -> None:
        statements = tuple(self._forgetters)

        def erase(conn: Connection) -> None:
            for statement in statements:
                conn.execute(statement, (user.key,))

        await self._db.transaction(erase)
