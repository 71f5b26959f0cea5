"""Schema versions: entry i moves the database from version i to i+1. Never edit a shipped one."""

from __future__ import annotations

__all__ = ["MIGRATIONS"]

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
    # Sealed cases (bot/crypto, bot/cases/store.py). Content lives only in sealed blobs;
    # the server keeps public keys and routing metadata. The audit triggers stop the
    # program from rewriting history; they are no defence against someone with the key.
    """
    CREATE TABLE staff (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        label TEXT NOT NULL,
        identities TEXT NOT NULL,
        public_key TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        added_at INTEGER NOT NULL,
        removed_at INTEGER
    );
    CREATE UNIQUE INDEX staff_active_key ON staff (public_key) WHERE removed_at IS NULL;
    CREATE TABLE org_keys (
        name TEXT PRIMARY KEY CHECK (name = 'recovery'),
        public_key TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        set_at INTEGER NOT NULL
    );
    CREATE TABLE cases (
        id TEXT PRIMARY KEY,
        public_key BLOB NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        state TEXT NOT NULL,
        country TEXT,
        urgency TEXT
    );
    CREATE INDEX cases_state ON cases (state, updated_at);
    CREATE TABLE case_recipients (
        case_id TEXT NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
        recipient TEXT NOT NULL CHECK (recipient = 'recovery' OR recipient GLOB 'staff:[1-9]*'),
        fingerprint TEXT NOT NULL,
        sealed_key BLOB NOT NULL,
        PRIMARY KEY (case_id, recipient)
    );
    CREATE TABLE case_items (
        id INTEGER PRIMARY KEY,
        case_id TEXT NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
        field TEXT NOT NULL,
        seq INTEGER NOT NULL,
        sealed BLOB NOT NULL,
        created_at INTEGER NOT NULL,
        UNIQUE (case_id, field, seq)
    );
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at INTEGER NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        case_id TEXT,
        detail BLOB
    );
    CREATE INDEX audit_case ON audit (case_id) WHERE case_id IS NOT NULL;
    CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'audit rows are append-only'); END;
    CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'audit rows are append-only'); END;
    """,
    """
    ALTER TABLE cases ADD COLUMN assignee TEXT;
    ALTER TABLE cases ADD COLUMN submitted_at INTEGER;
    ALTER TABLE cases ADD COLUMN acknowledged_at INTEGER;
    ALTER TABLE cases ADD COLUMN reminded_at INTEGER;
    CREATE TABLE case_reporters (
        case_id TEXT PRIMARY KEY REFERENCES cases (id) ON DELETE CASCADE,
        user_key TEXT NOT NULL,
        platform TEXT NOT NULL,
        chat TEXT NOT NULL,
        language TEXT NOT NULL
    );
    CREATE INDEX case_reporters_user ON case_reporters (user_key);
    """,
    """
    CREATE TABLE checkins (
        user_key TEXT PRIMARY KEY,
        case_id TEXT NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
        platform TEXT NOT NULL,
        chat TEXT NOT NULL,
        every_s INTEGER NOT NULL,
        next_at INTEGER NOT NULL,
        asked_at INTEGER,
        alerted_at INTEGER
    );
    """,
    # Retention in short batches (bot/safety/retention.py): idle sessions found by age, and a
    # deleted case's check-ins found by index (ON DELETE CASCADE), never by a scan.
    """
    CREATE INDEX sessions_idle ON sessions (updated_at);
    CREATE INDEX checkins_case ON checkins (case_id);
    """,
    # Telegram update ids already taken (bot/transports/telegram/seen.py), so an update
    # delivered twice (a webhook retry, polling restarted before its offset was confirmed)
    # is handled once, across a restart too. `bot` is the bot account's own id.
    """
    CREATE TABLE telegram_updates (
        bot INTEGER NOT NULL,
        update_id INTEGER NOT NULL,
        seen_at INTEGER NOT NULL,
        PRIMARY KEY (bot, update_id)
    ) WITHOUT ROWID;
    CREATE INDEX telegram_updates_age ON telegram_updates (seen_at);
    """,
    # The outbox (bot/delivery): one row per message the bot starts and destination, with
    # its delivery state. `body` holds only non-sensitive text (alerts, notices); the
    # content of a sensitive message never reaches the disk. `person` is the user key of
    # a reporter it is addressed to, so `/forget` takes it too.
    """
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY,
        platform TEXT NOT NULL,
        address TEXT NOT NULL,
        private INTEGER NOT NULL,
        encrypted INTEGER NOT NULL,
        kind TEXT NOT NULL,
        case_id TEXT,
        person TEXT,
        body TEXT,
        state TEXT NOT NULL CHECK (state IN ('queued', 'delivered', 'failed')),
        reason TEXT,
        message_ids TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE INDEX outbox_queued ON outbox (state, updated_at);
    CREATE INDEX outbox_person ON outbox (person) WHERE person IS NOT NULL;
    """,
    # Crash-exact drafts (bot/cases/drafts.py): a case is now born a draft, linked to its
    # reporter in the same transaction. Before, a kill between the three steps left an
    # `open` case with no items that staff saw in /cases and retention never purged: such
    # never-submitted cases become drafts, which staff never see and retention deletes.
    """
    UPDATE cases SET state = 'draft' WHERE state = 'open' AND submitted_at IS NULL;
    """,
    # Tamper-evident case logs (bot/crypto/caselog.py). A case's `log_key` is the link key
    # of its log's next position `log_next`, replaced as it is used (NULL: a case made
    # before, which keeps no log). Each item and case audit entry keeps its position and
    # tag; an item the positions of the draft items it replaced. The case's metadata once
    # an audit entry's action was done (JSON) goes with the case when it is deleted, while
    # the append-only audit row stays: a purged case's country or urgency must not.
    """
    ALTER TABLE cases ADD COLUMN log_key BLOB;
    ALTER TABLE cases ADD COLUMN log_next INTEGER;
    ALTER TABLE case_items ADD COLUMN log_pos INTEGER;
    ALTER TABLE case_items ADD COLUMN log_tag BLOB;
    ALTER TABLE case_items ADD COLUMN log_replaces TEXT;
    ALTER TABLE audit ADD COLUMN log_pos INTEGER;
    ALTER TABLE audit ADD COLUMN log_tag BLOB;
    CREATE TABLE case_log_states (
        case_id TEXT NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
        pos INTEGER NOT NULL,
        after TEXT NOT NULL,
        PRIMARY KEY (case_id, pos)
    ) WITHOUT ROWID;
    """,
    # Escalation tiers (bot/safety/escalation.py): one row per step an unacknowledged case took,
    # written in the transaction that queued its messages, so a restart neither repeats nor
    # skips one. `targets` pairs each tier chat's number with its outbox row, `reported`
    # lists the numbers whose outcome the staff rooms were told; `open` until all were.
    """
    CREATE TABLE escalation_steps (
        case_id TEXT NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
        step INTEGER NOT NULL,
        tier INTEGER NOT NULL,
        at INTEGER NOT NULL,
        targets TEXT NOT NULL,
        reported TEXT NOT NULL,
        open INTEGER NOT NULL,
        PRIMARY KEY (case_id, step)
    ) WITHOUT ROWID;
    CREATE INDEX escalation_steps_open ON escalation_steps (open) WHERE open = 1;
    """,
    # Platform ids minimised (README "What the server keeps"). The chat trail names a chat
    # by a keyed pseudonym (bot/conversation/chat_trail.py); a real address is kept only while it
    # is needed: in `chat_addresses` while a message there is due to be deleted, in a
    # reporter link while the case is open, in a check-in while it runs, in an outbox
    # row to a person while it is queued. SQL cannot compute the keyed pseudonym, so the
    # rows found here name their chat by a random token mapped to its address: every
    # pending deletion (and `/forget`) still finds them, and they expire within 48 h.
    """
    CREATE TABLE chat_addresses (
        platform TEXT NOT NULL,
        chat TEXT NOT NULL,
        address TEXT NOT NULL,
        PRIMARY KEY (platform, chat)
    ) WITHOUT ROWID;
    CREATE INDEX chat_addresses_address ON chat_addresses (platform, address);
    INSERT INTO chat_addresses (platform, chat, address)
        SELECT platform, 'moved:' || lower(hex(randomblob(16))), chat
        FROM chat_messages GROUP BY platform, chat;
    UPDATE chat_messages SET chat = (
        SELECT a.chat FROM chat_addresses a
        WHERE a.platform = chat_messages.platform AND a.address = chat_messages.chat
    );
    UPDATE case_reporters SET chat = ''
        WHERE case_id IN (SELECT id FROM cases WHERE state = 'closed');
    DELETE FROM checkins WHERE case_id IN (SELECT id FROM cases WHERE state = 'closed');
    UPDATE outbox SET address = '' WHERE person IS NOT NULL AND state != 'queued';
    """,
    # Check-ins people can live with (bot/safety/checkins.py): no case needed (a missed one opens
    # one), a daily local time in a time zone or every N hours, paused, and a duress word
    # kept only as a keyed hash. `duress_at` marks a duress answer whose alert is not yet
    # raised, so a restart raises it. SQLite cannot relax NOT NULL: the table is rebuilt.
    """
    CREATE TABLE checkins_new (
        user_key TEXT PRIMARY KEY,
        case_id TEXT REFERENCES cases (id) ON DELETE CASCADE,
        platform TEXT NOT NULL,
        chat TEXT NOT NULL,
        language TEXT NOT NULL DEFAULT 'en',
        every_s INTEGER,
        daily_at INTEGER,
        zone TEXT,
        next_at INTEGER NOT NULL,
        asked_at INTEGER,
        alerted_at INTEGER,
        paused INTEGER NOT NULL DEFAULT 0,
        duress BLOB,
        duress_at INTEGER
    );
    INSERT INTO checkins_new (user_key, case_id, platform, chat, every_s, next_at, asked_at,
        alerted_at)
        SELECT user_key, case_id, platform, chat, every_s, next_at, asked_at, alerted_at
        FROM checkins;
    DROP TABLE checkins;
    ALTER TABLE checkins_new RENAME TO checkins;
    CREATE INDEX checkins_case ON checkins (case_id);
    CREATE INDEX checkins_next ON checkins (next_at) WHERE paused = 0;
    """,
    # An SOS on a case someone had acknowledged makes it unacknowledged again and starts a
    # new escalation climb from the SOS (bot/safety/escalation.py): `climb_from` is when (NULL:
    # from submission) and `climb_base` the step number its first step takes.
    """
    ALTER TABLE cases ADD COLUMN climb_from INTEGER;
    ALTER TABLE cases ADD COLUMN climb_base INTEGER NOT NULL DEFAULT 0;
    """,
    # One-tap claiming (bot/cases/claims.py): a reaction or a Claim press names the alert by its
    # message id in a staff room; the outbox rows about cases are found by room at once.
    """
    CREATE INDEX outbox_case_rooms ON outbox (platform, address) WHERE case_id IS NOT NULL;
    """,
    # Each staff member's language for answers to their commands (bot/cases/staff_languages.py).
    """
    CREATE TABLE staff_languages (
        staff_id INTEGER PRIMARY KEY REFERENCES staff (id),
        language TEXT NOT NULL
    );
    """,
    # One SQL for SQLCipher and PostgreSQL (bot/storage/connection.py): a case's order of
    # birth without `rowid` (`seq`), the draft a session holds without JSON functions
    # (`report_case`, kept by bot/conversation/sessions.py), and an alert's message ids
    # without `json_each` (`outbox_messages`, kept by bot/delivery/rows.py).
    """
    ALTER TABLE cases ADD COLUMN seq INTEGER;
    UPDATE cases SET seq = rowid;
    ALTER TABLE sessions ADD COLUMN report_case TEXT;
    UPDATE sessions SET report_case = json_extract(state, '$.report.case');
    CREATE INDEX sessions_report_case ON sessions (report_case) WHERE report_case IS NOT NULL;
    CREATE TABLE outbox_messages (
        outbox_id INTEGER NOT NULL REFERENCES outbox (id) ON DELETE CASCADE,
        message_id TEXT NOT NULL,
        PRIMARY KEY (outbox_id, message_id)
    ) WITHOUT ROWID;
    CREATE INDEX outbox_messages_message ON outbox_messages (message_id);
    INSERT INTO outbox_messages (outbox_id, message_id)
        SELECT o.id, CAST(j.value AS TEXT) FROM outbox o, json_each(o.message_ids) j
        WHERE o.message_ids IS NOT NULL;
    """,
    # Several workers behind one webhook (bot/cluster/inbox.py): updates wait in `inbox`
    # (sealed on PostgreSQL) for the worker that holds their chat's lease.
    """
    CREATE TABLE inbox (
        seq INTEGER PRIMARY KEY,
        user_key TEXT NOT NULL,
        body TEXT NOT NULL,
        received_at INTEGER NOT NULL
    );
    CREATE INDEX inbox_user ON inbox (user_key, seq);
    CREATE TABLE user_leases (
        user_key TEXT PRIMARY KEY,
        worker TEXT NOT NULL,
        until INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE cluster_workers (
        worker TEXT PRIMARY KEY,
        seen_at INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE button_screens (
        chat TEXT PRIMARY KEY,
        message_id INTEGER NOT NULL,
        nonce TEXT NOT NULL,
        choices TEXT NOT NULL
    ) WITHOUT ROWID;
    """,
    # Sensitive messages a follower hands to the leader (bot/cluster/relay.py): sealed to
    # the public key of the leader's term, whose private key lives only in its memory.
    """
    CREATE TABLE cluster_leader (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        term TEXT NOT NULL,
        public_key TEXT NOT NULL,
        elected_at INTEGER NOT NULL
    );
    CREATE TABLE outbox_handover (
        outbox_id INTEGER PRIMARY KEY REFERENCES outbox (id) ON DELETE CASCADE,
        term TEXT NOT NULL,
        sealed BLOB NOT NULL
    );
    """,
    # Matrix across leader changes (bot/cluster/matrix_position.py): the bot account's sync
    # position and its handled event ids, shared by the workers that lead in turn.
    """
    CREATE TABLE matrix_positions (
        account TEXT PRIMARY KEY,
        token TEXT NOT NULL,
        saved_at INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE matrix_handled (
        event_id TEXT PRIMARY KEY,
        handled_at INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX matrix_handled_at ON matrix_handled (handled_at);
    """,
    # A chat's shared screen goes 48 hours after it was shown, as the chat trail's message
    # ids do (bot/transports/telegram/shared_buttons.py): no lasting list of chats.
    """
    ALTER TABLE button_screens ADD COLUMN shown_at INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX button_screens_shown ON button_screens (shown_at);
    """,
)
