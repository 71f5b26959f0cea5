"""Damaged storage is named as damaged, a wrong key changes no file, a full disk is told.

Each case runs the real bot on a real SQLCipher file that a first run created, damaged
the way a failing disk, a careless copy or a crash would. Where nothing may change, the
sha256 of every file of the database (main file, `-wal`, `-shm`, key check) is compared.
A full disk is a real one: a small tmpfs (needs root; skipped otherwise).
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bot.app import App
from bot.content.library import Library
from bot.crypto.keys import PrivateKey
from bot.storage import Database, DbKey
from bot.storage.opening import PAGE_SIZE
from tests.fakes import FakeTransport, FakeUser
from tests.processes import ConsoleBot, bot_env, run_cli

KEY = "ab" * 32
WRONG = "cd" * 32
DB = "hrd-bot.db"


def _env(data: Path, key: str = KEY) -> dict[str, str]:
    return bot_env(data, HRD_BOT_DB_KEY=key)


def _start(data: Path, key: str = KEY, stdin: bytes = b"1\n") -> subprocess.CompletedProcess[str]:
    return run_cli(_env(data, key), "run", "--console", stdin=stdin)


def _hashes(data: Path) -> dict[str, str]:
    return {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(data.glob(f"{DB}*"))
    }


def _one_error(run: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("error: "), run.stderr
    assert "Traceback" not in run.stderr
    return lines[0]


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database a first run created and used: several pages, no WAL left."""
    data = tmp_path_factory.mktemp("made")
    run = _start(data, stdin=b"1\n1\n2\n")
    assert run.returncode == 0, run.stderr
    assert (data / DB).stat().st_size >= 8 * PAGE_SIZE
    return data


