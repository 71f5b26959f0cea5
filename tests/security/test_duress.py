"""The duress word: answering a check-in with it shows the activist exactly what "I am
safe" shows (text, buttons, TTL), raises an urgent alert marked duress for staff, and the
word itself is never on disk (not even decrypted; on PostgreSQL in no raw row) nor in a
log."""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.app import App
from bot.content.library import Library
from bot.crypto.bundle import open_bundle
from bot.model import Incoming, Reply
from bot.safety import duress
from bot.safety.checkins import Checkins
from bot.storage import DbKey
from tests.conftest_storage import OpenDatabase
from tests.fakes import FakeTransport, FakeUser
from tests.reporting import STAFF_ROOM, Team, room_messages, staff_key
from tests.security.test_seized_bundles import _encodings, _keyed_view, _raw_view

pytestmark = pytest.mark.backends
WORD = "Heron Canary-7qx"
TYPED_LIKE_THIS = "  ｈｅｒｏｎ   canary-7QX "
"""The same word as a phone might send it: fullwidth letters, other case, extra spaces."""


class Clock:
    def __init__(self) -> None:
        self.now = 1_780_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Setup:
    app: App
    team: Team
    checkins: Checkins
    clock: Clock
    person: FakeUser
    transport: FakeTransport
    data_dir: Path
    db_key: bytes
    database_url: str | None


@pytest.fixture
async def setup(
    open_database: OpenDatabase, database_url: str | None, tmp_path: Path, library: Library
) -> AsyncIterator[Setup]:
    data_dir, db_key = tmp_path / "data", secrets.token_bytes(32)
    db = await open_database("hrd-bot", DbKey(db_key.hex()))
    app = await App.open(db, library, staff_rooms=(STAFF_ROOM,))
    team = Team()
    await app.casework.store.add_staff("Alice", [staff_key(app, "staff-a")], team.alice.public)
    await app.casework.store.set_recovery(team.recovery.public)
    transport = FakeTransport()
    app.attach(transport)
    clock = Clock()
    app.checkins = Checkins(app.db, app.casework, app.push, clock=clock)
    person = FakeUser(app, transport, "activist-9")
    try:
        yield Setup(
            app, team, app.checkins, clock, person, transport, data_dir, db_key, database_url
        )
    finally:
        await app.outbox.close()
        await db.close()


async def _with_duress_word(s: Setup) -> None:
    """No report: check-ins every 2 hours, a duress word, back at the main menu."""
    await s.person.say("/start")
    await s.person.press("English")
    await s.person.press("Safety check-ins")
    await s.person.press("Every 2 hours")
    await s.person.press("Safety check-ins")
    await s.person.press("Duress word")
    saved = await s.person.say(WORD)
    assert "Your duress word is set" in saved.text
    assert "A duress word is set." in saved.text
    await s.person.press("Main menu")


async def _asked(s: Setup) -> None:
    s.clock.now += 2 * 3600
    assert await s.checkins.tick() == (1, 0)
    await s.app.outbox.drain()
    assert "are you safe right now?" in s.person.last.text


async def test_a_duress_answer_looks_exactly_like_i_am_safe_and_alerts_staff(
    setup: Setup,
) -> None:
    s = setup
    await _with_duress_word(s)
    answers: list[Reply] = []
    await _asked(s)
    answers.append(await s.person.press("I am safe"))
    await _asked(s)
    answers.append(await s.person.say("I am safe"))
    assert not [r for r in room_messages(s.transport, STAFF_ROOM) if "DURESS" in r.text]
    await _asked(s)
    answers.append(await s.person.say(WORD))
    await _asked(s)
    answers.append(await s.person.say(TYPED_LIKE_THIS))

    normal = answers[0]
    assert "The team is not alerted" in normal.text and normal.sensitive
    assert normal.ttl is not None, "the sensitive reply expires"
    for answer in answers[1:]:
        assert answer == normal, "text, buttons (ids and labels), TTL, flags: all the same"
        assert repr(answer.choices) == repr(normal.choices)

    alerts = [r for r in room_messages(s.transport, STAFF_ROOM) if "DURESS" in r.text]
    assert len(alerts) == 2, "one alert per duress answer"
    assert all(a.urgent and "urgency: critical" in alerts[0].text for a in alerts)
    assert "new case" in alerts[0].text and "is now critical" in alerts[1].text
    cases = await s.app.casework.open_cases()
    assert len(cases) == 1 and cases[0].urgency == "critical"
    opened = open_bundle(await s.app.casework.store.export_bundle(cases[0].id), s.team.alice)
    assert [e.action for e, _ in opened.audit].count("case.duress") == 2
    assert "case.sos" not in [e.action for e, _ in opened.audit]


async def test_a_wrong_word_is_not_an_answer_and_alerts_nobody(setup: Setup) -> None:
    s = setup
    await _with_duress_word(s)
    await _asked(s)
    wrong = await s.person.say("heron canary")
    assert "are you safe right now?" in wrong.text, "still asked"
    assert "The team is not alerted" not in wrong.text
    await s.app.outbox.drain()
    assert not room_messages(s.transport, STAFF_ROOM)


