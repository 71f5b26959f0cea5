"""Schema versions: entry i moves the database from version i to i+1. Never edit a shipped one."""

from __future__ import annotations

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE settings (
        name TEXT PRIMARY KEY,
        value BLOB NOT NULL
    );
    CREATE TABLE sessions (
        user_key TEXT PRIMARY KEY,
        language TEXT,
        state TEXT NOT NULL,
        updated_at INTEGER NOT NULL
    );
    """,
)
