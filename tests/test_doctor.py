"""`hrd-bot doctor` on a real data folder and database: safe and unsafe deployments, swap
and clock seen through fake /proc and /sys trees, and nothing secret in what it prints."""

from __future__ import annotations

import asyncio
import urllib.request
from pathlib import Path
from urllib.parse import quote

import pytest

from bot import cli
from bot.cases.store import CasesStore
from bot.cli import doctor
from bot.cli.doctor import TIME_ERROR, Finding, clock, swap
from bot.config import Settings
from bot.crypto.keyfile import KdfParams, write_private_key
from bot.crypto.keys import PrivateKey
from bot.storage import Database
from bot.storage.dbkey import DbKey
from tests.conftest import TEST_KEY
from tests.matrix.fixtures import Bot, unique
from tests.matrix.homeserver import Account, Synapse
from tests.matrix.staff import Desk, group_room, invite

TG_ROOM = "telegram:-1001234567"
MX_ROOM = "matrix:!staffroomid:example.org"
MX_ONCALL = "matrix:!oncallroomid:example.org"
FAST = KdfParams(time_cost=1, memory_kib=8, parallelism=1)


@pytest.fixture(autouse=True)
def quiet_host(monkeypatch: pytest.MonkeyPatch) -> None:
    """This machine's swap and clock are not the subject here: `swap` and `clock`, imported
    before this patch, are tested on fake trees below."""
    monkeypatch.setattr(doctor, "swap", lambda: Finding("ok", "swap (test)"))
    monkeypatch.setattr(doctor, "clock", lambda: Finding("ok", "clock (test)"))


async def _database(data: Path, key: DbKey, *, staffed: bool) -> None:
    db = await Database.open(data / "hrd-bot.db", key)
    if staffed:
        store = CasesStore(db)
        await store.add_staff("Alice", ["telegram:1"], PrivateKey.generate().public)
        await store.set_recovery(PrivateKey.generate().public)
    await db.close()


def _env(data: Path, **more: str) -> dict[str, str]:
    return {"HRD_BOT_DATA_DIR": str(data), **more}


def _lines(settings: Settings) -> list[str]:
    return [finding.line() for finding in doctor.examine(settings)]


async def test_a_safe_deployment_passes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data, creds = tmp_path / "data", tmp_path / "creds"
    creds.mkdir()
    (creds / "HRD_BOT_DB_KEY").write_text(TEST_KEY.value)
    await _database(data, TEST_KEY, staffed=True)
    env = _env(
        data,
        CREDENTIALS_DIRECTORY=str(creds),
        HRD_BOT_STAFF_ROOMS=MX_ROOM,
        HRD_BOT_ONCALL=MX_ONCALL,
    )
    lines = _lines(Settings.from_env(env))
    assert not [line for line in lines if line.startswith("UNSAFE")], lines
    assert "ok      1 active staff key(s)" in lines and "ok      a recovery key is set" in lines
    assert any(line.startswith("unknown 1 Matrix staff room(s)") for line in lines)

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert cli.main(["doctor"]) == 0
    assert capsys.readouterr().out.endswith("0 unsafe, 1 not checked\n")


async def test_an_unsafe_deployment_is_named_line_by_line_without_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    local_key = DbKey("cd" * 32)
    data.mkdir(mode=0o755)
    (data / "db.key").write_text(local_key.value + "\n")
    (data / "db.key").chmod(0o600)
    await _database(data, local_key, staffed=False)
    data.chmod(0o755)
    write_private_key(
        data / "alice-private.key", PrivateKey.generate(), "pw", forbidden=[], params=FAST
    )
    (data / "exports").mkdir()
    (data / "exports" / "case.json").write_text("{}")
    (data / "exports" / "case.json").chmod(0o644)
    env = _env(data, HRD_BOT_STAFF_ROOMS=f"{TG_ROOM},{MX_ROOM}")
    lines = _lines(Settings.from_env(env))
    unsafe = [line for line in lines if line.startswith("UNSAFE")]
    expected = [
        "the data folder is open to other users: chmod 700",
        "1 file(s) in the data folder are world-readable: chmod -R go-rwx",
        "1 database key file(s) inside the data folder",
        "1 private key file(s) inside the data folder",
        "no staff key",
        "no recovery key",
        "1 staff room(s) are not end-to-end encrypted",
        "staff rooms are mixed",
        "no on-call chat",
    ]
    for start in expected:
        assert any(line.startswith(f"UNSAFE  {start}") for line in unsafe), (start, unsafe)
    assert len(unsafe) == len(expected), unsafe

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert cli.main(["doctor"]) == 1
    out = capsys.readouterr().out
    for secret in (local_key.value, "-1001234567", "staffroomid", "alice", "case.json"):
        assert secret not in out


async def test_a_key_file_is_judged_by_where_it_lies(tmp_path: Path) -> None:
    data = tmp_path / "data"
    await _database(data, TEST_KEY, staffed=True)
    beside = tmp_path / "db-key"
    beside.write_text(TEST_KEY.value)
    beside.chmod(0o640)
    lines = _lines(Settings.from_env(_env(data, HRD_BOT_DB_KEY_FILE=str(beside))))
    assert "UNSAFE  the database key file is open to other users: chmod 600 " + str(beside) in lines
    beside.chmod(0o600)
    lines = _lines(Settings.from_env(_env(data, HRD_BOT_DB_KEY_FILE=str(beside))))
    assert any("same file system as the data folder" in line for line in lines)
    lines = _lines(Settings.from_env(_env(data, HRD_BOT_DB_KEY=TEST_KEY.value)))
    assert any(
        line.startswith("UNSAFE  the database key is set in the environment") for line in lines
    )
    assert "ok      1 active staff key(s)" in lines, "it still reads the team with that key"
    lines = _lines(Settings.from_env(_env(data)))
    assert "UNSAFE  no database key is configured" in lines[1]
    assert "unknown staff and recovery keys: not checked: no database key" in lines


