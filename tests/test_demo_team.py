"""`hrd-bot run --demo-team`: report, alert, reply, answer and close on one terminal (a
real process), and a demo data folder refused by doctor, Telegram and Matrix."""

from __future__ import annotations

import re
from pathlib import Path

from tests.processes import ConsoleBot, bot_env, run_cli

REPORT = [
    ("1", "How can I help"),  # English
    ("Report a risk", "Start the report"),
    ("1", "Question 1 of 7"),
    ("CANARY-WHAT they followed me", "Question 2"),
    ("yesterday", "Question 3"),
    ("Colombia", "Question 4"),
    ("me and two colleagues", "Question 5"),
    ("Danger now", "Question 6"),
    ("here, evenings", "Question 7"),
    ("Yes, if it helps", "Before you send"),
]


def test_the_whole_loop_on_one_terminal(tmp_path: Path) -> None:
    bot = ConsoleBot(bot_env(tmp_path), args=("--demo-team",))
    try:
        bot.wait_for("English")
        for line, then in REPORT:
            bot.type(line, then)
        alert = bot.type("Send the report", "[staff room] New case HRD-")
        case = re.findall(r"HRD-[A-Z0-9]{4}-[A-Z0-9]{4}", alert)[-1]
        bot.wait_for("[staff room] > CANARY-WHAT they followed me")
        bot.wait_for(f"Your case reference is {case}")
        bot.type("staff: /cases", f"[staff room] {case} [critical] Colombia new")
        bot.type(f"staff: /reply {case} Are you safe tonight?", "Protection team: Are you safe")
        bot.wait_for(f"[staff room] Reply to the reporter of {case}: delivered.")
        bot.type("CANARY-ANSWER we are safe", "[staff room] > CANARY-ANSWER we are safe")
        bot.wait_for("Delivered to the team, locked.")
        bot.type(f"staff: /close {case} relocated", f"[staff room] {case} closed.")
        bot.type("/menu", "How can I help")
        assert "Your case" in bot.type("Where is my case?", "is closed")
    finally:
        assert bot.terminate() == 0
    err = bot.stderr()
    assert "type staff commands as 'staff: /cases'" in err
    assert "CANARY" not in err, "logs hold no message text"
    assert (tmp_path / "demo-team" / "DEMO").read_text().startswith("DEMO TEAM")
    assert (tmp_path / "demo-team" / "staff.key").stat().st_mode & 0o077 == 0


def test_without_the_flag_staff_lines_are_a_person_s_words(tmp_path: Path) -> None:
    run = run_cli(bot_env(tmp_path), "run", stdin=b"1\nstaff: /cases\n")
    assert run.returncode == 0
    assert "[staff room]" not in run.stdout
    assert not (tmp_path / "demo-team").exists()


def test_a_demo_folder_is_refused_by_doctor_telegram_and_matrix(tmp_path: Path) -> None:
    assert run_cli(bot_env(tmp_path), "run", "--demo-team", stdin=b"1\n").returncode == 0
    doctor = run_cli(bot_env(tmp_path), "doctor")
    assert doctor.returncode == 1
    assert "UNSAFE  this data folder holds a demo team" in doctor.stdout
    telegram = run_cli(bot_env(tmp_path, TELEGRAM_BOT_TOKEN="123:abc"), "run")
    matrix = run_cli(bot_env(tmp_path, MATRIX_HOMESERVER="http://127.0.0.1:9"), "run")
    for refused in (telegram, matrix):
        assert refused.returncode == 2
        assert "holds a demo team's throw-away staff key pair" in refused.stderr
    elsewhere = run_cli(
        bot_env(tmp_path / "other", TELEGRAM_BOT_TOKEN="123:abc"), "run", "--demo-team"
    )
    assert elsewhere.returncode == 2
    assert "--demo-team runs on the console only" in elsewhere.stderr
    assert not (tmp_path / "other").exists(), "refused before anything was made"
