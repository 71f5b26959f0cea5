"""What the engine hands the handlers: plain frozen values, and the refusal they explain.

Handlers render these in the reader's language (`handlers.staff`, `handlers.report`);
nothing here holds user-facing text, only ids, states and string keys.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.errors import CaseError

__all__ = [
    "ANSWER_TEAM",
    "CaseView",
    "CaseworkError",
    "CheckinPlan",
    "Claimed",
    "SosRaised",
    "TeamWrote",
    "ThreadCase",
]

ANSWER_TEAM = "thread:answer"
"""The choice under every team reply: it opens the reporter's case thread."""


@dataclass(frozen=True, slots=True)
class ThreadCase:
    """A reporter's sent case as they may see it: its reference and a plain state,
    `received`, `handling` (someone on the team took it up) or `closed`. Never a name."""

    id: str
    state: str

    @property
    def closed(self) -> bool:
        return self.state == "closed"


@dataclass(frozen=True, slots=True)
class TeamWrote:
    """The latest team reply to a reporter: which case, and when (unix milliseconds)."""

    case: str
    at: int


@dataclass(frozen=True, slots=True)
class SosRaised:
    """An SOS raised: its case, whether it was opened for the SOS, the case's country,
    and `told` (a staff room has the alert) or `trying` (queued, being retried)."""

    case: str
    opened: bool
    country: str | None
    told: str


@dataclass(frozen=True, slots=True)
class CheckinPlan:
    """What is scheduled: every N hours, or daily at a local time (minutes after midnight)
    in a time zone; paused or not; whether a duress word is set (never the word); when
    the next question is due; the country of the case it is tied to, if any."""

    every_hours: int | None
    daily_at: int | None
    zone: str | None
    paused: bool
    duress: bool
    next_at: int
    country: str | None = None


@dataclass(frozen=True, slots=True)
class CaseView:
    """What staff may see of a case in their room: routing metadata and history, no content."""

    id: str
    state: str
    country: str | None
    urgency: str | None
    created_at: int
    updated_at: int
    assignee: str | None = None
    history: tuple[tuple[int, str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Claimed:
    """A claim's outcome: the case, and whether this claimer won it; otherwise `holder` is
    the staff label of whoever has it (None: nobody, as the case is closed)."""

    case: str
    won: bool
    holder: str | None


class CaseworkError(CaseError):
    """A staff action refused; `key` names the string that explains why."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key