@pytest.fixture
def data(made: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "data"
    copy.mkdir(mode=0o700)
    for path in made.glob(f"{DB}*"):
        (copy / path.name).write_bytes(path.read_bytes())
        (copy / path.name).chmod(0o600)
    return copy


def _flip(offset: int) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        with path.open("r+b") as handle:
            handle.seek(offset)
            byte = handle.read(1)[0]
            handle.seek(offset)
            handle.write(bytes([byte ^ 0x01]))

    return damage


def _zero_page(number: int) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        with path.open("r+b") as handle:
            handle.seek((number - 1) * PAGE_SIZE)
            handle.write(bytes(PAGE_SIZE))

    return damage


def _truncate(size: int) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        os.truncate(path, size)

    return damage


DAMAGE = [
    pytest.param(_truncate(5 * PAGE_SIZE + 1000), "is not a whole number of pages", id="truncated"),
    pytest.param(_flip(200), "page 1 fails its checksum, and the key check confirms", id="page-1"),
    pytest.param(_flip(5), "page 1 fails its checksum, and the key check confirms", id="salt"),
    pytest.param(_truncate(0), "the file is empty (0 bytes)", id="empty"),
    pytest.param(_zero_page(2), "fail their checksum (pages 2)", id="page-2-zeroed"),
    pytest.param(_flip(6 * PAGE_SIZE + 300), "fail their checksum (pages 7)", id="later-page"),
    pytest.param(_truncate(3 * PAGE_SIZE), "is damaged", id="truncated-on-a-page"),
]


@pytest.mark.parametrize(("damage", "told"), DAMAGE)
def test_damage_is_named_and_no_file_changes(
    data: Path, damage: Callable[[Path], None], told: str
) -> None:
    damage(data / DB)
    before = _hashes(data)
    run = _start(data)
    line = _one_error(run)
    assert run.returncode == 2
    assert line.startswith(f"error: the database {data / DB} is damaged: ")
    assert told in line
    assert "restore it from a backup" in line
    assert "key does not open" not in line
    assert run.stdout == "", "the bot said nothing to a user"
    assert _hashes(data) == before


def test_without_a_key_check_file_page_1_damage_is_told_by_the_other_pages(data: Path) -> None:
    """A database from before the key check file: its other pages are the evidence."""
    (data / f"{DB}.check").unlink()
    _flip(200)(data / DB)
    before = _hashes(data)
    line = _one_error(_start(data))
    assert "page 1 fails its checksum while later pages pass" in line
    assert _hashes(data) == before


def test_the_key_check_file_is_written_for_an_older_database(data: Path) -> None:
    (data / f"{DB}.check").unlink()
    assert _start(data).returncode == 0
    assert (data / f"{DB}.check").exists()
    line = _one_error(_start(data, WRONG))
    assert line == f"error: the database key does not open {data / DB}"


def test_a_missing_database_is_not_replaced_by_an_empty_one(data: Path) -> None:
    (data / DB).unlink()
    before = _hashes(data)
    run = _start(data)
    line = _one_error(run)
    assert run.returncode == 2
    assert "is missing, but hrd-bot.db.check shows it existed" in line
    assert _hashes(data) == before


@pytest.mark.parametrize("check_file", [True, False], ids=["key-check", "no-key-check"])
def test_a_wrong_key_after_a_crash_leaves_the_wal_untouched(
    tmp_path: Path, check_file: bool
) -> None:
    data = tmp_path / "data"
    bot = ConsoleBot(_env(data))
    bot.wait_for("Which language")
    bot.type("English", "How can I help?")
    bot.type("Report a risk to the protection team", "Start the report")
    bot.kill()
    assert (data / f"{DB}-wal").stat().st_size > 0, "the crash left a WAL"
    if not check_file:
        (data / f"{DB}.check").unlink()
    before = _hashes(data)
    assert {f"{DB}-wal", f"{DB}-shm"} <= set(before)
    run = _start(data, WRONG)
    assert run.returncode == 2
    assert _one_error(run) == f"error: the database key does not open {data / DB}"
    assert _hashes(data) == before
    resumed = _start(data, stdin=b"")
    assert resumed.returncode == 0, resumed.stderr
    assert "Start the report" in resumed.stdout, "the right key still finds the crashed session"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip("a small tmpfs cannot be mounted here (needs root)")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(folder: Path) -> Path:
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for size in (1 << 16, 4096, 1):
            while True:
                try:
                    os.write(fd, b"\0" * size)
                except OSError:
                    break
    finally:
        os.close(fd)
    return filler


def test_a_full_disk_at_start_is_one_line(small_disk: Path) -> None:
    data = small_disk / "data"
    assert _start(data).returncode == 0
    filler = _fill(small_disk)
    before = _hashes(data)
    run = _start(data)
    line = _one_error(run)
    assert run.returncode == 75, "a temporary failure: systemd may try again"
    assert (
        line == f"error: no space left on the device holding {data}; free some space and try again"
    )
    after = _hashes(data)
    assert {name: after[name] for name in before} == before, "no file of the database changed"
    filler.unlink()
    assert _start(data).returncode == 0


def test_a_full_disk_mid_conversation_is_told_and_loses_nothing(small_disk: Path) -> None:
    data = small_disk / "data"
    recovery = PrivateKey.generate().public.text
    assert run_cli(_env(data), "recovery", "set", "--public-key", recovery).returncode == 0
    bot = ConsoleBot(_env(data))
    bot.wait_for("Which language")
    bot.type("English", "How can I help?")
    bot.type("Report a risk to the protection team", "Start the report")
    bot.type("Start the report", "Question 1 of 7")
    bot.type("FULL-DISK-ANSWER-ONE", "Question 2 of 7")
    filler = _fill(small_disk)
    told = bot.type("FULL-DISK-ANSWER-TWO", "server has run out of storage space")
    assert "Everything you sent before it is kept" in told
    assert "Question 3 of 7" not in told
    filler.unlink()
    bot.type("FULL-DISK-ANSWER-TWO", "Question 3 of 7")
    bot.kill()
    bot = ConsoleBot(_env(data))
    resumed = bot.wait_for("Continue the report")
    assert "Answered so far: 2 of 7" in resumed
    filler = _fill(small_disk)
    assert bot.terminate() == 0, "a stop on a full disk keeps the WAL and ends cleanly"
    assert "Traceback" not in bot.stderr()
    filler.unlink()
    again = _start(data, stdin=b"")
    assert "Answered so far: 2 of 7" in again.stdout, again.stderr


async def test_a_page_damaged_while_running_is_told_to_user_and_operator(
    tmp_path: Path, library: Library, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "data" / DB
    db = await Database.open(path, DbKey(KEY))
    try:
        app = await App.open(db, library)
        transport = FakeTransport()
        people = [FakeUser(app, transport, str(5000 + n)) for n in range(3)]
        for person in people:
            await person.say("/start")
            await person.press("English")
        root = await db.run(
            lambda conn: conn.execute(
                "SELECT rootpage FROM sqlite_master WHERE name = 'sessions'"
            ).fetchone()[0]
        )
        await db.run(lambda conn: conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall())
        await db.run(lambda conn: conn.execute("PRAGMA shrink_memory"))  # no page cached
        app.sessions.dropped(
            [app.pseudonyms.user(transport.name, p.platform_id).key for p in people]
        )
        _flip((root - 1) * PAGE_SIZE + 200)(path)

        told = [await person.say("/help") for person in people]
        for reply in told:
            assert "because of a storage fault on the server" in reply.text
        faults = [r for r in caplog.records if r.levelno == logging.CRITICAL]
        assert len(faults) == 1, "one line for the operator, not one per message"
        assert f"the database {path} is damaged" in faults[0].getMessage()
        assert "restore it from a backup" in faults[0].getMessage()
    finally:
        await db.close()
    run = _start(path.parent, stdin=b"")
    assert f"fail their checksum (pages {root})" in _one_error(run)
