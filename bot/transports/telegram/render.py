"""A `Reply` as Telegram messages: plain text in pieces of at most 4096, buttons one per row.

Text goes out without `parse_mode`, so nothing in content or user input can be read as
markup. Telegram counts length in UTF-16 code units, so this does too.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.model import Choice
from bot.text import paginate, utf16_len

__all__ = ["MAX_TEXT", "Markup", "keyboard", "split_text", "utf16_len"]

MAX_TEXT = 4096
Markup = dict[str, list[list[dict[str, str]]]]


def split_text(text: str, limit: int = MAX_TEXT) -> list[str]:
    """Pieces Telegram accepts, in order, cut as every page is (`bot.text.paginate`) but
    counted in UTF-16 code units; an empty or blank text yields no piece."""
    return [piece for piece in paginate(text, limit, utf16_len) if piece]


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
