"""Every error hrd-bot raises on purpose, and who is told what.

All of them derive from `HrdBotError`, and every message is safe to print and to log: it
names a setting, a file, a line or a case reference, never a message, a name, a key or
a platform id. Anything else that escapes is a bug: the bot logs its type (not its text),
answers the person with `error.internal` and goes on; `hrd-bot` exits 70 (EX_SOFTWARE).

    HrdBotError
    ├── OperatorError         the operator must act; a restart alone cannot help (exit 2)
    │   ├── ConfigError       a setting is unknown, missing or malformed   (bot.config)
    │   ├── DbKeyError        the database key cannot be used               (bot.storage.dbkey)
    │   ├── WrongKeyError     the key does not open this database           (bot.storage.faults)
    │   ├── LockedError       another process holds the data folder         (bot.storage.lock)
    │   └── SyncStopped       the homeserver refused the bot's login         (bot.transports.matrix)
    ├── StorageError          the database cannot be read or written        (bot.storage.faults)
    │   ├── DamagedError      a truncated or corrupted file: restore a backup (exit 2)
    │   ├── StorageFullError  the disk is full: the person is told their message was not
    │   │                     kept; a restart may succeed once there is room (exit 75)
    │   ├── NewerSchemaError  written by a newer hrd-bot                    (exit 2)
    │   ├── BackupError       a backup, restore or rekey refused            (bot.storage.backup)
    │   ├── PgUnavailableError PostgreSQL unreachable, or it dropped the connection: the
    │   │                     call fails like a full disk; the next one reconnects
    │   ├── UnsealError       a PostgreSQL value this key did not seal, or one altered
    │   ├── InUseError        a PostgreSQL rekey refused while workers are connected (exit 2)
    │   └── NotHereError      a SQLCipher-only command asked of PostgreSQL: names pg_dump (exit 2)
    ├── ContentError          a content file cannot be used                 (bot.content)
    │   ├── SourceError       refused as it was read: `path:line: why`; the bot keeps its old
    │   │                     content, or does not start (exit 1)
    │   └── StampError        `content report --stamp` cannot stamp that file
    ├── CaseError             a request about cases refused
    │   ├── CaseStoreError    by the store, to the operator's `hrd-bot` command (exit 2)
    │   ├── CaseworkError     to a staff member, as a string key in their language
    │   └── SaveError         `cases open --save-files` saved nothing
    ├── CryptoError           keys, key files, bundles (bot.crypto.errors; exit 2)
    │   ├── KeyFormatError    a public key text or a key file's field is malformed
    │   ├── KeyFileError      a private key file cannot be written or opened
    │   └── BundleError       a case bundle or reseal file is malformed or does not open
    └── InternalSignal        raised and caught inside the bot; no person or operator sees one
        ├── Undelivered       a transport's send failed: the outbox retries or says why
        ├── NotSent           no byte of a Bot API request left (safe to retry)
        ├── Unreadable        an update the Bot API would never send: skipped, logged by kind
        └── LoaderFailed      the content loader process did not answer: a `Problem`
"""

from __future__ import annotations

__all__ = [
    "CaseError",
    "ContentError",
    "HrdBotError",
    "InternalSignal",
    "OperatorError",
]


class HrdBotError(Exception):
    """Base of every error hrd-bot raises on purpose; its message is safe to print."""


class OperatorError(HrdBotError):
    """A setting, key, lock or login the operator must fix."""


class ContentError(HrdBotError):
    """A content file cannot be used."""


class CaseError(HrdBotError):
    """A request about cases was refused."""


class InternalSignal(HrdBotError):
    """Raised and caught inside the bot, between its own layers."""
