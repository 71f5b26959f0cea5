"""What handlers need from the engine for risk reports, as a protocol (the engine implements it)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from bot.model import ChatRef, UserRef


class CaseDesk(Protocol):
    """Drafts become cases. `record` returns once the item is sealed and stored (acknowledged)."""

    async def open_draft(self, reporter: UserRef, chat: ChatRef, language: str) -> str: ...

    async def record(self, case_id: str, field: str, data: bytes) -> None: ...

    async def route(
        self, case_id: str, *, country: str | None = None, urgency: str | None = None
    ) -> None: ...

    def peek(self, case_id: str) -> Mapping[str, str] | None:
        """Answers still held in memory for the review screen; None after a restart."""
        ...

    async def discard(self, case_id: str) -> None: ...

    async def submit(self, case_id: str) -> None: ...