async def test_the_duress_word_is_never_on_disk_nor_in_a_log(
    setup: Setup, caplog: pytest.LogCaptureFixture
) -> None:
    s = setup
    caplog.set_level(logging.DEBUG)
    await _with_duress_word(s)
    await _asked(s)
    await s.person.say(WORD)
    await s.app.outbox.drain()
    assert [r for r in room_messages(s.transport, STAFF_ROOM) if "DURESS" in r.text]

    forms = {WORD, duress.normalise(WORD), WORD.upper(), TYPED_LIKE_THIS.strip()}
    for view in _views(s):
        for form in forms:
            for encoded in _encodings(form):
                assert encoded not in view, "the duress word is on disk"
    for form in forms:
        assert form.casefold() not in caplog.text.casefold()
    assert "SOS raised" in caplog.text, "the logs are captured"
    assert "duress" not in caplog.text.casefold(), "logs do not tell a duress alert apart"


def _views(s: Setup) -> list[bytes]:
    """What a seized server shows: SQLCipher's file, raw and decrypted; PostgreSQL's rows."""
    if s.database_url is not None:
        return [_pg_rows(s.database_url)]
    keyed = _keyed_view(s.data_dir, s.db_key)
    assert b"checkins" in keyed, "the decrypted view sees plaintext rows"
    return [_raw_view(s.data_dir), keyed]


def _pg_rows(url: str) -> bytes:
    """Every value of every table of this test's schema, as text and raw bytes."""
    out: list[bytes] = []
    with psycopg.connect(url) as conn:
        tables = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
        ).fetchall()
        for (table,) in tables:
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                for value in row:
                    is_raw = isinstance(value, bytes | memoryview)
                    out.append(bytes(value) if is_raw else str(value).encode())
    assert any(b"~" in v for v in out), "sealed values were read"
    return b"\n".join(out)


async def test_a_duress_alert_interrupted_by_a_stop_is_raised_after_restart(
    setup: Setup,
) -> None:
    """The answer's transaction marks the alert to raise; a stop before the background
    raise leaves the mark, and the next tick (after a restart) raises it, once."""
    s = setup
    await _with_duress_word(s)
    await _asked(s)
    lost: list[object] = []

    def stopped_before_running(work: Coroutine[Any, Any, None]) -> None:
        lost.append(work)
        work.close()

    s.app.casework.after = stopped_before_running
    answered = await s.person.say(WORD)
    assert "The team is not alerted" in answered.text and len(lost) == 1
    assert not [r for r in room_messages(s.transport, STAFF_ROOM) if "DURESS" in r.text]

    s.app.casework.after = s.app.outbox.after
    restarted = Checkins(s.app.db, s.app.casework, s.app.push, clock=s.clock)
    await restarted.tick()
    await s.app.outbox.drain()
    await restarted.tick()
    await s.app.outbox.drain()
    alerts = [r for r in room_messages(s.transport, STAFF_ROOM) if "DURESS" in r.text]
    assert len(alerts) == 1, "raised after the restart, and only once"


@given(st.text(min_size=3, max_size=30))
def test_normalised_forms_match_and_others_do_not(word: str) -> None:
    secret, user = b"k" * 32, "fake:abc"
    stored = duress.digest(secret, user, word)
    assert duress.matches(secret, user, f"  {word.upper()} ", stored) == (
        duress.normalise(word.upper()) == duress.normalise(word)
    )
    assert duress.matches(secret, user, word, stored)
    assert not duress.matches(secret, "fake:other", word, stored), "bound to the user"
    assert not duress.matches(secret, user, word, None)


async def test_nothing_more_is_awaited_before_a_duress_reply_than_before_i_am_safe(
    setup: Setup,
) -> None:
    """The same database trips before the reply; the alert's work is handed to the
    background, and only once it runs do staff hear of it."""
    s = setup
    await _with_duress_word(s)
    await _asked(s)
    await s.person.press("I am safe")  # the duress key is loaded once, by any answer
    handed: list[Coroutine[Any, Any, None]] = []

    def hand(work: Coroutine[Any, Any, None]) -> None:
        handed.append(work)

    s.app.casework.after = hand
    user = s.app.pseudonyms.user("fake", s.person.platform_id)

    async def trips(text: str) -> tuple[int, list[Reply]]:
        await _asked(s)
        before = s.app.db.calls
        replies = await s.app.handle(Incoming(user=user, chat=s.person.chat, text=text))
        return s.app.db.calls - before, list(replies)

    normal = await trips("I am safe")
    assert handed == []
    forced = await trips(WORD)
    assert forced == normal, "the same trips and the same reply"
    assert len(handed) == 1
    await s.app.outbox.drain()
    assert not [r for r in room_messages(s.transport, STAFF_ROOM) if "DURESS" in r.text]
    await handed[0]
    await s.app.outbox.drain()
    assert [r for r in room_messages(s.transport, STAFF_ROOM) if "DURESS" in r.text]
