"""What handlers need from the engine for risk reports, as a protocol (the engine implements it).

The values the engine returns, and its refusal, live in `bot.cases.views`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from bot.cases.views import CaseView, CheckinPlan, Claimed, SosRaised, TeamWrote, ThreadCase
from bot.model import Attachment, ChatRef, Location, UserRef

__all__ = ["CaseDesk", "CheckinDesk", "SosDesk", "StaffDesk", "ThreadDesk"]


class ThreadDesk(Protocol):
    """A reporter's messages to the team about a sent case. `write` and `send_file`
    return once the message is sealed to the case (None: the case is no longer theirs
    or no longer kept); telling staff rooms is a separate matter."""

    async def latest(self, user: UserRef) -> ThreadCase | None:
        """The reporter's most recently sent case, open or closed."""
        ...

    async def status(self, user: UserRef, case_id: str) -> ThreadCase | None: ...

    async def team_wrote(self, user: UserRef) -> TeamWrote | None: ...

    async def write(self, user: UserRef, case_id: str, text: str) -> ThreadCase | None: ...

    async def send_file(
        self, user: UserRef, case_id: str, attachment: Attachment, caption: str
    ) -> ThreadCase | None: ...

    def forget(self, user: UserRef) -> None:
        """`/forget`: the reporter is unlinked from their cases; so is this memory."""
        ...


class SosDesk(Protocol):
    """ "I am in danger now": an urgent alert, then what the reporter adds to it."""

    async def ready(self) -> bool:
        """False when reporting is not set up (nobody could read a case)."""
        ...

    async def raised(self, user: UserRef) -> int:
        """How many SOS the person's open case has had (0 with no open case)."""
        ...

    async def raise_alert(
        self, user: UserRef, chat: ChatRef, language: str, *, seen: int | None = None
    ) -> SosRaised | None:
        """Open a critical case, or make the open one critical, and alert the staff rooms.
        `seen`: `raised` when the confirmation was shown; if the case has had an SOS since,
        this press repeats one whose answer was lost (a restart): no second alert."""
        ...

    async def add(
        self,
        user: UserRef,
        case_id: str,
        *,
        text: str | None = None,
        location: Location | None = None,
    ) -> str | None:
        """Seal a message or location to the SOS case: `told`, `trying`, or None (not theirs)."""
        ...


class CaseDesk(Protocol):
    """Drafts become cases. `record` returns once the item is sealed and stored (acknowledged)."""

    async def open_draft(self, reporter: UserRef, chat: ChatRef, language: str) -> str | None: ...

    async def record(self, case_id: str, field: str, data: bytes) -> None: ...

    async def route(
        self, case_id: str, *, country: str | None = None, urgency: str | None = None
    ) -> None: ...

    def peek(self, case_id: str) -> Mapping[str, str] | None:
        """Answers still held in memory for the review screen; None after a restart."""
        ...

    async def discard(self, case_id: str) -> None: ...

    async def submit(self, case_id: str) -> bool:
        """True once a staff room has the alert; False while the bot is still trying."""
        ...

    @property
    def thread(self) -> ThreadDesk:
        """The case thread: what a reporter writes after sending."""
        ...

    @property
    def sos(self) -> SosDesk:
        """SOS: an urgent alert from the reporter (handlers.sos)."""
        ...


class CheckinDesk(Protocol):
    """Regular "are you safe?" questions; no case needed (a missed one opens one)."""

    async def schedule(
        self,
        user: UserRef,
        chat: ChatRef,
        every_hours: int | None = None,
        *,
        daily_at: int | None = None,
        zone: str | None = None,
        language: str = "en",
    ) -> bool: ...

    async def plan(self, user: UserRef) -> CheckinPlan | None: ...

    async def pause(self, user: UserRef, paused: bool) -> bool: ...

    async def set_zone(self, user: UserRef, zone: str) -> None: ...

    async def set_duress(self, user: UserRef, word: str | None) -> bool: ...

    async def add_note(self, user: UserRef, text: str) -> str | None:
        """The case the note is sealed to; None without an open case."""
        ...

    async def answered(self, user: UserRef, *, safe: bool) -> str | None:
        """Record the answer; for "I need help": `told` once the team has the alert,
        `trying` while the bot still tries, None when nobody could be alerted."""
        ...

    async def answered_word(self, user: UserRef, word: str) -> bool:
        """True when `word` is the duress word: answered exactly as "I am safe"."""
        ...

    async def stop(self, user: UserRef) -> None: ...

    async def every(self, user: UserRef) -> int | None:
        """Hours between check-ins, or None when none are scheduled."""
        ...


class StaffDesk(Protocol):
    """Staff actions. Each checks the case exists and is open, and writes the audit trail."""

    async def staff_label(self, user: UserRef) -> str | None: ...

    async def choose_language(self, user: UserRef, language: str) -> bool:
        """The language of answers to this member from now on; False if not staff."""
        ...

    async def open_cases(self) -> list[CaseView]: ...

    async def case(self, case_id: str) -> CaseView: ...

    async def acknowledge(self, case_id: str, actor: UserRef) -> None: ...

    async def assign(self, case_id: str, actor: UserRef, assignee: str) -> None: ...

    async def alerted(self, room: ChatRef, alert: str) -> str | None:
        """The case of the bot's alert `alert` in `room`, or None when it is no alert."""
        ...

    async def claim(self, room: ChatRef, alert: str, actor: UserRef, label: str) -> Claimed | None:
        """Claim the case of the bot's alert `alert` in `room`: acknowledged and assigned
        to `label` at once, unless someone holds it already (of two at once, one wins).
        None when `alert` is not one of the bot's alerts about an open case there."""
        ...

    async def escalate(self, case_id: str, actor: UserRef, room: ChatRef) -> tuple[str, str, str]:
        """The new urgency; `told` (and who was), `trying` (`room` hears the end) or `alone`."""
        ...

    async def note(self, case_id: str, actor: UserRef, text: str) -> None: ...

    async def reply(self, case_id: str, actor: UserRef, text: str, room: ChatRef) -> None:
        """Queue it; `room` is told "queued", then "delivered" or why not."""
        ...

    async def close(self, case_id: str, actor: UserRef, outcome: str) -> None: ...

    async def export(self, case_id: str, actor: UserRef) -> str:
        """The bundle's file name (never its path on the server)."""
        ...
