"""The one text splitter, and the right-to-left step every reply's text passes.

Screens (the handlers' pages), Matrix events and Telegram messages are all cut by
`paginate`: at paragraphs, else lines, else words, else hard, and a page left under
half full by a paragraph break is filled with the next paragraph's first lines. Only
the unit differs: characters for screens and Matrix, UTF-16 code units for Telegram
(`utf16_len`), where a hard cut never splits a surrogate pair.
"""

from __future__ import annotations

from collections.abc import Callable

from bot.content.script import isolate_values

__all__ = ["RLM", "Measure", "directed", "paginate", "utf16_len"]

RLM = "\u200f"
Measure = Callable[[str], int]
"""A text's length in the unit a limit counts; it must add up over concatenation."""
_SEPARATORS = ("\n\n", "\n", " ")


def utf16_len(text: str) -> int:
    """Telegram's length: UTF-16 code units (a character beyond the BMP counts two)."""
    return len(text.encode("utf-16-le")) // 2


def _hard(text: str, limit: int, measure: Measure) -> list[str]:
    """Cuts of at most `limit`, each a whole number of characters."""
    cuts: list[str] = []
    while text:
        cut = min(len(text), limit)
        while cut > 1 and (excess := measure(text[:cut]) - limit) > 0:
            cut -= max(1, (excess + 1) // 2)  # a character counts at most two units
        cuts.append(text[:cut])
        text = text[cut:]
    return cuts


def _pieces(text: str, limit: int, measure: Measure) -> list[str]:
    """Split at paragraphs, then lines, then words, so no piece exceeds `limit`."""
    for separator in _SEPARATORS:
        parts = text.split(separator)
        if len(parts) > 1:
            break
    else:
        return _hard(text, limit, measure)
    pieces: list[str] = []
    for part in parts:
        pieces += [part] if measure(part) <= limit else _pieces(part, limit, measure)
    return [p + separator for p in pieces[:-1]] + pieces[-1:]


def _fill(piece: str, room: int, measure: Measure) -> tuple[str, str]:
    """The lines (else words) of `piece` that fit in `room`, and the rest."""
    for separator in _SEPARATORS[1:]:
        parts = piece.split(separator)
        size = taken = 0
        while taken < len(parts) and size + measure(parts[taken]) + len(separator) <= room:
            size += measure(parts[taken]) + len(separator)
            taken += 1
        if taken:
            rest = separator.join(parts[taken:])
            return separator.join(parts[:taken]) + separator, rest
    return "", piece


def paginate(text: str, limit: int, measure: Measure = len) -> list[str]:
    """Pages of at most `limit` (in `measure`'s unit), broken at paragraphs where that
    fills a page; a blank text is one empty page."""
    if measure(text) <= limit:  # what the loop below would make of it, at a fraction
        return [text.strip()]
    pages: list[str] = []
    current, size = "", 0
    for piece in _pieces(text, limit, measure):
        if current and size + measure(piece) > limit:
            if size < limit // 2:
                head, piece = _fill(piece, limit - size, measure)
                current += head
            pages.append(current.strip())
            current, size = "", 0
        current += piece
        size += measure(piece)
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
