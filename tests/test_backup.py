"""Backup, restore and rekey of the real SQLCipher file while simulated users talk to the app."""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

import pytest

from bot import cli
from bot.app import App
from bot.content.library import Library
from bot.delivery import Reason, RetryPolicy, Undelivered
from bot.model import ChatRef, Reply
from bot.safety.checkins import Checkins
from bot.storage import Database, DataDirLock, DbKey, WrongKeyError
from bot.storage.backup import BackupError, backup, check_copy, rekey, restore
from bot.storage.opening import keyed
from tests.conftest import TEST_KEY
from tests.fakes import FakeTransport, FakeUser
from tests.processes import ConsoleBot, bot_env, run_cli
from tests.reporting import STAFF_ROOM, WHAT, Team, room_messages, staff_key, submit_report

DOWN = ChatRef("fake", "oncall-down", private=False)
PLAIN_CANARY = b"CANARY-PLAIN-7f3e"  # stored unsealed inside the database
SLOW = RetryPolicy(window=3600.0, first=3600.0, cap=3600.0)


async def _open(path: Path, library: Library, team: Team, key: DbKey = TEST_KEY) -> App:
    db = await Database.open(path, key)
    app = await App.open(db, library, staff_rooms=(STAFF_ROOM,), delivery=SLOW)
    store = app.casework.store
    if not await store.list_staff():
        await store.add_staff("Alice", [staff_key(app, "staff-alice")], team.alice.public)
        await store.set_recovery(team.recovery.public)
    return app


async def _close(app: App) -> None:
    await app.outbox.close()
    await app.db.close()


async def _case_ids(app: App) -> set[str]:
    rows = await app.db.run(lambda c: c.execute("SELECT id FROM cases").fetchall())
    return {row[0] for row in rows}


async def _chatter(app: App, transport: FakeTransport, stop: asyncio.Event) -> int:
    """Users who keep opening the menu: writes to sessions while a backup runs."""
    turns = 0
    while not stop.is_set():
        transport.sent.clear()
        await FakeUser(app, transport, f"chatter-{turns % 7}").say("/start")
        turns += 1
        await asyncio.sleep(0.002)
    return turns


def _bytes(path: Path) -> bytes:
    return path.read_bytes()


def _names(folder: Path, pattern: str) -> list[str]:
    return sorted(p.name for p in folder.glob(pattern))


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, db_path: Path) -> Path:
    for name in ("HRD_BOT_DB_KEY_FILE", "CREDENTIALS_DIRECTORY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HRD_BOT_DATA_DIR", str(db_path.parent))
    monkeypatch.setenv("HRD_BOT_DB_KEY", TEST_KEY.value)
    return db_path


async def test_a_backup_taken_mid_traffic_holds_every_acknowledged_case(
    env: Path, tmp_path: Path, library: Library
) -> None:
    app = await _open(env, library, Team())
    transport = FakeTransport()
    app.attach(transport)
    acknowledged: list[str] = []
    two_done = asyncio.Event()

    async def report(n: int) -> None:
        acknowledged.append(await submit_report(FakeUser(app, transport, f"reporter-{n}")))
        if len(acknowledged) >= 2:
            two_done.set()

    stop = asyncio.Event()
    chatter = asyncio.create_task(_chatter(app, FakeTransport(), stop))
    reports = [asyncio.create_task(report(n)) for n in range(6)]
    await two_done.wait()
    before = list(acknowledged)
    target = tmp_path / "backups" / "b1.db"
    target.parent.mkdir()
    assert await asyncio.to_thread(cli.main, ["data", "backup", str(target)]) == 0
    await asyncio.gather(*reports)
    stop.set()
    assert await chatter > 0
    await _close(app)

    checked = check_copy(target, TEST_KEY)
    assert checked.schema > 0
    copy = tmp_path / "copy" / "hrd-bot.db"
    copy.parent.mkdir()
    shutil.copy(target, copy)
    restored = await Database.open(copy, TEST_KEY)
    rows = await restored.run(lambda c: c.execute("SELECT id FROM cases").fetchall())
    await restored.close()
    assert set(before) <= {row[0] for row in rows}, "all acknowledged before the backup"
    assert len(rows) <= 6


