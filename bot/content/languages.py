"""Language tags: which folder names are languages, and which shipped language a hint means.

Folders are BCP 47 tags: an ISO 639-1 code, with a script where one language is written two
ways (`zh-Hant`, Chinese in traditional characters). A hint from an app (`zh-TW`, `es-MX`,
`pt_BR`) goes to the closest shipped language by CLDR's language-matching distances.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache

import langcodes
import pycountry
from babel import Locale, UnknownLocaleError

__all__ = ["closest", "gettext_locales", "is_tag", "locale", "telegram_code"]

MAX_DISTANCE = 10
"""Close enough to read with ease: es-MX → es (5), zh-HK → zh-Hant (5), fa-AF → fa (4).
Ukrainian or Belarusian readers are never moved to Russian (24), nor Chinese in simplified
characters to traditional: they get English and the language menu."""

_SHAPE = re.compile(r"[a-z]{2}(-[A-Z][a-z]{3})?")
_GETTEXT = {"zh-Hant": ("zh_TW", "zh_HK")}
"""iso-codes' catalogs are per region; traditional Chinese is Taiwan's and Hong Kong's."""


@cache
def is_tag(name: str) -> bool:
    """An ISO 639-1 language, optionally with an ISO 15924 script, that CLDR knows."""
    if not _SHAPE.fullmatch(name):
        return False
    language, _, script = name.partition("-")
    if pycountry.languages.get(alpha_2=language) is None:
        return False
    if script and pycountry.scripts.get(alpha_4=script) is None:
        return False
    try:
        Locale.parse(name, sep="-")
    except (UnknownLocaleError, ValueError):
        return False
    return True


def closest(hint: str | None, shipped: Iterable[str]) -> str | None:
    """The shipped language a reader with this hint reads with ease, or None."""
    if not hint:
        return None
    try:
        match, _ = langcodes.closest_match(hint.replace("_", "-"), list(shipped), MAX_DISTANCE)
    except ValueError:
        return None
    return None if match == "und" else match


@cache
def locale(tag: str) -> Locale:
    """Babel's locale for a tag; English for one CLDR does not know."""
    try:
        return Locale.parse(tag, sep="-")
    except (UnknownLocaleError, ValueError):
        return Locale.parse("en")


def gettext_locales(tag: str) -> list[str]:
    """The catalog names gettext looks up for a tag (pycountry's country names)."""
    return list(_GETTEXT.get(tag, (tag.replace("-", "_"),)))


def telegram_code(tag: str) -> str:
    """Telegram's command menus take a two-letter ISO 639-1 code only."""
    return tag.partition("-")[0]
