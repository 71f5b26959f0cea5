"""Language tags: folder names, and the shipped language an app's hint leads to."""

from __future__ import annotations

import pytest

from bot.content.countries import country_name
from bot.content.languages import closest, gettext_locales, is_tag, telegram_code

SHIPPED = ["en", "es", "fr", "ar", "ru", "fa", "zh-Hant"]


@pytest.mark.parametrize("name", ["en", "fa", "zh-Hant", "sr-Latn", "tl"])
def test_language_and_script_tags_are_folders(name: str) -> None:
    assert is_tag(name)


@pytest.mark.parametrize("name", ["qq", "EN", "zh-hant", "zh-Xxxx", "es-MX", "zh_Hant", "", "e"])
def test_other_names_are_not(name: str) -> None:
    assert not is_tag(name)


@pytest.mark.parametrize(
    ("hint", "shipped"),
    [
        ("zh-TW", "zh-Hant"),
        ("zh_HK", "zh-Hant"),
        ("es-MX", "es"),
        ("fa-AF", "fa"),
        ("ru-RU", "ru"),
        ("ar-EG", "ar"),
    ],
)
def test_hints_go_to_the_closest_shipped_language(hint: str, shipped: str) -> None:
    assert closest(hint, SHIPPED) == shipped


@pytest.mark.parametrize("hint", ["uk", "be", "zh-CN", "pt-BR", "!!!", "", None, "x" * 500, "\x00"])
def test_a_reader_is_never_moved_to_a_language_they_may_not_read_or_want(
    hint: str | None,
) -> None:
    """Ukrainian is not answered in Russian, simplified Chinese not in traditional."""
    assert closest(hint, SHIPPED) is None


def test_traditional_chinese_has_country_names_and_a_telegram_menu_code() -> None:
    assert gettext_locales("zh-Hant") == ["zh_TW", "zh_HK"]
    assert country_name("EG", "zh-Hant") == "埃及"
    assert country_name("EG", "fa") == "مصر"
    assert telegram_code("zh-Hant") == "zh"
