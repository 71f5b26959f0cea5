"""A `Reply` as Telegram messages: plain text in pieces of at most 4096, buttons one per row.

Text goes out without `parse_mode`, so nothing in content or user input can be read as
markup. Telegram counts length in UTF-16 code units, so this does too.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.model import Choice

__all__ = ["MAX_TEXT", "Markup", "keyboard", "split_text", "utf16_len"]

MAX_TEXT = 4096
Markup = dict[str, list[list[dict[str, str]]]]
_SEPARATORS = ("\n\n", "\n", " ")


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _hard_cut(text: str, limit: int) -> tuple[str, str]:
    """The longest head of `text` within `limit`, never splitting a surrogate pair."""
    size = 0
    for index, char in enumerate(text):
        size += 2 if ord(char) > 0xFFFF else 1
        if size > limit:
            return text[:index], text[index:]
    return text, ""


def _cut(text: str, limit: int) -> tuple[str, str]:
    """Cut at the last paragraph, line or word break that fits, else hard."""
    head, _ = _hard_cut(text, limit)
    for separator in _SEPARATORS:
        at = head.rfind(separator)
        if at > 0:
            return text[:at], text[at + len(separator) :]
    return head, text[len(head) :]


def split_text(text: str, limit: int = MAX_TEXT) -> list[str]:
    """Pieces Telegram accepts, in order; an empty or blank text yields no piece."""
    pieces: list[str] = []
    rest = text.strip()
    while rest:
        if utf16_len(rest) <= limit:
            pieces.append(rest)
            break
        head, rest = _cut(rest, limit)
        if head.strip():
            pieces.append(head.rstrip())
        rest = rest.lstrip()
    return pieces


def keyboard(choices: Sequence[Choice], payloads: Sequence[str]) -> Markup:
    """One button per row: labels are sentences in some languages and must stay readable.

    The Bot API's own JSON, not PTB's `InlineKeyboardMarkup`: building and serialising
    those objects cost more than the rest of the reply on the hot path (measured with
    bench/telegram_path.py), and the wire format is the same.
    """
    rows = [
        [{"text": choice.label, "callback_data": payload}]
        for choice, payload in zip(choices, payloads, strict=True)
    ]
    return {"inline_keyboard": rows}
