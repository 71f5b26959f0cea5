"""The endpoint itself (aiohttp, on the bot's event loop): `/live`, `/ready`, `/metrics`."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from aiohttp import web

from bot.health.address import Address
from bot.health.metrics import CONTENT_TYPE, Metrics
from bot.health.readiness import Readiness

if TYPE_CHECKING:  # bot.app imports this package (for its counters)
    from collections.abc import Callable

    from bot.app import App

__all__ = ["HealthServer"]

log = logging.getLogger("hrd_bot.health")
NO_STORE = {"Cache-Control": "no-store"}


class HealthServer:
    """Answers GET only; no access log (the monitoring's own address is noise there)."""

    def __init__(self, readiness: Readiness, metrics: Metrics) -> None:
        self._readiness = readiness
        self._metrics = metrics
        self._runner: web.AppRunner | None = None
        self.port = 0
        """The port it listens on once started (the one asked for, or the one given for 0)."""

    @classmethod
    def of(cls, app: App, scheduler_running: Callable[[], bool]) -> HealthServer:
        readiness = Readiness(app.transports, app.db, scheduler_running)
        metrics = Metrics(app.counts, app.outbox.failed, app.transports, app.db)
        return cls(readiness, metrics)

    async def start(self, address: Address) -> None:
        """Raises OSError when it cannot listen there (the port taken, say)."""
        routes = web.Application()
        routes.router.add_get("/live", self._live, allow_head=False)
        routes.router.add_get("/ready", self._ready, allow_head=False)
        routes.router.add_get("/metrics", self._render, allow_head=False)
        runner = web.AppRunner(routes, access_log=None, handle_signals=False)
        await runner.setup()
        try:
            site = web.TCPSite(runner, address.host, address.port, reuse_address=True)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        log.info("health: listening on port %d", self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _live(self, _: web.Request) -> web.Response:
        return web.json_response({"live": True}, headers=NO_STORE)

    async def _ready(self, _: web.Request) -> web.Response:
        checks = await self._readiness.check()
        failed = [name for name, passed in checks.items() if not passed]
        body = {"ready": not failed, "failed": failed, "checks": checks}
        return web.json_response(body, status=503 if failed else 200, headers=NO_STORE)

    async def _render(self, _: web.Request) -> web.Response:
        text = await self._metrics.render()
        return web.Response(text=text, headers={"Content-Type": CONTENT_TYPE, **NO_STORE})
