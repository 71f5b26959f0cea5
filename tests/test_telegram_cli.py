"""`hrd-bot run` starts Telegram when a token is configured, and says so plainly when it is wrong."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from tests.telegram_emulator import Emulator

HRD_BOT = Path(sys.executable).with_name("hrd-bot")


def _env(tmp_path: Path, emu: Emulator, token: str) -> dict[str, str]:
    token_file = tmp_path / "telegram-token"
    token_file.write_text(token + "\n")
    token_file.chmod(0o600)
    return {
        **os.environ,
        "HRD_BOT_DATA_DIR": str(tmp_path / "data"),
        "HRD_BOT_DB_KEY": "ab" * 32,
        "TELEGRAM_BOT_TOKEN_FILE": str(token_file),
        "TELEGRAM_API_BASE_URL": emu.api_base_url,
    }


async def test_run_answers_on_telegram_and_stops_on_sigterm(emu: Emulator, tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        str(HRD_BOT), "run", env=_env(tmp_path, emu, emu.token), stderr=asyncio.subprocess.PIPE
    )
    try:
        await emu.wait_for_call("getUpdates", within=30)
        ana = emu.user("Ana")
        welcome = await ana.ask("/start")
        assert "Which language" in welcome.text
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = await proc.communicate()
    log = err.decode()
    assert proc.returncode == 0, log
    assert "started: telegram" in log
    assert emu.token not in log and str(ana.chat.id) not in log


async def test_a_rejected_token_stops_with_one_line(emu: Emulator, tmp_path: Path) -> None:
    wrong = "123456:not-the-token"
    proc = await asyncio.create_subprocess_exec(
        str(HRD_BOT), "run", env=_env(tmp_path, emu, wrong), stderr=asyncio.subprocess.PIPE
    )
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2
    assert "TELEGRAM_BOT_TOKEN was rejected" in err.decode()
    assert wrong not in err.decode()
