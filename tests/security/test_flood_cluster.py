"""A flood at a webhook worker of several: the shared database is spared, help still gets in.

One worker on PostgreSQL in cluster mode, behind the test's balancer. A person sends
150 messages as fast as the balancer posts them: the worker's gate answers the excess
200 and stores none of it (only what passes costs an inbox row), the App's own limit
and notice apply to what passes, and the flooder's `/sos` right after is still handled,
as is another person's ordinary message.
"""

from __future__ import annotations

import asyncio

from bot.storage import Database
from tests.cluster_workers import Balancer, transcript
from tests.cluster_workers import worker as start_worker
from tests.keys import TEST_KEY
from tests.postgres_server import PgServer, fresh_schema
from tests.telegram_emulator import Emulator

FLOOD = 150


async def test_a_flood_is_dropped_at_the_webhook_and_an_sos_still_gets_in(
    pg_server: PgServer,
) -> None:
    url = pg_server.schema_url(fresh_schema(pg_server))

    async def open_db() -> Database:
        return await Database.open_postgres(url, TEST_KEY)

    async with Emulator() as emu, start_worker(emu, open_db, "a", cluster_url=url) as one:
        balancer = asyncio.create_task(Balancer(emu, [one]).run())
        inboxed = one.transport._inboxed
        assert inboxed is not None
        flooder, other = emu.user("Flooder"), emu.user("Other")
        try:
            for n in range(FLOOD):
                await flooder.send(f"spam {n}")

            for _ in range(600):  # the world does not change when the App drops one
                if inboxed.flood_drops + len(one.handled) >= FLOOD:
                    break
                await asyncio.sleep(0.05)
            assert inboxed.flood_drops > 0, "the gate let a whole flood into the database"
            assert len(one.handled) < FLOOD
            before = len(transcript(flooder))
            await flooder.send("/sos")
            await other.send("/start")

            def answered() -> bool:
                return len(transcript(flooder)) > before and len(transcript(other)) > 0

            await emu.world.wait_for(answered, within=30)
        finally:
            balancer.cancel()
            await asyncio.gather(balancer, return_exceptions=True)
