"""What a handler works with: the message, the user's session, content, and navigation."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from bot.content.library import Library, Translator
from bot.conversation.state import Session
from bot.model import Choice, Incoming
from handlers.ports import CaseDesk, CheckinDesk

__all__ = ["BACK", "MAX_BACK", "MENU", "MORE", "Args", "Context", "Screen"]

Args = dict[str, Any]
MAX_BACK = 20
BACK = "nav:back"
MENU = "nav:menu"
MORE = "nav:more"


@dataclass(frozen=True, slots=True)
class Screen:
    """One rendered screen; `typing` means free text is an answer here, not a mistake.

    `words`: what is typed is someone's own words (an interview answer), so a number is
    the answer, not a choice; a country screen takes typed names, and numbers pick there.
    `urgent`: an SOS screen, sent ahead of every other message (`Reply.urgent`)."""

    text: str
    choices: tuple[Choice, ...] = ()
    sensitive: bool = False
    typing: bool = False
    words: bool = False
    urgent: bool = False


@dataclass(slots=True)
class Context:
    """One message being handled. Navigation edits `session.state`; the caller saves it."""

    msg: Incoming
    session: Session
    library: Library
    forget_user: Callable[[], Awaitable[None]]
    desk: CaseDesk | None = None
    checkins: CheckinDesk | None = None
    t: Translator = field(init=False)
    notices: list[str] = field(default_factory=list)
    forgotten: bool = False
    sensitive: bool = False

    def __post_init__(self) -> None:
        self.t = self.library.translator(self.session.language or self.msg.language_hint or "en")

    @property
    def state(self) -> dict[str, Any]:
        return self.session.state

    @property
    def at(self) -> tuple[str, Args]:
        name, args = self.state.get("at", ["language", {}])
        return str(name), dict(args)

    def go(self, name: str, **args: Any) -> None:
        """Open a screen; Back returns to the current one."""
        stack: list[Any] = self.state.setdefault("back", [])
        stack.append(list(self.at))
        del stack[:-MAX_BACK]
        self.replace(name, **args)

    def replace(self, name: str, **args: Any) -> None:
        self.state["at"] = [name, args]
        self.state["page"] = 0

    def back(self) -> None:
        stack: list[Any] = self.state.get("back", [])
        if stack:
            name, args = stack.pop()
            self.replace(name, **args)
        else:
            self.home()

    def home(self) -> None:
        self.state["back"] = []
        self.replace("menu")

    def notice(self, key: str, **values: object) -> None:
        """A short line shown above the screen (errors, confirmations)."""
        self.notices.append(self.t(key, **values))

    def choice(self, choice_id: str, key: str, **values: object) -> Choice:
        return Choice(choice_id, self.t(key, **values))

    def nav(self, *, back: bool = True) -> tuple[Choice, ...]:
        items = [self.choice(BACK, "nav.back")] if back else []
        return (*items, self.choice(MENU, "nav.menu"))
