"""Country names in the user's language, and finding a country from whatever a person types."""

from __future__ import annotations

import gettext
import re
import unicodedata
from collections.abc import Iterable
from functools import cache

import pycountry

from bot.content.languages import gettext_locales

__all__ = ["country_name", "find_country", "fold"]

_ARABIC_FOLD = str.maketrans({"أ": "ا", "إ": "ا", "آ": "ا", "ة": "ه", "ى": "ي", "ـ": None})
_NOISE = re.compile(r"[\W_]+", re.UNICODE)


def fold(text: str) -> str:
    """Compare text the way people type it: no case, accents, harakat or punctuation."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _NOISE.sub(" ", bare.translate(_ARABIC_FOLD)).strip()


@cache
def _catalog(language: str) -> gettext.NullTranslations:
    return gettext.translation(
        "iso3166-1", pycountry.LOCALES_DIR, languages=gettext_locales(language), fallback=True
    )


def _english_names(code: str) -> list[str]:
    country = pycountry.countries.get(alpha_2=code)
    if country is None:
        return []
    names = [getattr(country, a, None) for a in ("common_name", "name", "official_name")]
    return [n for n in names if n]


@cache
def country_name(code: str, language: str) -> str:
    """The short name, e.g. 'Égypte' for EG in French; the code itself if unknown."""
    names = _english_names(code)
    if not names:
        return code
    return _catalog(language).gettext(names[0])


@cache
def _index(languages: tuple[str, ...], aliases: tuple[tuple[str, str], ...]) -> dict[str, str]:
    index: dict[str, str] = {}
    for country in pycountry.countries:
        code = country.alpha_2
        for english in _english_names(code):
            index.setdefault(fold(english), code)
            for language in languages:
                index.setdefault(fold(_catalog(language).gettext(english)), code)
        index.setdefault(fold(code), code)
        index.setdefault(fold(country.alpha_3), code)
    for alias, code in aliases:
        index[fold(alias)] = code
    return index


def find_country(
    typed: str, languages: Iterable[str], aliases: Iterable[tuple[str, str]] = ()
) -> str | None:
    """ISO code of the country named in `typed`, in any of `languages`, or None."""
    key = fold(typed)
    if not key:
        return None
    index = _index(tuple(sorted(languages)), tuple(sorted(aliases)))
    if key in index:
        return index[key]
    starts = {code for name, code in index.items() if len(key) >= 4 and name.startswith(key)}
    return starts.pop() if len(starts) == 1 else None
