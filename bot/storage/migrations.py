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
    """
    CREATE TABLE chat_messages (
        id INTEGER PRIMARY KEY,
        platform TEXT NOT NULL,
        chat TEXT NOT NULL,
        message_id TEXT NOT NULL,
        sent_at INTEGER NOT NULL,
        delete_at INTEGER
    );
    CREATE INDEX chat_messages_due ON chat_messages (delete_at) WHERE delete_at IS NOT NULL;
    CREATE INDEX chat_messages_chat ON chat_messages (platform, chat);
    """,
)
