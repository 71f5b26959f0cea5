"""Every script shown right: the Unicode bidi algorithm over every screen of every
right-to-left language keeps phone numbers, dates, case ids and commands in order; French
typography; plural forms and names from CLDR."""

from __future__ import annotations

import copy
import json
import re
from collections import Counter, deque
from collections.abc import Callable
from pathlib import Path

import pytest
from bidi import get_display
from hypothesis import given
from hypothesis import strategies as st

from bot.app import App
from bot.content.library import Library
from bot.content.loader import load_library
from bot.content.script import (
    FSI,
    LRI,
    PDI,
    bidi_problem,
    date_text,
    french_spacing,
    isolate,
    isolate_values,
    language_names,
)
from bot.conversation.sessions import Session
from bot.model import ChatRef, Incoming, Reply
from handlers.output import directed
from handlers.referrals import number_of
from handlers.router import respond
from tests.conftest import CONTENT
from tests.fakes import FakeTransport, FakeUser
from tests.reporting import Team


def _rtl_languages() -> list[str]:
    library, problems = load_library(CONTENT)
    assert library is not None, problems
    return sorted(code for code, pack in library.packs.items() if pack.rtl)


RTL_LANGUAGES = _rtl_languages()
CONTROLS = re.compile("[\u200e\u200f\u061c\u202a-\u202e\u2066-\u2069]")
CASE_ID = re.compile(r"HRD(?:-[A-Z0-9]{4})+")
COMMAND = re.compile(r"(?<![\w/])/[a-z]+\b", re.ASCII)
TYPED = "كولومبيا"
"""What the walk types where a screen takes words: a country in Arabic, also an answer."""
MAX_SCREENS = 4000


def _visual(line: str) -> str:
    """A line as a screen shows it, left to right, without the invisible controls."""
    return CONTROLS.sub("", get_display(line))


def _phones(library: Library) -> set[str]:
    return {
        channel.value
        for pack in library.packs.values()
        for contact in pack.contacts
        for channel in contact.channels
        if number_of(channel) is not None
    }


def _dates(library: Library, code: str) -> set[str]:
    return {
        date_text(topic.last_reviewed, code)
        for pack in library.packs.values()
        for legal in pack.legal.values()
        for topic in legal.topics.values()
    }


class Checker:
    """Checks the visual order of every phone number, date and case id on each line."""

    def __init__(self, library: Library, code: str) -> None:
        self.phones = _phones(library)
        self.dates = _dates(library, code)
        self.seen: Counter[str] = Counter()

    def line(self, line: str) -> list[str]:
        logical = CONTROLS.sub("", line)
        visual = _visual(line)
        wrong = []
        for kind, values in (
            ("phone", self.phones),
            ("case", CASE_ID.findall(logical)),
            ("command", COMMAND.findall(logical)),
        ):
            for value in values:
                if value in logical:
                    self.seen[kind] += 1
                    if value not in visual:
                        wrong.append(f"{value!r} is not in order in {visual!r}")
        for day in self.dates:
            if day in logical:
                self.seen["date"] += 1
                if _visual(FSI + day + PDI) not in visual:
                    wrong.append(f"date {day!r} is not in order in {visual!r}")
        return wrong

    def reply(self, reply: Reply) -> list[str]:
        lines = reply.text.split("\n") + [choice.label for choice in reply.choices]
        return [problem for line in lines for problem in self.line(line)]


def test_the_checker_sees_a_number_the_bidi_algorithm_reverses(library: Library) -> None:
    """Without isolation, the Front Line Defenders line reads backwards: the walk below
    would catch it."""
    checker = Checker(library, "ar")
    raw = "\u200fالخط الساخن: +353 1 210 0489"
    assert "0489 210 1 353+" in _visual(raw)
    assert checker.line(raw)
    assert not checker.line(directed("الخط الساخن: +353 1 210 0489", rtl=True))


