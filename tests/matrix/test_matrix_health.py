"""Readiness of the Matrix transport against a real Synapse: connected after the first
sync, not while the homeserver cannot be reached, connected again once it can."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.content.library import Library
from bot.health.readiness import Readiness
from bot.transports.matrix import MatrixTransport
from tests.matrix.faulty_proxy import FaultyProxy
from tests.matrix.fixtures import Bot, unique
from tests.matrix.homeserver import Synapse

WAIT = 60.0


async def _until(transport: MatrixTransport, connected: bool) -> None:
    async with asyncio.timeout(WAIT):
        while transport.connected != connected:  # noqa: ASYNC110 - a property, no event
            await asyncio.sleep(0.05)


async def test_matrix_is_ready_after_its_first_sync_and_not_while_the_homeserver_is_away(
    synapse: Synapse, tmp_path: Path, library: Library
) -> None:
    proxy = await FaultyProxy(synapse.url).start()
    bot = Bot(synapse, synapse.register(unique("bot")), tmp_path / "bot", library)
    bot.homeserver = proxy.url
    try:
        await bot.start()
        assert bot.app is not None and bot.transport is not None
        readiness = Readiness(bot.app.transports, bot.app.db, lambda: True)
        assert (await readiness.check())["transport:matrix"]
        await proxy.outage()
        await _until(bot.transport, connected=False)
        assert not (await readiness.check())["transport:matrix"]
        await proxy.restore()
        await _until(bot.transport, connected=True)
        transport = bot.transport
        await bot.stop()
        assert not transport.connected
    finally:
        await bot.stop()
        await proxy.stop()
