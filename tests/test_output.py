"""Paging long texts for a small screen."""

from __future__ import annotations

import pytest

from handlers.output import directed, paginate


def test_short_text_is_one_page() -> None:
    assert paginate("Hello.\n\nWorld.") == ["Hello.\n\nWorld."]


@pytest.mark.parametrize("limit", [50, 120, 900])
def test_pages_respect_the_limit_and_lose_nothing(limit: int) -> None:
    text = "Title\n\n" + " ".join(f"word{i}" for i in range(400)) + "\n\nLast line."
    pages = paginate(text, limit)
    assert all(len(page) <= limit for page in pages)
    assert " ".join(" ".join(pages).split()) == " ".join(text.split())


def test_a_short_heading_is_not_left_alone_on_a_page() -> None:
    """The paragraph after the heading fits a page but not the rest of this one: the page
    is filled with its first words rather than leaving the heading alone."""
    paragraph = " ".join(f"w{i}" for i in range(27))
    assert len(paragraph) <= 100
    pages = paginate("Heading\n\n" + paragraph, 100)
    assert len(pages) == 2
    assert pages[0].startswith("Heading\n\nw0 w1") and len(pages[0]) > 80
    assert " ".join(" ".join(pages).split()) == "Heading " + paragraph


def test_unbroken_text_is_cut_hard() -> None:
    assert paginate("y" * 250, 100) == ["y" * 100, "y" * 100, "y" * 50]


def test_right_to_left_marks_every_line_once() -> None:
    assert directed("a\nb", rtl=True) == "\u200fa\n\u200fb"
    assert directed(directed("a", rtl=True), rtl=True) == "\u200fa"
    assert directed("a\nb", rtl=False) == "a\nb"
