"""Each staff member's own language for the bot's answers to their commands.

Messages to a whole staff room are in the room's language (`HRD_BOT_STAFF_LANGUAGE`);
a member who reads another language chooses it with `/language` (or the operator with
`hrd-bot staff language`). Only this module writes `staff_languages`.
"""

from __future__ import annotations

from bot.storage.database import Connection, Database

__all__ = ["StaffLanguages"]


class StaffLanguages:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, staff_id: int) -> str | None:
        def read(conn: Connection) -> str | None:
            row = conn.execute(
                "SELECT language FROM staff_languages WHERE staff_id = ?", (staff_id,)
            ).fetchone()
            return None if row is None else str(row[0])

        return await self._db.run(read)

    async def choose(self, staff_id: int, language: str | None) -> None:
        """`None` goes back to the staff rooms' language."""

        def write(conn: Connection) -> None:
            conn.execute("DELETE FROM staff_languages WHERE staff_id = ?", (staff_id,))
            if language is not None:
                conn.execute(
                    "INSERT INTO staff_languages (staff_id, language) VALUES (?, ?)",
                    (staff_id, language),
                )

        await self._db.transaction(write)