async def test_an_interrupted_restore_or_rekey_is_named(tmp_path: Path) -> None:
    data = tmp_path / "data"
    await _database(data, TEST_KEY, staffed=True)
    settings = Settings.from_env(_env(data, HRD_BOT_DB_KEY=TEST_KEY.value))
    for leftover, command in [(".rekeying", "data rekey"), (".replaced", "data restore")]:
        (data / f"hrd-bot.db{leftover}").write_bytes(b"")
        interrupted = [line for line in _lines(settings) if "was interrupted" in line]
        assert interrupted == [
            f"UNSAFE  a restore or rekey was interrupted: run the same hrd-bot {command}"
            + (
                " --new-key-file … again (bot stopped)"
                if "rekey" in command
                else " again (bot stopped) to finish it"
            )
        ]
        (data / f"hrd-bot.db{leftover}").unlink()


def _host(tmp_path: Path, swaps: list[str], dm: dict[str, str]) -> tuple[Path, Path]:
    tmp_path.mkdir(exist_ok=True)
    proc = tmp_path / "swaps"
    header = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"
    proc.write_text(header + "".join(f"{s}\tpartition\t1024\t0\t-2\n" for s in swaps))
    block = tmp_path / "block"
    for name, uuid in dm.items():
        (block / name / "dm").mkdir(parents=True)
        (block / name / "dm" / "uuid").write_text(uuid + "\n")
    return proc, block


def test_swap_is_judged_by_dm_crypt_or_zram(tmp_path: Path) -> None:
    dm = {"dm-0": "CRYPT-PLAIN-swap", "dm-1": "LVM-abc"}
    proc, block = _host(tmp_path, ["/dev/dm-0", "/dev/zram0"], dm)
    assert swap(proc, block).verdict == "ok"
    proc, block = _host(tmp_path / "b", ["/dev/dm-0", "/dev/dm-1", "/swapfile"], dm)
    found = swap(proc, block)
    assert found.verdict == "unsafe" and found.what == "2 swap area(s) not encrypted"
    proc, block = _host(tmp_path / "c", [], {})
    assert swap(proc, block) == Finding("ok", "no swap")
    assert swap(tmp_path / "none", block).verdict == "unknown"


def test_the_clock_says_could_not_tell_when_it_cannot() -> None:
    assert clock(lambda: "yes", lambda: None).verdict == "ok"
    assert clock(lambda: "no", lambda: 0).verdict == "unsafe"
    assert clock(lambda: None, lambda: TIME_ERROR).verdict == "unsafe"
    assert clock(lambda: None, lambda: 0).verdict == "ok"
    unknown = clock(lambda: None, lambda: None)
    assert unknown.verdict == "unknown" and "could not tell" in unknown.line()


def _join(synapse: Synapse, account: Account, room_id: str) -> None:
    request = urllib.request.Request(
        f"{synapse.url}/_matrix/client/v3/join/{quote(room_id, safe='')}",
        data=b"{}",
        method="POST",
        headers={"Authorization": f"Bearer {account.access_token}"},
    )
    with urllib.request.urlopen(request, timeout=30):
        pass


async def test_matrix_staff_rooms_are_read_from_the_homeserver_without_a_sync(
    synapse: Synapse, bot: Bot, desk: Desk, tmp_path: Path
) -> None:
    encrypted, plain = desk.room.room_id, desk.plain.room_id
    outsider = synapse.register(unique("outsider"))
    mixed = await group_room(desk.staff, encrypted=True)
    for user in (bot.account.user_id, outsider.user_id):
        await invite(desk.staff, mixed, user)
    await asyncio.to_thread(_join, synapse, bot.account, mixed)
    await asyncio.to_thread(_join, synapse, outsider, mixed)
    base = {
        "HRD_BOT_DATA_DIR": str(tmp_path / "d"),
        "HRD_BOT_ONCALL": "matrix:!oncall:x",
        "MATRIX_HOMESERVER": synapse.url,
        "MATRIX_USER_ID": bot.account.user_id,
        "MATRIX_STAFF_USER_IDS": desk.staff.account.user_id,
    }

    def rooms(*ids: str, token: str | None = bot.account.access_token) -> list[str]:
        env = {**base, "HRD_BOT_STAFF_ROOMS": ",".join(f"matrix:{i}" for i in ids)}
        if token:
            env["MATRIX_ACCESS_TOKEN"] = token
        return [f.line() for f in doctor.chats(Settings.from_env(env)) if "Matrix" in f.what]

    found = await asyncio.to_thread(rooms, encrypted)
    assert found == ["ok      1 Matrix staff room(s): encrypted, staff only"]
    found = await asyncio.to_thread(rooms, encrypted, plain, mixed, "!nowhere:localhost")
    assert [line.split(":")[0] for line in found] == [
        "UNSAFE  1 Matrix staff room(s) are not end-to-end encrypted",
        "UNSAFE  1 Matrix staff room(s) hold someone who is not staff",
        "unknown 1 Matrix staff room(s) could not be read",
    ]
    ids = (encrypted, plain, mixed, outsider.user_id, bot.account.user_id, bot.account.access_token)
    assert not any(i in line for i in ids for line in found), "no room id, user id or token"
    (unchecked,) = await asyncio.to_thread(rooms, encrypted, token=None)
    assert unchecked.startswith("unknown 1 Matrix staff room(s): encryption and members: not")
