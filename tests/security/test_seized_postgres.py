"""A PostgreSQL server seized after the scripted session: its dump, the bot's data folder and
configuration, and every log line hold no canary, no staff name and no platform id.

The same session as `test_seized_server` (reporters answer, staff note, reply, export and
close, each with canary strings), on a real PostgreSQL server. What a seizure of the
database host yields is `pg_dump` of the bot's schema: every row, in clear, as PostgreSQL
keeps it. The application sealed the sensitive columns before they left the bot, so the
dump reveals nothing without the database key, which lives with the bot, not the database.
"""

from __future__ import annotations

import logging
import secrets
import subprocess
from pathlib import Path

import pytest

from bot.app import App
from bot.content.library import Library
from bot.crypto.keys import PrivateKey
from bot.storage import Database, DbKey
from tests.fakes import FakeTransport
from tests.postgres_server import PgServer, bin_dir, fresh_schema
from tests.reporting import STAFF_ROOM, staff_key
from tests.security.test_seized_bundles import _encodings
from tests.security.test_seized_server import CANARIES, _session

LABEL = "Probe-Label-5e1d"
PLATFORM_IDS = ("seized-reporter", "staff-a", "staff-b", STAFF_ROOM.address)


def _dump(server: PgServer, schema: str) -> bytes:
    command = [str(bin_dir() / "pg_dump"), "--schema", schema, server.url]
    return subprocess.run(command, check=True, capture_output=True).stdout


async def test_a_seized_postgresql_reveals_nothing_said_and_nobody(
    pg_server: PgServer, tmp_path: Path, library: Library, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    schema = fresh_schema(pg_server)
    key = DbKey(secrets.token_hex(32))
    data = tmp_path / "data"
    config = tmp_path / "hrd-bot.env"
    config.write_text(
        f"HRD_BOT_DATA_DIR={data}\nHRD_BOT_STAFF_ROOMS=fake:{STAFF_ROOM.address}\n"
        f"HRD_BOT_DATABASE_URL={pg_server.schema_url(schema)}\n"
    )
    db = await Database.open_postgres(pg_server.schema_url(schema), key)
    app = await App.open(db, library, staff_rooms=(STAFF_ROOM,), exports=data / "exports")
    transport = FakeTransport()
    app.attach(transport)
    store = app.casework.store
    await store.add_staff(LABEL, [staff_key(app, "staff-a")], PrivateKey.generate().public)
    await store.add_staff("B", [staff_key(app, "staff-b")], PrivateKey.generate().public)
    await store.set_recovery(PrivateKey.generate().public)
    await _session(app, transport)
    labels = await db.run(
        lambda c: [c.unseal("staff.label", r[0]) for r in c.execute("SELECT label FROM staff")]
    )
    assert LABEL in labels, "with the key, the bot reads what it sealed"
    await app.outbox.close()
    await db.close()

    dump = _dump(pg_server, schema)
    assert b"CREATE TABLE" in dump and b"COPY" in dump, "the dump holds the tables and rows"
    files = b"".join(p.read_bytes() for p in data.rglob("*") if p.is_file())
    seized = dump + files + config.read_bytes() + "\n".join(caplog.messages).encode()
    for canary in (*CANARIES.values(), LABEL):
        for encoded in _encodings(canary):
            assert encoded not in seized, f"{canary!r} is recoverable"
    for platform_id in PLATFORM_IDS:
        assert platform_id.encode() not in dump, f"a platform id ({platform_id}) is in the dump"
