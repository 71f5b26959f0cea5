"""The console bot as a real process: piped input, a first-run key, a wrong key, clean logs."""

from __future__ import annotations

import resource
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.conftest import CONTENT
from tests.processes import ConsoleBot, bot_env, run_cli

KEY = "12" * 32
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
    run = run_console(tmp_path, b"1\n3\n1\n1\nBack\n/help\n")
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
    run_console(tmp_path, b"1\n4\n")
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


def test_sigterm_with_stdin_open_ends_cleanly(tmp_path: Path) -> None:
    bot = ConsoleBot(bot_env(tmp_path, HRD_BOT_DB_KEY=KEY))
    bot.wait_for("Which language")
    bot.type("English", "How can I help?")
    assert bot.terminate() == 0
    errors = bot.stderr()
    assert "Fatal Python error" not in errors
    assert "Traceback" not in errors


def test_a_second_process_on_the_same_folder_is_refused(tmp_path: Path) -> None:
    env = bot_env(tmp_path, HRD_BOT_DB_KEY=KEY)
    bot = ConsoleBot(env)
    bot.wait_for("Which language")
    second = run_cli(env, "run", "--console", stdin=b"1\n")
    assert second.returncode == 2
    assert second.stderr.splitlines() == [
        f"error: another hrd-bot process is using {tmp_path} (pid {bot.proc.pid}, running "
        "the bot); only one process may use a data folder at a time"
    ]
    assert second.stdout == ""
    admin = run_cli(env, "staff", "list")
    assert admin.returncode == 2
    assert admin.stderr.strip().endswith("stop the bot first (systemctl stop hrd-bot)")
    assert len(admin.stderr.splitlines()) == 1
    assert bot.terminate() == 0
    assert run_cli(env, "staff", "list").returncode == 0
    assert run_cli(env, "run", "--console").returncode == 0


def _files_limited_to(size: int) -> Callable[[], None]:
    def limit() -> None:
        """In the child: no file may grow past `size`, so the database's writes soon fail."""
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))

    return limit


def test_a_failed_save_is_answered_and_the_console_keeps_going(tmp_path: Path) -> None:
    env = bot_env(tmp_path, HRD_BOT_DB_KEY=KEY)
    command = [sys.executable, "-m", "bot.cli", "run", "--console"]
    created = subprocess.run(command, input=b"", capture_output=True, env=env, timeout=60)
    assert created.returncode == 0, "a first start made the database"
    size = (tmp_path / "hrd-bot.db").stat().st_size
    lines = 40
    typed = b"1\n" + b"1\nBack\n" * lines
    run = subprocess.run(
        command,
        input=typed,
        capture_output=True,
        env=env,
        preexec_fn=_files_limited_to(size + 64_000),
        timeout=60,
        check=False,
    )
    out, errors = run.stdout.decode(), run.stderr.decode()
    assert run.returncode == 0, errors
    assert "because of a storage fault on the server" in out
    assert "storage fault: the disk holding" in errors, "the operator is told"
    assert "Traceback" not in errors and "Fatal Python error" not in errors
    assert out.count("\n\n") >= 2 * lines, "every line was answered"
