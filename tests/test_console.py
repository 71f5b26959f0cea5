"""The console bot as a real process: piped input, a first-run key, a wrong key, clean logs."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import CONTENT
from tests.processes import bot_env

CANARIES = ("CANARY-TEXT-8d1f", "Juana Canary Pérez", "+57 300 555 0199")


def run_console(data: Path, stdin: bytes, **env: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", "run"],
        input=stdin,
        capture_output=True,
        env=bot_env(data, CONTENT, **env),
        timeout=60,
        check=False,
    )


def test_piped_session_runs_and_exits_cleanly(tmp_path: Path) -> None:
    run = run_console(tmp_path, b"1\n2\n1\n1\nBack\n/help\n")
    out = run.stdout.decode()
    assert run.returncode == 0, run.stderr.decode()
    assert "Which language do you want to use?" in out
    assert "  1. English" in out
    assert "How can I help?" in out
    assert "physical danger" in out
    assert "/forget" in out
    assert "Created a new database key" in run.stderr.decode()
    assert (tmp_path / "db.key").exists()
    assert not (tmp_path / "hrd-bot.db").read_bytes().startswith(b"SQLite format 3")


def test_state_survives_a_restart_of_the_process(tmp_path: Path) -> None:
    run_console(tmp_path, b"1\n3\n")
    second = run_console(tmp_path, b"")
    assert "How can I help?" not in second.stdout.decode().split("\n\n")[0]
    assert "Which country?" in second.stdout.decode() or "Legal" in second.stdout.decode()
    assert "Created a new database key" not in second.stderr.decode()


def test_empty_input_exits_zero(tmp_path: Path) -> None:
    assert run_console(tmp_path, b"").returncode == 0


def test_wrong_key_is_one_line_and_nonzero(tmp_path: Path) -> None:
    run_console(tmp_path, b"1\n")
    before = (tmp_path / "hrd-bot.db").read_bytes()
    run = run_console(tmp_path, b"1\n", HRD_BOT_DB_KEY="ef" * 32)
    lines = [line for line in run.stderr.decode().splitlines() if line.strip()]
    assert run.returncode == 2
    assert lines == [f"error: the database key does not open {tmp_path / 'hrd-bot.db'}"]
    assert (tmp_path / "hrd-bot.db").read_bytes() == before


def test_binary_and_oversized_lines_are_answered(tmp_path: Path) -> None:
    run = run_console(tmp_path, b"1\n\x00\x01\x02\xff\n" + b"y" * 200_000 + b"\n1\n")
    out = run.stdout.decode()
    assert run.returncode == 0
    assert "could not read that message" in out
    assert "too long" in out
    assert out.rstrip().endswith("Main menu"), "the bot kept going after bad input"


def test_logs_hold_no_message_text_or_platform_ids(tmp_path: Path) -> None:
    typed = "\n".join(["1", CANARIES[0], "2", CANARIES[1], CANARIES[2], "/nope " + CANARIES[0]])
    run = run_console(
        tmp_path, typed.encode() + b"\n", HRD_BOT_LOG_LEVEL="DEBUG", USER="canary-user-5521"
    )
    assert run.returncode == 0
    log = run.stderr.decode()
    assert log.strip(), "debug logging produced lines to check"
    for canary in (*CANARIES, "canary-user-5521"):
        assert canary not in log


def test_malformed_content_stops_the_start_with_path_and_line(tmp_path: Path) -> None:
    content = tmp_path / "content"
    shutil.copytree(CONTENT, content)
    broken = content / "en" / "guides" / "phishing.yaml"
    broken.write_text(broken.read_text().replace("start: start", "start: nowhere"))
    run = subprocess.run(
        [sys.executable, "-m", "bot.cli", "run"],
        input=b"1\n",
        capture_output=True,
        env=bot_env(tmp_path / "data", content),
        timeout=60,
        check=False,
    )
    assert run.returncode == 1
    assert f"{broken}:" in run.stderr.decode()
    assert "start node 'nowhere' does not exist" in run.stderr.decode()
    assert run.stdout == b"", "nothing was said to the user"
