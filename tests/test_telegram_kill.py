"""`hrd-bot run` killed with SIGKILL while a case alert waits for a staff group that
answers 5xx: after the restart the alert arrives exactly once."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from bot.crypto.keys import PrivateKey
from tests.telegram_emulator import Emulator
from tests.test_telegram_reports import finish_report, start_report

HRD_BOT = Path(sys.executable).with_name("hrd-bot")


def _env(tmp_path: Path, emu: Emulator, group: int) -> dict[str, str]:
    token_file = tmp_path / "telegram-token"
    token_file.write_text(emu.token + "\n")
    token_file.chmod(0o600)
    return {
        **os.environ,
        "HRD_BOT_DATA_DIR": str(tmp_path / "data"),
        "HRD_BOT_DB_KEY": "ab" * 32,
        "TELEGRAM_BOT_TOKEN_FILE": str(token_file),
        "TELEGRAM_API_BASE_URL": emu.api_base_url,
        "HRD_BOT_STAFF_ROOMS": f"telegram:{group}",
        "HRD_BOT_DELIVERY_FIRST_RETRY": "0.2",
    }


def _group_calls(emu: Emulator, group: int) -> list[int]:
    return [c.status for c in emu.calls("sendMessage") if c.params.get("chat_id") == group]


async def _start(env: dict[str, str], emu: Emulator) -> asyncio.subprocess.Process:
    before = len(emu.calls("getUpdates"))
    proc = await asyncio.create_subprocess_exec(
        str(HRD_BOT), "run", env=env, stderr=asyncio.subprocess.DEVNULL
    )
    await emu.wait_for_call("getUpdates", after=before, within=30)
    return proc


async def test_a_queued_alert_survives_sigkill_and_arrives_once(
    emu: Emulator, tmp_path: Path
) -> None:
    (alice,) = emu.group("Team", "Alice", supergroup=True)
    group = alice.chat.id
    env = _env(tmp_path, emu, group)
    public = PrivateKey.generate().public.text
    setting = await asyncio.create_subprocess_exec(
        str(HRD_BOT), "recovery", "set", "--public-key", public, env=env
    )
    assert await setting.wait() == 0
    emu.fail("sendMessage", 502, times=10_000, chat=group)
    proc = await _start(env, emu)
    try:
        ana = emu.user("Ana")
        await start_report(ana)
        case = await finish_report(ana)
        sent = [m.text or "" for m in ana.from_bot() if case in (m.text or "")][-1]
        assert "could not be reached just now" in sent, "the reporter is not told it arrived"
        await emu.world.wait_for(lambda: len(_group_calls(emu, group)) >= 6, within=30)
        await asyncio.sleep(0.3)  # between tries: the sixth failed, the next is seconds away
    finally:
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
    assert set(_group_calls(emu, group)) == {502}

    emu.server.faults.clear()
    proc = await _start(env, emu)
    try:
        await alice.world.wait_for(
            lambda: any(case in (m.text or "") for m in alice.from_bot()), within=30
        )
        await asyncio.sleep(1)
    finally:
        proc.send_signal(signal.SIGTERM)
        await proc.wait()
    alerts = [m.text for m in alice.from_bot() if case in (m.text or "")]
    assert len(alerts) == 1 and "New case" in (alerts[0] or "")
