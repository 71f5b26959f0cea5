"""Readiness: every configured transport connected, the database writable, the
scheduler running. Each check is named so the operator sees which one failed."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping

from bot.health.shared import Shared
from bot.model import Transport
from bot.storage.database import Database

__all__ = ["PROBE_TIMEOUT", "Readiness"]

log = logging.getLogger("hrd_bot.health")
PROBE_TIMEOUT = 5.0
"""Seconds the database may take to take a write before the check fails (the single
database thread may be stuck on a hung disk; the probe must answer anyway)."""
PROBE_SETTING = "health.probe"


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
        # a one-row write: SQLite writes the page even when the value is the same
        self._write = Shared(lambda: db.put_setting(PROBE_SETTING, b"\x00"))
        self._failed: list[str] = []

    async def check(self) -> dict[str, bool]:
        checks = {f"transport:{name}": t.connected for name, t in self._transports.items()}
        refused = await self._refused_write()
        checks["database"] = refused is None
        checks["scheduler"] = self._scheduler_running()
        self._note([name for name, passed in checks.items() if not passed], refused)
        return checks

    def _note(self, failed: list[str], refused: str | None) -> None:
        """Logged when the failing checks change, not at every probe: a monitor polls
        every few seconds, and a flood of probes must not flood the log."""
        if failed == self._failed:
            return
        self._failed = failed
        if failed:
            why = f"; the database: {refused}" if refused else ""
            log.warning("health: not ready (%s%s)", ", ".join(failed), why)
        else:
            log.info("health: ready")

    async def _refused_write(self) -> str | None:
        """None when the database took the write; else why not, fit for the log."""
        try:
            async with asyncio.timeout(self._timeout):
                await self._write()
        except TimeoutError:
            return f"no write within {self._timeout:.0f} s"
        except Exception as exc:  # read-only, full disk, damaged page: not ready
            return type(exc).__name__
        return None
