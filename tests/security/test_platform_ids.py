"""A seized server (database key included) cannot link a Telegram account to a case.

A real session through the Bot API emulator, with a reporter whose Telegram id is
distinctive: a report, a team reply, a close, `/forget`. The reporter's chat address
may be kept only where replying needs it, only while the case is open, and where a
message's deletion when its time to live ends needs it; never after that. Every table
is searched for it (decrypted through SQLite), then every file of the data folder raw
and decrypted page by page (free space and WAL frames included), then the logs.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path

import pytest

from bot.app import App
from bot.config import Settings
from bot.crypto.keys import PrivateKey
from bot.storage.database import Connection
from tests.security.test_log_canaries import Output
from tests.security.test_log_canaries import output as output  # the fixture
from tests.security.test_seized_bundles import _encodings, _keyed_view, _raw_view
from tests.telegram_emulator import Emulator, SimUser
from tests.telegram_emulator.harness import TEST_KEY, RunningBot, eventually, running_bot
from tests.telegram_emulator.world import Person
from tests.test_telegram_reports import finish_report, reply_outcome, says, start_report

REPORTER_ID = 7_318_205_946
"""As long as a real user id, and found nowhere by chance."""
HOURS = 3600
Staff = tuple[RunningBot, SimUser, Path]


@pytest.fixture
async def staff(emu: Emulator, tmp_path: Path) -> AsyncIterator[Staff]:
    """The bot with its data folder, and Alice in the staff group (allowed to reply and
    close from Telegram)."""
    (alice,) = emu.group("Protection team", "Alice", supergroup=True)
    data = tmp_path / "data"
    settings = Settings.from_env(
        {"HRD_BOT_DATA_DIR": str(data), "HRD_BOT_STAFF_ROOMS": f"telegram:{alice.chat.id}"}
        | {"HRD_BOT_TELEGRAM_STAFF_ACTIONS": "all"}
    )
    async with running_bot(
        emu,
        data / "hrd-bot.db",
        sweep_interval=timedelta(seconds=0.2),
        staff_rooms=settings.chats("HRD_BOT_STAFF_ROOMS"),
        staff_without_device=settings.telegram_staff_actions,
    ) as running:
        store = running.app.casework.store
        identity = running.app.pseudonyms.user("telegram", str(alice.person.id)).key
        await store.add_staff("Alice", [identity], PrivateKey.generate().public)
        await store.set_recovery(PrivateKey.generate().public)
        yield running, alice, data


def _reporter(emu: Emulator) -> SimUser:
    person = Person(REPORTER_ID, "Ana", "en")
    return SimUser(emu.world, person, emu.world.private_chat(person))


def _id_forms(number: int) -> list[bytes]:
    """The id as text (UTF-8, UTF-16) and as the integers SQLite or a program would write."""
    forms = _encodings(str(number))
    return forms + [number.to_bytes(n, order) for n in (6, 8) for order in ("big", "little")]


def _holders(needle: str) -> Callable[[Connection], tuple[str, ...]]:
    """`table.column` of every value in the database that holds `needle`."""

    def read(conn: Connection) -> tuple[str, ...]:
        tables = [
            str(r[0]) for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        ]
        found = set()
        for table in tables:
            cursor = conn.execute(f'SELECT * FROM "{table}"')
            columns = [d[0] for d in cursor.description]
            for row in cursor:
                for column, value in zip(columns, row, strict=True):
                    text = (
                        value.decode(errors="replace") if isinstance(value, bytes) else str(value)
                    )
                    if needle in text:
                        found.add(f"{table}.{column}")
        return tuple(sorted(found))

    return read


async def _where(app: App) -> tuple[str, ...]:
    return await app.db.run(_holders(str(REPORTER_ID)))


def _on_disk(data: Path) -> bool:
    """Whether any file of the data folder holds the id, raw or decrypted with the key."""
    views = (_raw_view(data), _keyed_view(data, TEST_KEY.raw_bytes() or b""))
    return any(form in view for view in views for form in _id_forms(REPORTER_ID))


async def _link(app: App, case: str) -> str:
    def read(conn: Connection) -> str:
        row = conn.execute("SELECT chat FROM case_reporters WHERE case_id = ?", (case,))
        return str(row.fetchone()[0])

    return await app.db.run(read)


async def _time_passes(app: App, seconds: int) -> None:
    """The trail as `seconds` later: what was sent then, and deletions due by then. Rows
    shifted once are not shifted again, so this may be repeated while ids are still
    being written (`_later`)."""

    def shift(conn: Connection) -> None:
        conn.execute(
            "UPDATE chat_messages SET sent_at = sent_at - ?1, delete_at = delete_at - ?1 "
            "WHERE sent_at > ?2",
            (seconds, int(time.time()) - seconds // 2),
        )

    await app.db.run(shift)


async def _later(app: App, seconds: int, *places: str) -> bool:
    """After `seconds`, only `places` hold the id."""
    await _time_passes(app, seconds)
    return await _where(app) == places


async def test_a_forgotten_reporter_leaves_no_platform_id_in_any_file(
    emu: Emulator, staff: Staff, output: Output
) -> None:
    bot, alice, data = staff
    ana = _reporter(emu)
    await start_report(ana)
    case = await finish_report(ana)
    assert await _where(bot.app) == ("case_reporters.chat", "chat_addresses.address")
    assert await _link(bot.app, case) == str(REPORTER_ID), "the open case can reach Ana"

    _, outcome = await reply_outcome(alice, f"/reply {case} Are you safe tonight?")
    assert outcome.endswith("delivered.")
    assert (await ana.answer(count=1)).text.startswith("Protection team:")
    assert "closed" in await says(alice, f"/close {case} relocated")
    assert await _link(bot.app, case) == "", "closing let go of the address"
    refused = await says(alice, f"/reply {case} One more thing")
    assert refused.startswith("That case is closed") and "cannot reach them" in refused
    assert await _where(bot.app) == ("chat_addresses.address",), "only to delete answers"

    await ana.ask("/forget")
    await ana.press("Yes, delete everything")
    done = (await ana.answer(count=1)).last
    assert done.text is not None and done.text.startswith("Done.")
    await emu.world.wait_for(lambda: ana.seen() == [done])
    assert await _where(bot.app) == ("chat_addresses.address",), (
        "kept only to delete the confirmation when its time to live ends"
    )

    await eventually(lambda: _later(bot.app, 10 * 60 + 1), within=10)
    await emu.world.wait_for(lambda: ana.seen() == [])
    await eventually(lambda: _nowhere(bot.app, data), within=10)
    assert str(REPORTER_ID) not in output(), "a log line holds the id"


async def _nowhere(app: App, data: Path) -> bool:
    return await _where(app) == () and not _on_disk(data)


async def test_the_address_is_kept_while_the_case_is_open_and_at_most_48_hours_after(
    emu: Emulator, staff: Staff
) -> None:
    bot, alice, data = staff
    ana = _reporter(emu)
    await start_report(ana)
    case = await finish_report(ana)
    # the answers expire and are deleted
    await eventually(lambda: _later(bot.app, 2 * HOURS, "case_reporters.chat"), within=10)
    _, outcome = await reply_outcome(alice, f"/reply {case} Still there?")
    assert outcome.endswith("delivered.")
    assert await _where(bot.app) == ("case_reporters.chat", "chat_addresses.address")

    assert "closed" in await says(alice, f"/close {case} resolved")
    assert await _where(bot.app) == ("chat_addresses.address",), "the reply still expires"
    assert _on_disk(data)
    emu.advance(49 * HOURS)
    await eventually(lambda: _later(bot.app, 49 * HOURS), within=10)
    await eventually(lambda: _nowhere(bot.app, data), within=10)
