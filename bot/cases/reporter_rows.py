"""The `case_reporters` table: each case's link to who wrote it. Only this module writes it.

The link holds the reporter's pseudonym key, platform, chat address and language; the chat
address goes when the case closes, and the whole link at `/forget` (the sealed case stays).
The address is sealed (`Connection.seal`); the empty text that replaces it is not, so
"no address" reads the same on either engine (`chat != ''`)."""

from __future__ import annotations

from bot.storage.database import Connection

__all__ = ["forget_statement", "let_go_of_reporter", "link_reporter"]


def let_go_of_reporter(conn: Connection, case_id: str) -> None:
    """A closed case keeps no way to reach its reporter: the link's chat address goes
    (the pseudonym key stays, so the reporter can still ask about it and write). The
    person's check-ins are theirs, not the case's: the caller unlinks them too
    (`bot.safety.checkin_rows.unlink_case`)."""
    conn.execute("UPDATE case_reporters SET chat = '' WHERE case_id = ?", (case_id,))


def link_reporter(conn: Connection, case_id: str, reporter: tuple[str, str, str, str]) -> None:
    """The case's link to who wrote it: pseudonym key, platform, chat address, language."""
    user_key, platform, chat, language = reporter
    conn.execute(
        "INSERT INTO case_reporters (case_id, user_key, platform, chat, language) "
        "VALUES (?, ?, ?, ?, ?)",
        (case_id, user_key, platform, conn.seal("case_reporters.chat", chat), language),
    )


def forget_statement() -> str:
    """For `/forget`: unlink the reporter from their cases (the sealed cases remain)."""
    return "DELETE FROM case_reporters WHERE user_key = ?"
