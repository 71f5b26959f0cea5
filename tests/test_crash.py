"""Kill the bot hard mid-interview and after sending: nothing acknowledged is lost or doubled."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bot.crypto.bundle import Bundle, open_bundle
from bot.crypto.keys import PrivateKey
from tests.processes import ConsoleBot, bot_env

KEY = "12" * 32


def _env(data: Path) -> dict[str, str]:
    return bot_env(data, HRD_BOT_DB_KEY=KEY)


def _cli(data: Path, *args: str) -> str:
    run = subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        env=_env(data),
        capture_output=True,
        text=True,
        check=True,
    )
    return run.stdout


def test_hard_kills_lose_no_acknowledged_answer_and_duplicate_no_case(tmp_path: Path) -> None:
    recovery = PrivateKey.generate()
    _cli(tmp_path, "recovery", "set", "--public-key", recovery.public.text)

    bot = ConsoleBot(_env(tmp_path))
    bot.wait_for("Which language")
    bot.type("English", "How can I help?")
    bot.type("Report a risk to the protection team", "Start the report")
    bot.type("Start the report", "Question 1 of 7")
    bot.type("CRASH-ANSWER-ONE", "Question 2 of 7")
    bot.type("CRASH-ANSWER-TWO", "Question 3 of 7")
    bot.kill()

    bot = ConsoleBot(_env(tmp_path))
    resumed = bot.wait_for("Continue the report")
    assert "Answered so far: 2 of 7" in resumed
    bot.type("Continue the report", "Question 3 of 7")
    bot.type("Kenya", "Question 4 of 7")
    bot.type("Skip this question", "Question 5 of 7")
    bot.type("Danger now", "Question 6 of 7")
    bot.type("Skip this question", "Question 7 of 7")
    bot.type("No, only the team", "Send the report")
    sent = bot.type("Send the report", "case reference is")
    case = next(w for w in sent.split() if w.startswith("HRD-")).rstrip(".")
    bot.kill()

    bot = ConsoleBot(_env(tmp_path))
    bot.wait_for("How can I help?")
    bot.kill()
    bundle_path = tmp_path / "bundle.json"
    _cli(tmp_path, "cases", "export", case, "--out", str(bundle_path))
    opened = open_bundle(Bundle.from_json(bundle_path.read_text()), recovery)
    answers = {item.field: item.data for item in opened.items}
    assert answers["answer.what"] == b"CRASH-ANSWER-ONE"
    assert answers["answer.when"] == b"CRASH-ANSWER-TWO"
    assert answers["answer.where"] == b"KE"
    assert answers["answer.urgency"] == b"critical"
    assert len(opened.items) == len(answers), "no answer stored twice"
