"""Readiness: every configured transport connected, the database writable, the
scheduler running. Each check is named so the operator sees which one failed."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping

from bot.health.shared import Shared
from bot.model import Transport
from bot.storage.database import Connection, Database

__all__ = ["PROBE_TIMEOUT", "Readiness"]

log = logging.getLogger("hrd_bot.health")
PROBE_TIMEOUT = 5.0
"""Seconds the database may take to take a write before the check fails (the single
database thread may be stuck on a hung disk; the probe must answer anyway)."""
PROBE_SETTING = "health.probe"
_TOUCH = (
    "INSERT INTO settings (name, value) VALUES (?, X'00') "
    "ON CONFLICT (name) DO UPDATE SET value = excluded.value"
)


def _touch(conn: Connection) -> None:
    """A one-row write: SQLite writes the page even when the value is the same."""
    conn.execute(_TOUCH, (PROBE_SETTING,))


class Readiness:
    """`check()` gives each check's name and whether it passed, in a fixed order."""

    def __init__(
        self,
        transports: Mapping[str, Transport],
        db: Database,
        scheduler_running: Callable[[], bool],
        *,
        timeout: float = PROBE_TIMEOUT,
    ) -> None:
        self._transports = transports
        self._scheduler_running = scheduler_running
        self._timeout = timeout
        self._write = Shared(lambda: db.transaction(_touch))

    async def check(self) -> dict[str, bool]:
        checks = {f"transport:{name}": t.connected for name, t in self._transports.items()}
        checks["database"] = await self._writable()
        checks["scheduler"] = self._scheduler_running()
        return checks

    async def _writable(self) -> bool:
        try:
            async with asyncio.timeout(self._timeout):
                await self._write()
        except TimeoutError:
            log.warning("health: the database took no write within %.0f s", self._timeout)
            return False
        except Exception as exc:  # read-only, full disk, damaged page: not ready
            log.warning("health: the database refused a write (%s)", type(exc).__name__)
            return False
        return True
