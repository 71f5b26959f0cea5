"""`hrd-bot run` starts the Matrix transport from the environment, and refuses a bare store."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import CONTENT
from tests.matrix.activist import Activist
from tests.matrix.fixtures import unique
from tests.matrix.homeserver import Account, Synapse

CANARY = "Kenya"


def bot_env(synapse: Synapse, account: Account, data: Path, passphrase: str) -> dict[str, str]:
    secrets = data / "secrets"
    secrets.mkdir(parents=True, exist_ok=True)
    (secrets / "password").write_text(account.password)
    (secrets / "passphrase").write_text(passphrase)
    kept = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("HRD_BOT_", "TELEGRAM_", "MATRIX_"))
    }
    return {
        **kept,
        "HRD_BOT_DATA_DIR": str(data),
        "HRD_BOT_CONTENT_DIR": str(CONTENT),
        "HRD_BOT_DB_KEY": "cd" * 32,
        "HRD_BOT_LOG_LEVEL": "DEBUG",
        "MATRIX_HOMESERVER": synapse.url,
        "MATRIX_USER_ID": account.user_id,
        "MATRIX_PASSWORD_FILE": str(secrets / "password"),
        "MATRIX_STORE_PASSPHRASE_FILE": str(secrets / "passphrase"),
    }


def start_cli(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "run"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
    )


@pytest.fixture
async def person(synapse: Synapse, tmp_path: Path) -> AsyncIterator[tuple[Activist, Account]]:
    bot_account = synapse.register(unique("clibot"))
    name = unique("activist")
    someone = Activist(synapse.url, synapse.register(name), tmp_path / name, bot_account.user_id)
    await someone.start()
    try:
        yield someone, bot_account
    finally:
        await someone.stop()


async def test_hrd_bot_run_answers_on_matrix_and_logs_nothing_personal(
    synapse: Synapse, person: tuple[Activist, Account], tmp_path: Path
) -> None:
    activist, account = person
    log = tmp_path / "stderr.log"
    process = start_cli(bot_env(synapse, account, tmp_path / "data", "pass phrase"), log)
    try:
        chat = await activist.open_dm()
        assert "Which language do you want to use?" in chat.last
        await chat.pick("English")
        await chat.pick("Legal information")
        assert CANARY in await chat.say(CANARY)
    finally:
        process.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(process.wait, 30)
    stderr = log.read_text()
    assert code == 0, stderr
    assert "started:" in stderr and "matrix" in stderr
    people = (account.user_id, activist.account.user_id, activist.account.device_id)
    secrets = (account.device_id, account.access_token, account.password, chat.room_id)
    for secret in (*people, *secrets, CANARY, "English"):
        assert secret not in stderr


def test_an_empty_store_passphrase_refuses_to_start(synapse: Synapse, tmp_path: Path) -> None:
    account = synapse.register(unique("clibot"))
    env = bot_env(synapse, account, tmp_path / "data", "")
    run = subprocess.run(
        [sys.executable, "-m", "bot.cli", "run"], env=env, capture_output=True, timeout=60
    )
    assert run.returncode == 2
    assert "MATRIX_STORE_PASSPHRASE" in run.stderr.decode()
    assert not (tmp_path / "data" / "matrix").exists()
