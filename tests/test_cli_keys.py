"""The key, staff and case commands, as an operator and a staff member would run them.

The export → open path runs `hrd-bot` in subprocesses with two environments: the
server's (data dir and database key) and a staff machine's (no database at all).
Argon2 runs with tiny costs (`HRD_BOT_INSECURE_FAST_KDF=1`) so the tests stay fast.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cases.store import CasesStore
from bot.cli import main
from bot.storage import Database, DbKey

CHECKOUT = Path(__file__).resolve().parents[1]
PASSPHRASE = "a long passphrase, with spaces "
CANARY = "CANARY-cli-5d1e"


def _hrd_bot(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        cwd=CHECKOUT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def server(tmp_path: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", ""),
        "HRD_BOT_DATA_DIR": str(tmp_path / "server-data"),
        "HRD_BOT_DB_KEY": secrets.token_hex(32),
        "HRD_BOT_LOG_LEVEL": "WARNING",
    }


@pytest.fixture
def staff_machine(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "staff-home"
    home.mkdir()
    return {
        "PATH": os.environ.get("PATH", ""),
        "HRD_BOT_DATA_DIR": str(home / "no-server-here"),
        "HRD_BOT_KEY_PASSPHRASE": PASSPHRASE,
        "HRD_BOT_INSECURE_FAST_KDF": "1",
        "HRD_BOT_LOG_LEVEL": "WARNING",
    }


@pytest.fixture
def in_process(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Environment for calling `main()` directly on a staff machine."""
    monkeypatch.setenv("HRD_BOT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("HRD_BOT_INSECURE_FAST_KDF", "1")
    monkeypatch.delenv("HRD_BOT_KEY_PASSPHRASE", raising=False)
    monkeypatch.delenv("HRD_BOT_KEY_PASSPHRASE_FILE", raising=False)
    return tmp_path


def _generate(env: dict[str, str], path: Path) -> tuple[str, str]:
    done = _hrd_bot(env, "keys", "generate", "--out", str(path))
    assert done.returncode == 0, done.stderr
    public, fingerprint = done.stdout.splitlines()
    assert "tests only" in done.stderr
    return public, fingerprint.removeprefix("fingerprint: ")


async def _case_with_canaries(server: dict[str, str]) -> str:
    data = Path(server["HRD_BOT_DATA_DIR"])
    db = await Database.open(data / "hrd-bot.db", DbKey(server["HRD_BOT_DB_KEY"]))
    try:
        store = CasesStore(db)
        case = await store.create_case(country="MX", urgency="high")
        await store.add_item(case.id, "answer.what", f"{CANARY} they followed me".encode())
        await store.add_item(case.id, "answer.what", b"\x1b]0;pwned\x07 escape attempt")
        await store.add_item(case.id, "attachment", bytes(range(256)))
        return case.id
    finally:
        await db.close()


def test_export_then_open_on_a_staff_machine(
    tmp_path: Path, server: dict[str, str], staff_machine: dict[str, str]
) -> None:
    alice_key = tmp_path / "staff-home" / "alice.key"
    recovery_key = tmp_path / "staff-home" / "recovery.key"
    alice, alice_fp = _generate(staff_machine, alice_key)
    recovery, recovery_fp = _generate(staff_machine, recovery_key)
    assert stat.S_IMODE(alice_key.stat().st_mode) == 0o600

    added = _hrd_bot(
        server,
        "staff",
        "add",
        "--label",
        "Alice",
        "--identity",
        "telegram:123",
        "--identity",
        "matrix:@alice:example.org",
        "--public-key",
        alice,
    )
    assert added.returncode == 0, added.stderr
    assert _hrd_bot(server, "recovery", "set", "--public-key", recovery).returncode == 0
    listed = _hrd_bot(server, "staff", "list")
    assert alice_fp in listed.stdout
    assert "matrix:" in listed.stdout
    assert "@alice:example.org" not in listed.stdout, "identities are stored as pseudonyms"

    case_id = asyncio.run(_case_with_canaries(server))
    bundle = tmp_path / "staff-home" / "case.json"
    exported = _hrd_bot(server, "cases", "export", case_id, "--out", str(bundle))
    assert exported.returncode == 0, exported.stderr
    assert CANARY not in bundle.read_text()

    for key, name in ((alice_key, "staff:1"), (recovery_key, "recovery")):
        opened = _hrd_bot(staff_machine, "cases", "open", str(bundle), "--key", str(key))
        assert opened.returncode == 0, opened.stderr
        assert f"opened as {name}" in opened.stdout
        assert f"{CANARY} they followed me" in opened.stdout
        assert "\x1b" not in opened.stdout
        assert "\\x1b]0;pwned\\x07 escape attempt" in opened.stdout
        assert "<256 bytes of binary data, not shown>" in opened.stdout
        assert "case.export" in opened.stdout
    assert recovery_fp not in listed.stdout


def test_reseal_round_trip_through_the_operator(
    tmp_path: Path, server: dict[str, str], staff_machine: dict[str, str]
) -> None:
    home = tmp_path / "staff-home"
    alice, _ = _generate(staff_machine, home / "alice.key")
    bob, _ = _generate(staff_machine, home / "bob.key")
    carol, carol_fp = _generate(staff_machine, home / "carol.key")
    for label, key in (("Alice", alice), ("Bob", bob)):
        assert (
            _hrd_bot(server, "staff", "add", "--label", label, "--public-key", key).returncode == 0
        )
    case_id = asyncio.run(_case_with_canaries(server))
    assert (
        _hrd_bot(server, "staff", "add", "--label", "Carol", "--public-key", carol).returncode == 0
    )
    assert _hrd_bot(server, "staff", "remove", "2").returncode == 0

    bundle, reseal = home / "case.json", home / "reseal.json"
    assert _hrd_bot(server, "cases", "export", case_id, "--out", str(bundle)).returncode == 0
    made = _hrd_bot(
        staff_machine,
        "cases",
        "reseal",
        str(bundle),
        "--key",
        str(home / "alice.key"),
        "--out",
        str(reseal),
    )
    assert made.returncode == 0, made.stderr
    assert carol_fp in made.stderr
    applied = _hrd_bot(server, "cases", "apply-reseal", str(reseal))
    assert applied.returncode == 0, applied.stderr
    assert "staff:1, staff:3" in applied.stdout

    again = home / "case-again.json"
    assert _hrd_bot(server, "cases", "export", case_id, "--out", str(again)).returncode == 0
    by_carol = _hrd_bot(
        staff_machine, "cases", "open", str(again), "--key", str(home / "carol.key")
    )
    assert CANARY in by_carol.stdout
    by_bob = _hrd_bot(staff_machine, "cases", "open", str(again), "--key", str(home / "bob.key"))
    assert by_bob.returncode == 2
    assert "not sealed to your key" in by_bob.stderr


def test_wrong_passphrase_is_one_clear_line(tmp_path: Path, staff_machine: dict[str, str]) -> None:
    key = tmp_path / "staff-home" / "me.key"
    _generate(staff_machine, key)
    wrong = {**staff_machine, "HRD_BOT_KEY_PASSPHRASE": "not it"}
    shown = _hrd_bot(wrong, "keys", "show-public", str(key))
    assert shown.returncode == 2
    assert shown.stderr == f"error: wrong passphrase for {key}, or the file was altered\n"


def test_generate_refuses_the_data_dir(
    in_process: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HRD_BOT_KEY_PASSPHRASE", PASSPHRASE)
    (in_process / "data").mkdir()
    assert main(["keys", "generate", "--out", str(in_process / "data" / "me.key")]) == 2
    assert "inside the server's data folder" in capsys.readouterr().err
    assert not (in_process / "data" / "me.key").exists()


def test_generate_asks_twice_and_refuses_a_mismatch(
    in_process: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    answers = iter(["first passphrase", "second passphrase"])
    monkeypatch.setattr("getpass.getpass", lambda prompt: next(answers))
    assert main(["keys", "generate", "--out", str(in_process / "me.key")]) == 2
    assert "the two passphrases differ" in capsys.readouterr().err
    assert not (in_process / "me.key").exists()


def test_generate_refuses_an_empty_passphrase(
    in_process: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("getpass.getpass", lambda prompt: "")
    assert main(["keys", "generate", "--out", str(in_process / "me.key")]) == 2
    assert "empty passphrase is refused" in capsys.readouterr().err


def test_typed_passphrase_and_show_public(
    in_process: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("getpass.getpass", lambda prompt: "typed twice")
    assert main(["keys", "generate", "--out", str(in_process / "me.key")]) == 0
    generated = capsys.readouterr().out
    assert main(["keys", "show-public", str(in_process / "me.key")]) == 0
    assert capsys.readouterr().out == generated


def test_passphrase_file_keeps_inner_spaces(
    in_process: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = in_process / "passphrase"
    secret.write_text(PASSPHRASE + "\n")
    monkeypatch.setenv("HRD_BOT_KEY_PASSPHRASE_FILE", str(secret))
    assert main(["keys", "generate", "--out", str(in_process / "me.key")]) == 0
    monkeypatch.delenv("HRD_BOT_KEY_PASSPHRASE_FILE")
    monkeypatch.setenv("HRD_BOT_KEY_PASSPHRASE", PASSPHRASE)
    assert main(["keys", "show-public", str(in_process / "me.key")]) == 0


def test_server_commands_refuse_bad_input(
    server: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in server.items():
        monkeypatch.setenv(name, value)
    assert main(["staff", "add", "--label", "X", "--public-key", "ssh-rsa AAAA"]) == 2
    assert "--public-key: a public key starts with" in capsys.readouterr().err
    assert main(["staff", "remove", "7"]) == 2
    assert "no active staff member 7" in capsys.readouterr().err
    assert main(["staff", "language", "7", "fr"]) == 2
    assert "no active staff member 7" in capsys.readouterr().err
    assert main(["staff", "language", "1", "klingon"]) == 2
    assert "not a language code" in capsys.readouterr().err
    assert main(["cases", "export", "HRD-2345-6789", "--out", "/nonexistent/x"]) == 2
    assert "no case HRD-2345-6789" in capsys.readouterr().err
    assert main(["staff", "list"]) == 0
    assert "no staff" in capsys.readouterr().out


def test_hostile_key_and_bundle_paths_are_one_line_each(
    in_process: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """/dev/zero, a FIFO, 200,000 brackets, an empty salt: `error: …` and status 2."""
    monkeypatch.setenv("HRD_BOT_KEY_PASSPHRASE", PASSPHRASE)
    key = in_process / "me.key"
    assert main(["keys", "generate", "--out", str(key)]) == 0
    capsys.readouterr()
    fifo = in_process / "pipe"
    os.mkfifo(fifo)
    deep = in_process / "deep.json"
    deep.write_text("[" * 200_000 + "]" * 200_000)
    deep.chmod(0o600)
    saltless = in_process / "saltless.key"
    saltless.write_text(key.read_text().replace('"salt": "', '"salt": "", "was": "'))
    saltless.chmod(0o600)
    runs = [
        (["keys", "show-public", "/dev/zero"], "is not a regular file"),
        (["keys", "show-public", str(fifo)], "is not a regular file"),
        (["keys", "show-public", str(deep)], "too large"),
        (["keys", "show-public", str(saltless)], "the salt has 0 bytes"),
        (["cases", "open", "/dev/zero", "--key", str(key)], "is not a regular file"),
        (["cases", "open", str(fifo), "--key", str(key)], "is not a regular file"),
        (["cases", "open", str(deep), "--key", str(key)], "nested too deeply"),
        (["cases", "reseal", str(deep), "--key", str(key), "--out", "x"], "nested too deeply"),
        (["cases", "open", str(key), "--key", "/dev/zero"], "not a case bundle|not a hrd-bot"),
    ]
    for argv, expected in runs:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1, err
        assert re.search(expected, err), err


@pytest.mark.parametrize("source", ["/dev/zero", "fifo"])
def test_a_hostile_passphrase_file_is_one_line(
    in_process: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    source: str,
) -> None:
    """A passphrase file that never ends or never opens is refused at once, not read."""
    if source == "fifo":
        os.mkfifo(in_process / "pipe")
        source = str(in_process / "pipe")
    monkeypatch.setenv("HRD_BOT_KEY_PASSPHRASE_FILE", source)
    assert main(["keys", "generate", "--out", str(in_process / "me.key")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: HRD_BOT_KEY_PASSPHRASE_FILE: ") and err.count("\n") == 1, err
    assert not (in_process / "me.key").exists()
