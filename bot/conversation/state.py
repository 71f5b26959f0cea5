"""What the handlers hold of a conversation: the `Session` value and the marks the engine
sets in it. Stored by `bot.conversation.sessions.SessionStore`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bot.model import UserRef

__all__ = ["EXPIRED", "SENT", "Session"]

EXPIRED = "report_expired"
"""Set in a session whose unsent report retention deleted; the router tells the user once."""
SENT = "report_sent"
"""Set (to the case id) in a session whose report was submitted, in the submission's own
transaction: if the reply saying so never left, the router says it at the next message."""


@dataclass(slots=True)
class Session:
    """What the bot remembers about one user: language and where they are in a flow."""

    user: UserRef
    language: str | None = None
    state: dict[str, Any] = field(default_factory=dict)
    known: bool = False