async def test_a_backup_is_unreadable_without_the_key(
    env: Path, tmp_path: Path, library: Library
) -> None:
    app = await _open(env, library, Team())
    await app.db.run(
        lambda c: c.execute("INSERT INTO settings VALUES ('canary', ?)", (PLAIN_CANARY,))
    )
    target = tmp_path / "b.db"
    await asyncio.to_thread(backup, env, TEST_KEY, target)
    await _close(app)
    data = _bytes(target)
    assert not data.startswith(b"SQLite format 3"), "no plaintext header"
    assert PLAIN_CANARY not in data and b"CREATE TABLE" not in data
    assert target.stat().st_mode & 0o077 == 0
    assert not list(_names(tmp_path, "b.db*"))[1:], "no -wal, -journal or .partial beside it"
    with pytest.raises(WrongKeyError):
        check_copy(target, DbKey("cd" * 32))
    with pytest.raises(BackupError, match="never overwrites"):
        backup(env, TEST_KEY, target)


async def test_a_restored_backup_serves_the_same_users_cases_check_ins_and_deliveries(
    env: Path, tmp_path: Path, library: Library
) -> None:
    team = Team()
    app = await _open(env, library, team)
    down = FakeTransport(refuse={DOWN.address: Undelivered(Reason.UNREACHABLE, transient=True)})
    app.attach(down)
    await app.start_delivery()
    person = FakeUser(app, down, "reporter-1")
    case = await submit_report(person)
    await person.press("Safety check-ins")
    assert "first question comes in 2 hours" in (await person.press("Every 2 hours")).text
    await app.deliver(DOWN, Reply(f"CANARY-PENDING {case}"), kind="alert", case_id=case)
    for _ in range(1000):  # its first try is refused; it stays queued
        if DOWN.address in down.tried:
            break
        await asyncio.sleep(0.005)
    target = tmp_path / "b.db"
    await asyncio.to_thread(backup, env, TEST_KEY, target)
    down.settle = False  # the refused alert stays queued: nobody waits for it
    late = await submit_report(FakeUser(app, down, "reporter-late"))
    await _close(app)

    lock = DataDirLock.acquire(env.parent, "test")
    try:
        assert restore(env, TEST_KEY, target).schema > 0
    finally:
        lock.release()
    assert not _names(env.parent, "*.re[ps]*")

    up = FakeTransport()
    app = await _open(env, library, team)
    app.attach(up)
    await app.start_delivery()
    await app.outbox.drain()
    assert [r.text for r in room_messages(up, DOWN)] == [f"CANARY-PENDING {case}"]
    assert await _case_ids(app) == {case}, "the case made after the backup is gone"
    assert late != case
    person = FakeUser(app, up, "reporter-1")
    await person.say("/menu")
    state = await person.press("Where is my case?")
    assert f"Your case {case}" in state.text, "the same person reaches the same case"
    clock_now = time.time() + 2 * 3600 + 60
    checkins = Checkins(app.db, app.casework, app.push, clock=lambda: clock_now)
    assert await checkins.tick() == (1, 0), "the check-in survived"
    await app.outbox.drain()
    assert "are you safe right now?" in room_messages(up, person.chat)[-1].text
    await _close(app)


async def test_restore_refuses_while_the_bot_runs_and_checks_before_replacing(
    env: Path, tmp_path: Path, library: Library, capsys: pytest.CaptureFixture[str]
) -> None:
    app = await _open(env, library, Team())
    target = tmp_path / "b.db"
    await asyncio.to_thread(backup, env, TEST_KEY, target)
    lock = DataDirLock.acquire(env.parent, "running the bot")
    try:
        assert await asyncio.to_thread(cli.main, ["data", "restore", str(target)]) == 2
        assert "another hrd-bot process" in capsys.readouterr().err
    finally:
        lock.release()
    await _close(app)

    before = _bytes(env)
    foreign = tmp_path / "foreign.db"
    shutil.copy(target, foreign)
    rekey(foreign, TEST_KEY, DbKey("cd" * 32))
    assert cli.main(["data", "restore", str(foreign)]) == 2
    assert "does not open" in capsys.readouterr().err
    newer = tmp_path / "newer.db"
    shutil.copy(target, newer)
    conn = keyed(str(newer), TEST_KEY)
    conn.execute("PRAGMA user_version = 999")
    conn.close()
    assert cli.main(["data", "restore", str(newer)]) == 2
    assert "newer than this program" in capsys.readouterr().err
    assert _bytes(env) == before, "nothing was replaced"
    assert cli.main(["data", "restore", str(tmp_path / "none.db")]) == 2


