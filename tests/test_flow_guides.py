"""Guides end to end: safety first, the first step within three taps, back, start over, resume."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bot.app import App
from bot.content.library import Library
from bot.storage import Database
from tests.conftest import CONTENT, TEST_KEY
from tests.fakes import FakeTransport, FakeUser

pytestmark = pytest.mark.backends

STEP = "①"
RLM = "\u200f"


def _shipped_languages() -> list[str]:
    return [folder.name for folder in CONTENT.iterdir() if (folder / "strings.yaml").is_file()]


async def test_first_contact_asks_language_suggesting_the_hint(
    make_user: Callable[..., FakeUser],
) -> None:
    person = make_user(hint="es-MX")
    reply = await person.say("hola")
    assert "¿Qué idioma" in reply.text, "asked in the app's language"
    other = make_user(platform_id="other", hint="fr")
    await other.say("bonjour")
    assert person.labels() == other.labels(), "1 means the same language for everyone"
    assert person.labels()[0] == "English" and "Español" in person.labels()
    assert "Error" not in reply.text


@pytest.mark.parametrize("language", sorted(_shipped_languages()))
async def test_every_guide_gives_a_first_step_within_three_taps(
    make_user: Callable[..., FakeUser], library: Library, language: str
) -> None:
    t = library.translator(language)
    for index, guide in enumerate(t.guides()):
        topic = library.packs["en"].guides[guide.id].topic
        person = make_user(platform_id=f"{language}-{index}", hint=language)
        await person.say("/start")
        await person.press_id(f"lang:{language}")
        safety = await person.press_id("menu:guides")  # tap 1
        assert t("safety.text").strip()[:20] in safety.text, "physical danger is asked first"
        assert person.labels()[0].lstrip(RLM) == t("safety.yes"), "the danger answer first"
        listing = await person.press_id(f"topic:{topic}")  # tap 2
        assert len(listing.choices) <= 6, "a topic's guides fit one screen"
        first = await person.press_id(f"guide:{guide.id}")  # tap 3
        assert STEP in first.text, f"{language}/{guide.id}: no concrete step on the first screen"
        assert not t.fell_back or language == "en"


async def test_guide_navigation_back_start_over_and_menu(user: FakeUser, library: Library) -> None:
    guide = library.translator("en").guide("account-compromised")
    assert guide is not None
    await user.press("digital security problem")
    await user.press("Accounts and messages")
    start = await user.press(guide.title)
    deeper = await user.press(guide.nodes[guide.start].options[0].label)
    assert deeper.text != start.text
    assert (await user.press("Back")).text == start.text
    await user.press(guide.nodes[guide.start].options[0].label)
    assert (await user.press("Start this guide again")).text == start.text
    menu = await user.press("Main menu")
    assert "How can I help" in menu.text


async def test_back_from_a_guide_start_returns_to_the_guide_list(user: FakeUser) -> None:
    await user.press("digital security problem")
    await user.press("Accounts and messages")
    await user.press("account was hacked")
    listing = await user.press("Back")
    assert "What is happening" in listing.text and "My account was hacked" in user.labels()


async def test_danger_answer_shows_physical_protection_contacts_then_the_guide(
    user: FakeUser, library: Library
) -> None:
    await user.press("digital security problem")
    danger = await user.press("Yes, I may be in danger")
    assert "Your safety comes first" in danger.text
    assert danger.sensitive and danger.ttl is not None
    physical = [c for c in library.translator("en").contacts() if "physical" in c.needs]
    assert any(c.name in danger.text for c in physical)
    await user.press("Continue to the guides")
    await user.press("Phones, computers, data")
    assert STEP in (await user.press("seized")).text


async def test_leaf_offers_contacts_for_the_guides_need(user: FakeUser, library: Library) -> None:
    guide = library.translator("en").guide("phishing")
    assert guide is not None
    await user.press("digital security problem")
    await user.press("Accounts and messages")
    await user.press(guide.title)
    node = guide.start
    while guide.nodes[node].options:
        option = next(o for o in guide.nodes[node].options if not o.next.startswith("@"))
        await user.press(option.label)
        node = option.next
    assert "Find people who can help" in user.labels()
    asked = await user.press("Find people who can help")
    assert "Which country are you in?" in asked.text
    results = await user.press("Anywhere")
    assert "Digital security (international). Best matches first" in results.text


async def test_guide_resumes_after_a_restart(
    db_path: object, library: Library, transport: FakeTransport
) -> None:
    from pathlib import Path

    path = Path(str(db_path))
    db = await Database.open(path, TEST_KEY)
    app = await App.open(db, library)
    person = FakeUser(app, transport)
    await person.say("/start")
    await person.press("English")
    await person.press("digital security problem")
    await person.press("Accounts and messages")
    await person.press("account was hacked")
    deeper = await person.press("I can still log in")
    await db.close()

    db = await Database.open(path, TEST_KEY)
    app = await App.open(db, library)
    person = FakeUser(app, transport)
    assert (await person.press("Back")).text != deeper.text, "the back stack survived"
    menu = await person.say("/menu")
    assert "Continue: My account was hacked" in "\n".join(person.labels()), menu.text
    await db.close()
