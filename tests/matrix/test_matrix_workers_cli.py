"""`hrd-bot run` as two workers on one PostgreSQL: the one that does not lead still signs
in as its own Matrix device and publishes its keys at start, and syncs nothing."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from pathlib import Path

from bot.transports.matrix.store import check_passphrase
from tests.matrix.fixtures import unique
from tests.matrix.homeserver import Synapse
from tests.matrix.test_matrix_cli import bot_env, start_cli
from tests.postgres_server import PgServer, fresh_schema
from tests.telegram_emulator.harness import eventually

SYNCING = "signed in, syncing"
ENROLLED = "enrolled this worker's Matrix device"


def _read(log: Path) -> str:
    return log.read_text() if log.exists() else ""


async def _says(log: Path, line: str) -> bool:
    return line in await asyncio.to_thread(_read, log)


async def _stop(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGTERM)
    return await asyncio.to_thread(process.wait, 30)


async def test_a_follower_enrols_its_device_at_start(
    synapse: Synapse, pg_server: PgServer, tmp_path: Path
) -> None:
    account = synapse.register(unique("workers"))
    url = pg_server.schema_url(fresh_schema(pg_server))
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    envs = [bot_env(synapse, account, tmp_path / n, "pass phrase") for n in ("a", "b")]
    for env in envs:
        env["HRD_BOT_DATABASE_URL"] = url
    a = start_cli(envs[0], logs[0])
    b: subprocess.Popen[bytes] | None = None
    try:
        await eventually(lambda: _says(logs[0], SYNCING), 60)  # A leads
        b = start_cli(envs[1], logs[1])
        await eventually(lambda: _says(logs[1], ENROLLED), 60)
    finally:
        codes = [await _stop(p) for p in (a, b) if p is not None]
    assert codes == [0, 0], logs[1].read_text()
    assert SYNCING not in logs[1].read_text()  # B never led
    devices = [
        check_passphrase(tmp_path / n / "matrix", "pass phrase", account.user_id) for n in "ab"
    ]
    assert None not in devices and devices[0] != devices[1]
    assert account.user_id not in logs[1].read_text()