async def test_rekey_round_trip_serves_the_same_reporter(
    env: Path, tmp_path: Path, library: Library, capsys: pytest.CaptureFixture[str]
) -> None:
    team = Team()
    app = await _open(env, library, team)
    transport = FakeTransport()
    app.attach(transport)
    case = await submit_report(FakeUser(app, transport, "reporter-1"))
    await _close(app)

    new_file = tmp_path / "keys" / "new.key"
    new_file.parent.mkdir()
    assert cli.main(["data", "rekey", "--new-key-file", str(new_file)]) == 0
    out = capsys.readouterr().out
    assert "new key written" in out and "re-encrypted" in out
    assert new_file.stat().st_mode & 0o077 == 0
    new = DbKey(new_file.read_text().strip())
    assert new.value not in out and TEST_KEY.value not in out
    with pytest.raises(WrongKeyError):
        await Database.open(env, TEST_KEY)
    app = await _open(env, library, team, new)
    app.attach(transport)
    person = FakeUser(app, transport, "reporter-1")
    await person.say("/menu")
    assert f"Your case {case}" in (await person.press("Where is my case?")).text
    await _close(app)
    inside = env.parent / "new.key"
    assert cli.main(["data", "rekey", "--new-key-file", str(inside)]) == 2
    assert not inside.exists()


async def test_a_rekey_killed_before_or_after_its_rename_is_recovered_by_running_it_again(
    env: Path, tmp_path: Path, library: Library, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = await _open(env, library, Team())
    await app.db.run(
        lambda c: c.execute("INSERT INTO settings VALUES ('canary', ?)", (PLAIN_CANARY,))
    )
    await _close(app)
    new = DbKey("cd" * 32)

    def killed(*_: object) -> None:
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr("bot.storage.backup.os.replace", killed)
        with pytest.raises(KeyboardInterrupt):
            rekey(env, TEST_KEY, new)
    check_copy(env, TEST_KEY)  # killed before the rename: the old key still opens it

    with monkeypatch.context() as patch:
        patch.setattr("bot.storage.backup.keycheck.write", killed)
        with pytest.raises(KeyboardInterrupt):
            rekey(env, TEST_KEY, new)
    with pytest.raises(WrongKeyError):
        check_copy(env, TEST_KEY)
    assert rekey(env, TEST_KEY, new) is False, "run again: only the key check is written"
    assert not _names(env.parent, "*.rekeying*"), "the killed run's copy is gone"
    db = await Database.open(env, new)
    row = await db.run(
        lambda c: c.execute("SELECT value FROM settings WHERE name='canary'").fetchone()
    )
    await db.close()
    assert bytes(row[0]) == PLAIN_CANARY
    assert WHAT.encode() not in _bytes(env)


async def test_a_restore_killed_before_its_rename_is_finished_by_running_it_again(
    env: Path, tmp_path: Path, library: Library, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = await _open(env, library, Team())
    target = tmp_path / "b.db"
    await asyncio.to_thread(backup, env, TEST_KEY, target)
    await app.db.run(
        lambda c: c.execute("INSERT INTO settings VALUES ('canary', ?)", (PLAIN_CANARY,))
    )
    await _close(app)

    def killed(*_: object) -> None:
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr("bot.storage.backup.os.replace", killed)
        with pytest.raises(KeyboardInterrupt):
            restore(env, TEST_KEY, target)
    check_copy(env, TEST_KEY)  # the old database is still in place
    restore(env, TEST_KEY, target)
    assert _names(env.parent, "*") == ["hrd-bot.db", "hrd-bot.db.check"]
    db = await Database.open(env, TEST_KEY)
    row = await db.run(lambda c: c.execute("SELECT 1 FROM settings WHERE name='canary'").fetchone())
    await db.close()
    assert row is None, "the restored database is the backup, not the old file"


def test_the_cli_backs_up_a_running_bot_process_and_restore_waits_for_it_to_stop(
    tmp_path: Path,
) -> None:
    env = bot_env(tmp_path / "data", HRD_BOT_DB_KEY=TEST_KEY.value)
    bot = ConsoleBot(env)
    try:
        bot.wait_for("English")
        bot.type("1", "How can I help")
        made = run_cli(env, "data", "backup", str(tmp_path / "live.db"))
        assert made.returncode == 0, made.stderr
        refused = run_cli(env, "data", "restore", str(tmp_path / "live.db"))
        assert refused.returncode == 2 and "another hrd-bot process" in refused.stderr
        bot.type("Language", "Which language")
    finally:
        assert bot.terminate() == 0
    restored = run_cli(env, "data", "restore", str(tmp_path / "live.db"))
    assert restored.returncode == 0, restored.stderr
    again = ConsoleBot(env)
    try:
        first = again.wait_for("How can I help")
        assert "Which language" not in first, "the backup kept the chosen language"
    finally:
        assert again.terminate() == 0