async def _walk(app: App, code: str, checker: Checker) -> tuple[int, list[str]]:
    """Every screen reachable by pressing choices (and typing where a screen takes words),
    each branch on a copy of the session; returns how many replies were checked."""
    user = app.pseudonyms.user("fake", f"walker-{code}")
    chat = ChatRef("fake", f"chat-walker-{code}")

    async def forget() -> None:
        return None

    async def send(session: Session, **fields: object) -> Reply:
        msg = Incoming(user=user, chat=chat, language_hint=code, **fields)  # type: ignore[arg-type]
        return await respond(msg, session, app.library, forget, app.casework, app.checkins)

    start = Session(user)
    first = await send(start, text="/start")
    todo: deque[tuple[Session, Reply]] = deque([(start, first)])
    seen: set[str] = set()
    problems: list[str] = []
    checked = 0
    while todo and checked < MAX_SCREENS:
        session, reply = todo.popleft()
        checked += 1
        if reply.rtl:
            problems += [f"{session.state.get('at')}: {p}" for p in checker.reply(reply)]
        inputs: list[dict[str, object]] = [
            {"choice": c.id}
            for c in reply.choices
            if not c.id.startswith("lang:") or c.id == f"lang:{code}"
        ]
        if session.state.get("typing"):
            inputs.append({"text": TYPED, "raw_size": len(TYPED.encode())})
        for sent in inputs:
            branch = copy.deepcopy(session)
            following = await send(branch, **sent)
            key = json.dumps([branch.language, branch.state.get("at"), branch.state.get("page")])
            key += json.dumps(sorted(c.id for c in following.choices))
            if following.erase_chat or key in seen:
                continue
            seen.add(key)
            todo.append((branch, following))
    return checked, problems


@pytest.mark.parametrize("code", RTL_LANGUAGES)
async def test_every_screen_keeps_numbers_dates_and_case_ids_in_order(
    team_app: tuple[App, Team], transport: FakeTransport, code: str
) -> None:
    app, _ = team_app
    app.attach(transport)
    checker = Checker(app.library, code)
    checked, problems = await _walk(app, code, checker)
    assert not problems, "\n".join(problems[:20])
    assert checked > 100, "the walk must reach the guides, legal pages and contacts"
    assert all(checker.seen[kind] for kind in ("phone", "date", "case", "command")), checker.seen
    danger = [r for _, r in transport.sent if "+353 1 210 0489" in CONTROLS.sub("", r.text)]
    for reply in danger:
        assert any("+353 1 210 0489" in _visual(line) for line in reply.text.split("\n"))


def test_placeholders_are_isolated_in_right_to_left_text(library: Library) -> None:
    t = library.translator("ar")
    text = t("report.progress", number=3, total=7)
    assert f"{FSI}3{PDI}" in text and f"{FSI}7{PDI}" in text
    english = library.translator("en")("report.progress", number=3, total=7)
    assert FSI not in english, "left-to-right text with left-to-right values needs nothing"
    assert isolate("منظمة", rtl=False) == f"{FSI}منظمة{PDI}", "Arabic inside English is isolated"
    assert isolate("two\nlines", rtl=True) == "two\nlines"
    assert isolate(isolate("x", rtl=True), rtl=True) == f"{FSI}x{PDI}"
    two = f"{FSI}a{PDI} b {FSI}c{PDI}"
    assert isolate(two, rtl=True) == f"{FSI}{two}{PDI}", "two isolates are not one value"


@pytest.mark.parametrize(
    "value",
    [
        "+353 1 210 0489",
        "info@example.org",
        "https://example.org/a?b=1",
        "@bot:example.org",
        "HRD-7KQ4-M2XP",
        "2026-11-25",
        "25/11/2026",
        "12:30",
        "/menu",
        "@FrontLineHRD",
    ],
)
def test_values_written_in_prose_are_isolated_left_to_right(value: str) -> None:
    text = isolate_values(f"اتصل على {value}، شكرًا.", rtl=True)
    assert f"{LRI}{value}{PDI}" in text
    assert value in _visual("\u200f" + text)
    assert isolate_values(f"call {value}", rtl=False) == f"call {value}"
    assert isolate_values(text, rtl=True) == text, "isolating twice changes nothing"


def test_short_numbers_in_prose_stay_separate() -> None:
    """ "2, 6 or 24 hours" are three numbers, not one value to keep left to right."""
    assert isolate_values("كل 2 أو 6 أو 24 ساعة", rtl=True) == "كل 2 أو 6 أو 24 ساعة"


