"""The PostgreSQL URL the commands read, and what the operator is told about it.

`HRD_BOT_DATABASE_URL` set means the database is PostgreSQL, shared by several workers;
unset, it is the SQLCipher file in the data folder. `hrd-bot data backup|restore` are
SQLCipher operations: on PostgreSQL the operator uses its own tools, and the text here
says how. What is printed never holds the URL's password (`postgres.redacted`).
"""

from __future__ import annotations

from bot.storage.faults import StorageError
from bot.storage.postgres import redacted

__all__ = ["URL_SETTING", "NotHereError", "backup_elsewhere", "restore_elsewhere"]

URL_SETTING = "HRD_BOT_DATABASE_URL"


class NotHereError(StorageError):
    """A SQLCipher operation asked of a PostgreSQL deployment; the message says what to do."""


def backup_elsewhere(url: str) -> NotHereError:
    return NotHereError(
        f"the database is PostgreSQL ({URL_SETTING}); back it up with PostgreSQL's own "
        f"tools, e.g. pg_dump --format=custom --file=BACKUP '{redacted(url)}' "
        "(the password from PGPASSFILE). The dump holds only sealed values: useless "
        "without the database key, so keep the key apart from it, and after a rekey the "
        "old dumps need the old key. Restore it with pg_restore (every worker stopped)."
    )


def restore_elsewhere(url: str) -> NotHereError:
    return NotHereError(
        f"the database is PostgreSQL ({URL_SETTING}); restore a pg_dump copy with "
        f"pg_restore --clean --if-exists --dbname='{redacted(url)}' BACKUP, every worker "
        "stopped (hrd-bot run), then start them with the key the dump was taken under."
    )
