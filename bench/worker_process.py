"""One webhook worker in a process of its own, for `bench.webhook_workers`.

`python -m bench.worker_process TOKEN API_BASE_URL PORT NAME DATABASE_URL` runs what
`tests.cluster_workers.worker` runs (an App on PostgreSQL, the inbox and leases, a
webhook on PORT), prints "ready" once the webhook listens, and stops when its standard
input closes. Separate processes are what several workers really are: each has its own
interpreter and event loop, so the figures show what a second worker adds on this
machine, not only what the inbox and the leases cost.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Sequence

from bot.storage import Database
from tests.cluster_workers import serving
from tests.keys import TEST_KEY

__all__ = ["main"]


async def _listening(port: int) -> None:
    for _ in range(200):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        return
    raise RuntimeError("the webhook did not start listening")


async def _serve(token: str, api: str, port: int, name: str, url: str) -> None:
    async def open_db() -> Database:
        return await Database.open_postgres(url, TEST_KEY)

    async def launch(start: Callable[[], asyncio.Task[None]]) -> asyncio.Task[None]:
        task = start()
        await _listening(port)
        return task

    async with serving((token, api, port), open_db, name, launch, url):
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


def main(argv: Sequence[str]) -> int:
    token, api, port, name, url = argv
    asyncio.run(_serve(token, api, int(port), name, url))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