def test_dates_are_written_the_languages_way(library: Library) -> None:
    import datetime as dt

    day = dt.date(2026, 11, 25)
    assert date_text(day, "en") == "November 25, 2026"
    assert date_text(day, "fr") == "25 novembre 2026"
    assert date_text(day, "es") == "25 de noviembre de 2026"
    assert "نوفمبر" in date_text(day, "ar")
    shown = library.translator("ar")("legal.reviewed", date=day)
    assert f"{FSI}{date_text(day, 'ar')}{PDI}" in shown and "25-11-2026" not in shown


def test_french_has_narrow_no_break_spaces_before_high_punctuation(library: Library) -> None:
    assert french_spacing("Vraiment ? Oui ! Note : ceci ; « cela »") == (
        "Vraiment\u202f? Oui\u202f! Note\u202f: ceci\u202f; «\u202fcela\u202f»"
    )
    assert french_spacing("https://x.org 12:30") == "https://x.org 12:30"
    french = library.packs["fr"]
    texts = [v for v in french.strings.values() if isinstance(v, str)]
    texts += [node.text for guide in french.guides.values() for node in guide.nodes.values()]
    texts += [topic.text for legal in french.legal.values() for topic in legal.topics.values()]
    bad = [t for t in texts if re.search(r"[ \u00a0][?!:;]", t)]
    assert not bad, bad[:3]
    assert any("\u202f:" in t for t in texts)


def test_a_french_file_is_fixed_as_it_loads(tmp_path: Path) -> None:
    import shutil

    root = tmp_path / "content"
    shutil.copytree(CONTENT / "en", root / "en")
    (root / "fr").mkdir()
    (root / "fr" / "strings.yaml").write_text(
        "language: {name: Français}\nstrings:\n  nav.menu: 'Menu : principal ?'\n"
    )
    library, _ = load_library(root)
    assert library is not None
    assert library.translator("fr")("nav.menu") == "Menu\u202f: principal\u202f?"


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("en", "English and French"),
        ("fr", "anglais et français"),
        ("es", "inglés y francés"),
        ("ar", "الإنجليزية والفرنسية"),
    ],
)
def test_language_names_in_the_readers_language(code: str, expected: str) -> None:
    assert language_names(["en", "fr"], code) == expected


@pytest.mark.parametrize(("code", "english"), [("en", "English"), ("fr", "anglais")])
async def test_contacts_show_language_names_not_codes(
    make_user: Callable[..., FakeUser], code: str, english: str
) -> None:
    person = make_user(platform_id=f"names-{code}", hint=code)
    await person.say("/start")
    await person.press_id(f"lang:{code}")
    await person.press_id("menu:contacts")
    await person.press_id("need:digital")
    reply = await person.press_id("country:*")
    languages = [line for line in reply.text.split("\n") if english in line]
    assert languages, reply.text[:300]
    assert not re.search(r"\b(en|fr|es|ar)(, |$)", reply.text, re.MULTILINE)


async def test_the_review_names_the_country_and_staff_alerts_too(
    reporter: FakeUser, transport: FakeTransport
) -> None:
    await reporter.say("/start")
    await reporter.press("English")
    await reporter.press("Report a risk")
    await reporter.press("Start the report")
    for answer in ("they followed me", "yesterday", "Mexico", "me"):
        await reporter.say(answer)
    await reporter.press("Danger now")
    await reporter.say("here")
    review = await reporter.press("Yes, if it helps")
    assert "\n   Mexico" in review.text and "\n   MX" not in review.text
    await reporter.press("Send the report")
    alerts = [r.text for _, r in transport.sent if r.text.startswith("New case")]
    assert alerts and "country: Mexico" in alerts[-1]


@given(st.text(alphabet=st.sampled_from("+0123456789 -./:@ab/HRD-ZQمرحبا\n"), max_size=60))
def test_isolating_values_leaves_text_balanced_and_is_idempotent(text: str) -> None:
    done = isolate_values(text, rtl=True)
    assert bidi_problem(done) is None
    assert isolate_values(done, rtl=True) == done
    assert CONTROLS.sub("", done) == text, "only isolates are added"
