"""One call in flight at a time, shared by every caller that comes while it runs."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

__all__ = ["Shared"]

T = TypeVar("T")


class Shared(Generic[T]):
    """A flood of probes costs one database call at a time, not one each: callers that
    arrive while a call runs await its result. A caller that gives up (a timeout, a
    closed connection) leaves the call running for the others."""

    def __init__(self, make: Callable[[], Awaitable[T]]) -> None:
        self._make = make
        self._running: asyncio.Future[T] | None = None

    async def __call__(self) -> T:
        if self._running is None:
            running = asyncio.ensure_future(self._make())
            running.add_done_callback(self._finished)
            self._running = running
        return await asyncio.shield(self._running)

    def _finished(self, done: asyncio.Future[T]) -> None:
        if self._running is done:
            self._running = None
        if not done.cancelled():
            done.exception()  # retrieved here, so an unawaited failure is not reported twice
