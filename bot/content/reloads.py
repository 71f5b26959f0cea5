"""Content reloads off the event loop: users never wait on one, and a burst of requests
costs at most one more load."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

from bot.content.library import Library
from bot.content.loader import load_library
from bot.content.problems import Problem

log = logging.getLogger("hrd_bot.content")
LOGGED_PROBLEMS = 20
"""Enough for the operator to see why a reload was refused; `content validate` lists all."""


class Reloader:
    """Loads in a worker thread and installs the new library at once, only if it has no errors.

    Requests that arrive while a load runs are answered by one further load (the files may
    have changed after the running one read them); requests already covered by a load that
    started after them return its problems without loading again.
    """

    def __init__(self, install: Callable[[Library], None]) -> None:
        self._install = install
        self._lock = asyncio.Lock()
        self._asked = 0
        self._covered = 0
        self._last: list[Problem] = []

    async def reload(self, root: Path) -> list[Problem]:
        self._asked += 1
        ticket = self._asked
        async with self._lock:
            if self._covered >= ticket:
                return self._last
            self._covered = self._asked
            library, problems = await asyncio.to_thread(load_library, root)
            if library is not None:
                self._install(library)
            self._last = problems
        errors = [p for p in problems if not p.warning]
        for problem in errors[:LOGGED_PROBLEMS]:
            log.warning("content: %s", problem)
        outcome = "refused, the old content stays" if library is None else "done"
        log.warning("content reload %s (%d errors)", outcome, len(errors))
        return problems
