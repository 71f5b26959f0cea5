"""Turn a screen into one reply: page it for a small screen, keep right-to-left text in order."""

from __future__ import annotations

from bot.content.library import Translator
from bot.model import Choice, Reply
from bot.text import RLM, directed
from bot.text import paginate as pages_of

__all__ = ["RLM", "SCREEN_CHARS", "directed", "directed_choices", "paginate", "said"]

SCREEN_CHARS = 900


def paginate(text: str, limit: int = SCREEN_CHARS) -> list[str]:
    """Pages of at most `limit` characters, broken at paragraphs where that fills a page."""
    return pages_of(text, limit)


def said(t: Translator, text: str) -> Reply:
    """A one-text answer in `t`'s language and direction (staff commands)."""
    return Reply(directed(text, t.rtl), rtl=t.rtl)


def directed_choices(choices: tuple[Choice, ...], rtl: bool) -> tuple[Choice, ...]:
    return tuple(Choice(c.id, directed(c.label, rtl)) for c in choices) if rtl else choices
