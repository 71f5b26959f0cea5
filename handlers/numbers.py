"""Numbers in what people type, and in the bot's own choice ids: never a crash.

`str.isdigit` is true for "①" and "²", which `int` refuses; people type those (guides
number their steps with circled digits), and Arabic-Indic or fullwidth digits are how
many people write any number. One place reads them all.
"""

from __future__ import annotations

import unicodedata

__all__ = ["choice_index", "typed_number"]

_MAX_DIGITS = 6  # a choice number, not a quantity: longer digit runs are text
_LIST_MARKS = "().\u06d4"  # "3.", "3)", "(3)", and the Urdu full stop "۳۔"


def typed_number(text: str) -> int | None:
    """The number someone typed to pick a choice, in any script, or None if it is not one.

    Decimal digits of every script count (ASCII, Arabic-Indic "٣", Persian "۳",
    Devanagari, fullwidth "３"); so do circled, parenthesised, superscript and other
    compatibility forms ("①", "⑩", "⒊", "²"), which NFKC folds to plain digits, and a
    single dingbat digit ("❶", "➀") by its digit value.
    """
    folded = unicodedata.normalize("NFKC", text).strip().strip(_LIST_MARKS).strip()
    if len(folded) == 1 and (value := unicodedata.digit(folded, None)) is not None:
        return value
    if 0 < len(folded) <= _MAX_DIGITS and folded.isdecimal():
        return int(folded)
    return None


def choice_index(choice: str, prefix: str) -> int | None:
    """The position in a choice id the bot made (`opt:3`): ASCII digits only, else None."""
    rest = choice.removeprefix(prefix)
    if rest == choice or not (0 < len(rest) <= _MAX_DIGITS and rest.isascii() and rest.isdigit()):
        return None
    return int(rest)
