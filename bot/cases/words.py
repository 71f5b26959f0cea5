"""The port the engine speaks to staff and reporters through: it hands over what happened
(a case alerted, a message relayed, a delivery settled) and gets back a `Reply` to queue.

The wording, in the reader's language, is `handlers.staff_text.StaffText`, given to the
engine by the App wiring; nothing under `bot/` renders user-facing text itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from bot.cases.attachments import Held
from bot.model import ChatRef, Reply

__all__ = [
    "CaseAlert",
    "CheckinAlert",
    "Climb",
    "Reached",
    "Relay",
    "Relayed",
    "Settled",
    "SosAlert",
    "StaffWords",
]


@dataclass(frozen=True, slots=True)
class CaseAlert:
    """A report submitted: routing metadata and its files by kind and size, never content.
    `unknown_files` were sealed before a restart emptied memory: only their number is known."""

    case: str
    urgency: str | None
    country: str | None
    files: tuple[Held, ...] = ()
    unknown_files: int = 0


@dataclass(frozen=True, slots=True)
class SosAlert:
    """An SOS (or a check-in's duress word): on a case `opened` for it or on an open one."""

    case: str
    country: str | None
    opened: bool
    duress: bool = False


@dataclass(frozen=True, slots=True)
class CheckinAlert:
    """A check-in question left unanswered (`missed`, on a case `opened` for it), or
    answered "I need help" (`help`)."""

    case: str
    what: Literal["missed", "help"]
    opened: bool = False
    minutes: int = 0
    country: str | None = None


@dataclass(frozen=True, slots=True)
class Relay:
    """What an outsider wrote to a case, for the staff rooms: on the case thread (`closed`:
    the case was closed; `file`: the media type and size of a file it came with) or after
    an SOS (`place`: a shared location)."""

    case: str
    words: str
    via: Literal["thread", "sos"]
    closed: bool = False
    place: bool = False
    file: tuple[str, int] | None = None


@dataclass(frozen=True, slots=True)
class Relayed:
    """The notice every staff room gets, and the parts (the words, quoted) only an
    end-to-end encrypted all-staff room gets."""

    notice: Reply
    parts: tuple[Reply, ...]


@dataclass(frozen=True, slots=True)
class Settled:
    """How a message the bot queued for others ended: an `/escalate` notice to on-call
    (`arrived` when any had it) or a team reply (`arrived` when every part did), and the
    `bot.delivery.Reason` values of those that did not arrive."""

    case: str
    what: Literal["escalation", "reply"]
    arrived: bool
    reasons: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Climb:
    """An unacknowledged case taking an escalation step: `minutes` since its climb began,
    the `tier` told (2 on-call, 3 leads), its chats by number and platform (none: the
    `setting` that would list them is empty)."""

    case: str
    urgency: str
    minutes: int
    tier: int
    chats: tuple[tuple[int, str], ...]
    setting: str


@dataclass(frozen=True, slots=True)
class Reached:
    """How an escalation step's pages settled: chats (number, platform) that have the
    message, and those that could not be reached, with a `bot.delivery.Reason` value."""

    case: str
    tier: int
    reached: tuple[tuple[int, str], ...]
    missed: tuple[tuple[int, str, str], ...]


class StaffWords(Protocol):
    """Renders what the engine reports; staff messages in the staff rooms' language."""

    def alert(
        self, alert: CaseAlert | SosAlert | CheckinAlert, room: ChatRef, *, claim: bool = True
    ) -> Reply:
        """The alert as `room` shows it; `claim`: offered for claiming on its platform."""
        ...

    def answers(self, answers: Mapping[str, str]) -> Reply:
        """A report's answers, each quoted, for an end-to-end encrypted staff room."""
        ...

    def files(self, case: str, files: Sequence[Held]) -> Reply | None:
        """A report's files, under generated names; None without files."""
        ...

    def relay(self, relay: Relay) -> Relayed: ...

    def escalated(self, case: str, urgency: str) -> Reply:
        """`/escalate`'s notice to the on-call chats."""
        ...

    def oncall(self, chats: Sequence[tuple[int, str]]) -> str:
        """Which on-call chats (number, platform) have a message."""
        ...

    def settled(self, settled: Settled) -> Reply: ...

    def page(self, climb: Climb) -> Reply:
        """The page to each chat of the tier a case climbs to."""
        ...

    def climbing(self, climb: Climb) -> Reply:
        """What the staff rooms are told of the step: which chats are paged, or none."""
        ...

    def reached(self, reached: Reached) -> Reply: ...

    def team_reply(self, language: str, text: str) -> list[Reply]:
        """The team's words for a reporter, in the reporter's language, in marked parts."""
        ...

    def reply_queued(self, case: str, parts: int) -> Reply:
        """What the staff room that sent a reply is told at once."""
        ...
