"""A copy of the PostgreSQL database (what `pg_dump` or a seized server yields) holds no
destination address, no message text and no server secret in the outbox and settings:
only sealed values, read here with plain psycopg as an intruder without the key would."""

from __future__ import annotations

import psycopg
import pytest

from bot.app import App
from bot.content.library import Library
from bot.delivery import Reason, RetryPolicy, Undelivered
from bot.model import ChatRef, Reply
from tests.conftest_storage import OpenDatabase
from tests.fakes import FakeTransport

ROOM = ChatRef("fake", "!canaryroom:example.org", private=False)
PERSON = ChatRef("fake", "+254712345678")
GONE = ChatRef("fake", "987654321-canary")
QUEUED_TEXT = "CANARY-QUEUED: new case waiting for the room"
SENT_TEXT = "CANARY-SENT: a notice that went out"
pytestmark = pytest.mark.parametrize("backend", ["postgres"], indirect=True)


def _dump(url: str, table: str) -> str:
    """Every row of `table` as PostgreSQL prints it (bytea as hex)."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(f"SELECT t::text FROM {table} t").fetchall()
    assert rows, f"{table} is empty: the test would prove nothing"
    return "\n".join(str(row[0]) for row in rows)


async def _fill(app: App, transport: FakeTransport) -> None:
    """A queued alert (its text kept for a restart), a delivered notice to a person and
    one refused by a person who blocked the bot."""
    app.outbox.policy = RetryPolicy(window=600.0, first=60.0, cap=60.0)
    transport.refuse[ROOM.address] = Undelivered(Reason.UNREACHABLE, transient=True)
    await app.deliver(ROOM, Reply(QUEUED_TEXT), kind="alert", case_id="HRD-AAAA-BBBB")
    await transport.tries(ROOM.address, 1)
    assert (await (await app.deliver(PERSON, Reply(SENT_TEXT)))).delivered
    transport.refuse[GONE.address] = Undelivered(Reason.BLOCKED)
    assert (await (await app.deliver(GONE, Reply(SENT_TEXT)))).reason is Reason.BLOCKED


async def test_outbox_and_settings_rows_hold_no_address_text_or_secret_in_clear(
    open_database: OpenDatabase, database_url: str | None, library: Library
) -> None:
    assert database_url is not None
    db = await open_database()
    app = await App.open(db, library, staff_rooms=(ROOM,))
    transport = FakeTransport()
    app.attach(transport)
    await app.start_delivery()
    secret = await db.secret("test.canary")
    await db.put_setting("test.login", b"CANARY-LOGIN-TOKEN")
    await _fill(app, transport)
    bodies = await db.run(lambda c: c.execute("SELECT count(*) FROM outbox WHERE body IS NOT NULL"))
    assert bodies.fetchone()[0] == 1, "the queued alert keeps its text, sealed"

    outbox = _dump(database_url, "outbox")
    for clear in (ROOM.address, PERSON.address, GONE.address, "canary", "CANARY", "blocked"):
        assert clear.lower() not in outbox.lower()
    assert "delivered" in outbox and "queued" in outbox, "states are plain on purpose"
    settings = _dump(database_url, "settings")
    assert secret.hex() not in settings and "CANARY" not in settings
    assert b"CANARY-LOGIN-TOKEN".hex() not in settings
    await app.outbox.close()
    await db.close()
