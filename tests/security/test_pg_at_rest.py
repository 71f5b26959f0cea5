"""Every text and byte column PostgreSQL holds is either sealed by the bot or plain for a
reason written here; a sealed column is one `hrd-bot data rekey` re-seals.

After the seized-server session (a report, staff notes, a reply, an export, a close),
each column's stored values are checked against its class: a sealed column's values all
open under the key (and only under it), a plain one's are what the reason says. A new
column nobody classified fails the test, so sealing is decided when a column is added.
A writer without the key cannot plant a public key of their own: the bot refuses it.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import pytest
from psycopg import connect

from bot.app import App
from bot.cases.rows import current_recipients
from bot.content.library import Library
from bot.crypto.keys import PrivateKey
from bot.storage import Database
from bot.storage.connection import Connection
from bot.storage.fields import UnsealError
from bot.storage.pg_rekey import SEALED
from tests.fakes import FakeTransport
from tests.keys import TEST_KEY
from tests.postgres_server import PgServer, fresh_schema
from tests.reporting import STAFF_ROOM, staff_key
from tests.security.test_seized_server import _session

PLAIN = {
    "keyed pseudonyms or random tokens, never a platform id": {
        "sessions.user_key",
        "case_reporters.user_key",
        "checkins.user_key",
        "outbox.person",
        "chat_messages.chat",
        "chat_addresses.chat",
        "inbox.user_key",
        "user_leases.user_key",
        "user_leases.worker",
        "cluster_workers.worker",
        "button_screens.chat",
        "button_screens.nonce",
        "cluster_leader.term",
        "outbox_handover.term",
    },
    "case ids, states, kinds, actions, names of fields, settings and recipients": {
        "cases.id",
        "cases.state",
        "audit.actor",
        "audit.action",
        "audit.case_id",
        "case_items.case_id",
        "case_items.field",
        "case_items.log_replaces",
        "case_log_states.case_id",
        "case_recipients.case_id",
        "case_recipients.recipient",
        "case_reporters.case_id",
        "checkins.case_id",
        "escalation_steps.case_id",
        "outbox.case_id",
        "outbox.kind",
        "outbox.state",
        "sessions.report_case",
        "settings.name",
        "org_keys.name",
    },
    "platforms, languages, platform message ids (no person in them)": {
        "case_reporters.platform",
        "chat_addresses.platform",
        "chat_messages.platform",
        "checkins.platform",
        "outbox.platform",
        "case_reporters.language",
        "checkins.language",
        "sessions.language",
        "staff_languages.language",
        "chat_messages.message_id",
        "outbox.message_ids",
        "outbox_messages.message_id",
    },
    "Matrix event ids and sync tokens (positions in the account's timeline, no person)": {
        "matrix_handled.event_id",
        "matrix_positions.token",
    },
    "sealed to the team (HPKE) or keyed under a sealed server secret": {
        "case_items.sealed",
        "case_recipients.sealed_key",
        "checkins.duress",
        "outbox_handover.sealed",
    },
    "tags, fingerprints, escalation step numbers, the key check and its salt": {
        "audit.log_tag",
        "case_items.log_tag",
        "case_recipients.fingerprint",
        "staff.fingerprint",
        "org_keys.fingerprint",
        "escalation_steps.targets",
        "escalation_steps.reported",
        "hrd_bot_meta.keycheck",
        "hrd_bot_meta.salt",
    },
}


def _columns(url: str) -> dict[str, list[object]]:
    with connect(url) as conn:
        found = conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND data_type IN ('text', 'bytea')"
        ).fetchall()
        return {f"{t}.{c}": [r[0] for r in conn.execute(f"SELECT {c} FROM {t}")] for t, c in found}


def _open_all(column: str, values: list[Any], conn: Connection) -> int:
    return len([conn.unseal(column, value) for value in values])


async def _seized_session(server: PgServer, library: Library) -> tuple[str, Database]:
    url = server.schema_url(fresh_schema(server))
    db = await Database.open_postgres(url, TEST_KEY)
    app = await App.open(db, library, staff_rooms=(STAFF_ROOM,))
    transport = FakeTransport()
    app.attach(transport)
    await app.casework.store.add_staff(
        "Ana", [staff_key(app, "staff-a")], PrivateKey.generate().public
    )
    await app.casework.store.set_recovery(PrivateKey.generate().public)
    await _session(app, transport)
    await app.outbox.close()
    return url, db


async def test_each_column_is_sealed_or_plain_for_a_reason(
    pg_server: PgServer, library: Library
) -> None:
    url, db = await _seized_session(pg_server, library)
    sealed = {f"{t}.{c}" for t, cols in SEALED.items() for c in cols}
    plain = set().union(*PLAIN.values())
    columns = _columns(url)
    assert set(columns) - sealed - plain == set(), "classify each new column here or in SEALED"
    assert sealed & plain == set()
    for name in sealed:
        values = [v for v in columns[name] if v not in (None, "")]
        assert await db.run(partial(_open_all, name, values)) == len(values)
    filled = {n for n in sealed if any(v not in (None, "") for v in columns[n])}
    assert {"staff.label", "cases.country", "sessions.state", "outbox.address"} <= filled
    await db.close()


async def test_a_public_key_planted_without_the_key_is_refused(
    pg_server: PgServer, library: Library
) -> None:
    url, db = await _seized_session(pg_server, library)
    planted = PrivateKey.generate().public
    with connect(url) as conn:
        conn.execute(
            "INSERT INTO staff (label, identities, public_key, fingerprint, added_at)"
            " VALUES ('~x', '~x', %s, %s, 0)",
            (planted.text, planted.fingerprint),
        )
    with pytest.raises(UnsealError):
        await db.run(current_recipients)
    await db.close()
