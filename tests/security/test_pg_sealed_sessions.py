"""On PostgreSQL, what a conversation leaves in the rows reveals nobody: after a person
starts a report, sets daily check-ins in their time zone and has a message due for
deletion, the raw rows of `sessions`, `chat_addresses`, `checkins` and `chat_messages`
(read with plain psycopg, as a seized database would be) hold no platform chat id, no
time zone name and no typed text. SQLCipher encrypts every page, so this is PostgreSQL's."""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest

from bot.app import App
from tests.fakes import FakeTransport, FakeUser
from tests.reporting import Team, start_report

pytestmark = pytest.mark.parametrize("backend", ["postgres"], indirect=True)
TABLES = ("sessions", "chat_addresses", "checkins", "chat_messages")
SEALED = {
    "sessions": ("state",),
    "chat_addresses": ("address",),
    "checkins": ("chat", "zone"),
}
PLATFORM_ID = "7700123456789"
ZONE = "Asia/Kathmandu"
TYPED = "CANARY-TYPED they took Ramesh from the office at dawn"


def _raw_rows(url: str) -> dict[str, list[dict[str, object]]]:
    with psycopg.connect(url) as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        found = {}
        for table in TABLES:
            cur.execute(f"SELECT * FROM {table}")
            found[table] = list(cur.fetchall())
        return found


def _texts(value: object) -> list[str]:
    """A raw value as every text it could show: str, and bytes decoded leniently."""
    if isinstance(value, bytes | memoryview):
        raw = bytes(value)
        return [raw.decode("utf-8", "replace"), raw.hex()]
    return [] if value is None else [str(value)]


async def _talk(app: App, transport: FakeTransport) -> FakeUser:
    app.attach(transport)
    person = FakeUser(app, transport, PLATFORM_ID)
    await start_report(person)
    assert "Saved and locked" in (await person.say(TYPED)).text
    await person.say("/menu")
    await person.press("Safety check-ins")
    await person.press("Every day at a time I choose")
    assert ZONE in (await person.say(ZONE.lower())).text
    assert f"every day at 18:00 ({ZONE})" in (await person.say("18:00")).text
    trail = app.chat_trail(transport.name)  # as a transport records a sensitive message
    await trail.record(person.chat.address, "msg-1", timedelta(hours=1))
    return person


async def test_raw_rows_hold_no_chat_id_zone_or_typed_text(
    team_app: tuple[App, Team], transport: FakeTransport, database_url: str | None
) -> None:
    app, _ = team_app
    person = await _talk(app, transport)
    assert database_url is not None
    rows = _raw_rows(database_url)
    assert all(rows[table] for table in TABLES), "every table holds what the talk left"
    secrets = (PLATFORM_ID, person.chat.address, ZONE, TYPED, "Kathmandu", "CANARY")
    for table, found in rows.items():
        for row in found:
            for column, value in row.items():
                for text in _texts(value):
                    leaked = [s for s in secrets if s.lower() in text.lower()]
                    assert not leaked, f"{table}.{column} shows {leaked}"
    for table, columns in SEALED.items():
        for row in rows[table]:
            for column in columns:
                assert str(row[column]).startswith("~"), f"{table}.{column} is sealed"

    plan = await app.checkins.plan(app.pseudonyms.user(transport.name, PLATFORM_ID))
    assert plan is not None and plan.zone == ZONE, "the bot itself reads it back"
    due = await app.chat_trail(transport.name).due(limit=10, now=2**40)
    assert [t.chat for t in due] == [person.chat.address]
