"""Turn a screen into one reply: page it for a small screen, keep right-to-left text in order."""

from __future__ import annotations

from bot.content.library import Translator
from bot.content.script import isolate_values
from bot.model import Choice, Reply

SCREEN_CHARS = 900
RLM = "\u200f"


def _pieces(text: str, limit: int) -> list[str]:
    """Split at paragraphs, then lines, then words, so no piece exceeds `limit`."""
    for separator in ("\n\n", "\n", " "):
        parts = text.split(separator)
        if len(parts) > 1:
            break
    else:
        return [text[i : i + limit] for i in range(0, len(text), limit)]
    pieces: list[str] = []
    for part in parts:
        pieces += [part] if len(part) <= limit else _pieces(part, limit)
    return [p + separator for p in pieces[:-1]] + pieces[-1:]


def _fill(piece: str, room: int) -> tuple[str, str]:
    """The lines (else words) of `piece` that fit in `room`, and the rest."""
    for separator in ("\n", " "):
        parts = piece.split(separator)
        size = taken = 0
        while taken < len(parts) and size + len(parts[taken]) + len(separator) <= room:
            size += len(parts[taken]) + len(separator)
            taken += 1
        if taken:
            rest = separator.join(parts[taken:])
            return separator.join(parts[:taken]) + separator, rest
    return "", piece


def paginate(text: str, limit: int = SCREEN_CHARS) -> list[str]:
    """Pages of at most `limit` characters, broken at paragraphs where that fills a page."""
    pages: list[str] = []
    current = ""
    for piece in _pieces(text, limit):
        if current and len(current) + len(piece) > limit:
            if len(current) < limit // 2:
                head, piece = _fill(piece, limit - len(current))
                current += head
            pages.append(current.strip())
            current = ""
        current += piece
    if current.strip() or not pages:
        pages.append(current.strip())
    return pages


def directed(text: str, rtl: bool) -> str:
    """The one step every reply's text passes before it is sent. In right-to-left text:
    every line starts with a right-to-left mark, so lines opening with Latin or digits stay
    RTL, and every value that is not prose (phone, e-mail, link, date, case id, number with
    separators) is isolated left to right (`bot.content.script.isolate_values`), so the bidi
    algorithm cannot reorder "+353 1 210 0489" into "0489 210 1 353+". Placeholders were
    isolated already when the strings were filled in (`Translator`)."""
    if not rtl:
        return text
    return "\n".join(
        RLM + line if line and not line.startswith(RLM) else line
        for line in isolate_values(text, rtl).split("\n")
    )


def said(t: Translator, text: str) -> Reply:
    """A one-text answer in `t`'s language and direction (staff commands)."""
    return Reply(directed(text, t.rtl), rtl=t.rtl)


def directed_choices(choices: tuple[Choice, ...], rtl: bool) -> tuple[Choice, ...]:
    return tuple(Choice(c.id, directed(c.label, rtl)) for c in choices) if rtl else choices
