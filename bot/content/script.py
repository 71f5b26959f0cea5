"""Every script shown right: values isolated from the text around them, CLDR plurals,
dates and names, French spacing.

A phone number, date or case id inside Arabic text is reordered by the Unicode bidi
algorithm ("+353 1 210 0489" shows as "0489 210 1 353+") unless it is isolated. Two
kinds of isolation, both closed by PDI (U+2069) so nothing leaks past the value:

- `isolate`: a value filled into a string (a placeholder). FSI (U+2068) lets the value's
  own first strong letter choose its direction, so an Arabic name stays right to left and
  a number left to right.
- `isolate_values`: values written inside prose (a number in a guide, an e-mail in a legal
  page, a command such as /menu): LRI (U+2066), as they read left to right whatever the
  language. Unisolated, "/menu" shows as "menu/" in Arabic, "@handle" as "handle@".
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Iterable
from functools import cache

from babel.dates import format_date
from babel.lists import format_list

from bot.content.languages import locale

__all__ = [
    "FSI",
    "ISOLATES",
    "LRI",
    "PDI",
    "bidi_problem",
    "date_text",
    "french_spacing",
    "isolate",
    "isolate_values",
    "language_names",
    "plural_categories",
    "plural_category",
]

LRI, RLI, FSI, PDI = "\u2066", "\u2067", "\u2068", "\u2069"
ISOLATES = frozenset((LRI, RLI, FSI, PDI))
_RTL_CLASSES = frozenset(("R", "AL"))

_VALUE = re.compile(
    "|".join(
        (
            r"https?://[\w\-.~:/?#\[\]@!$&'()*+,;=%]*[\w\-~/#=&%+]",  # a link, not its full stop
            r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+",  # an e-mail address
            r"@[\w.-]+:[\w.-]+",  # a Matrix id
            r"(?<![\w@\u2066-\u2069])@\w{2,}",  # a handle: @FrontLineHRD (not "x@y" once isolated)
            r"(?<![\w/\u2066-\u2069])/[a-z][a-z_]*\b",  # a command: /menu
            r"\bHRD(?:-[A-Z0-9]+)+\b",  # a case id
            r"\b[0-9]{1,4}[-/.][0-9]{1,2}[-/.][0-9]{1,4}\b",  # a numeric date
            r"(?:\+|\b)[0-9](?:[ \-.()]?[0-9]){5,}\b",  # a phone number: 6 digits or more
            r"\b[0-9]+(?:[.,:][0-9]+)+\b",  # 12:30, 1.5, 10,000
        )
    ),
    re.ASCII,
)
_ISOLATED = re.compile(f"[{LRI}{RLI}{FSI}][^{PDI}\n]*{PDI}")
_FRENCH_SPACE = re.compile(r"[ \u00a0]+([?!:;»])|(«)[ \u00a0]+")


def _has_rtl(text: str) -> bool:
    return any(unicodedata.bidirectional(ch) in _RTL_CLASSES for ch in text)


_EMBEDDINGS = frozenset("\u202a\u202b\u202c\u202d\u202e")
_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069]")
"""Any direction control: most texts hold none, and a search in C finds that at once."""


def bidi_problem(text: str) -> str | None:
    """Why direction controls typed into content would garble it, if they would: an
    isolate not closed on its line, a PDI closing nothing, or an embedding or override
    (U+202A-U+202E), which leaks past the value it was meant for (use an isolate)."""
    if _CONTROLS.search(text) is None:
        return None
    if any(ch in _EMBEDDINGS for ch in text):
        return "an embedding or override (U+202A-U+202E): use an isolate (U+2066-U+2069)"
    for line in text.split("\n"):
        depth = 0
        for ch in line:
            if ch in (LRI, RLI, FSI):
                depth += 1
            elif ch == PDI:
                depth -= 1
                if depth < 0:
                    return "a PDI (U+2069) that closes no isolate"
        if depth:
            return "an isolate (U+2066-U+2068) not closed by a PDI (U+2069) on its line"
    return None


def isolate(value: str, rtl: bool) -> str:
    """`value` (a placeholder's) as one unit in text of its direction: in right-to-left text
    always, in left-to-right text when it holds right-to-left letters. A value of several
    lines is a block, not a value: bidi isolation ends at a line break anyway."""
    if not value or "\n" in value or _one_isolate(value):
        return value
    if rtl or _has_rtl(value):
        return FSI + value + PDI
    return value


def _one_isolate(value: str) -> bool:
    """Whether `value` is a single isolate already: an opener whose PDI is its last character."""
    if value[0] not in (LRI, RLI, FSI) or value[-1] != PDI:
        return False
    depth = 0
    for at, ch in enumerate(value):
        depth += ch in (LRI, RLI, FSI)
        depth -= ch == PDI
        if depth == 0:
            return at == len(value) - 1
    return False


def isolate_values(text: str, rtl: bool) -> str:
    """In right-to-left text, every link, e-mail, handle, command, case id, date, phone and
    other number with separators isolated left to right; what is isolated already is left
    as it is."""
    if not rtl:
        return text
    done = [found.span() for found in _ISOLATED.finditer(text)]

    def lri(match: re.Match[str]) -> str:
        if any(start <= match.start() < end for start, end in done):
            return match.group()
        return LRI + match.group() + PDI

    return _VALUE.sub(lri, text)


def french_spacing(text: str) -> str:
    """French typography: a narrow no-break space (U+202F) before ? ! : ; and », after «,
    where the text has a space, so the mark never wraps onto a line of its own. A colon
    with no space before it (a link, a time) is left alone."""
    return _FRENCH_SPACE.sub(_narrow, text)


def _narrow(match: re.Match[str]) -> str:
    mark, opening = match.group(1), match.group(2)
    return "\u202f" + mark if mark else opening + "\u202f"


def plural_categories(code: str) -> frozenset[str]:
    """The CLDR plural categories a language needs (`other` always)."""
    return frozenset(locale(code).plural_form.tags) | {"other"}


def plural_category(code: str, count: int) -> str:
    return str(locale(code).plural_form(count))


def date_text(day: dt.date, code: str) -> str:
    """A date as the reader's language writes it, month spelled out: "25 novembre 2026",
    never an ambiguous "25-11-2026"."""
    return str(format_date(day, format="long", locale=locale(code)))


@cache
def language_name(language: str, reader: str) -> str:
    """A language's name in the reader's language ("anglais" for en, read in French)."""
    return str(locale(reader).languages.get(language, language))


def language_names(languages: Iterable[str], reader: str) -> str:
    """Languages named and listed the reader's way: "English and French", "inglés y francés"."""
    return str(format_list([language_name(c, reader) for c in languages], locale=locale(reader)))
