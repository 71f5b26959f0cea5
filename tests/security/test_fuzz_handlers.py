"""Hostile and careless input, end to end through the App and the fake transport.

Each example is one new person (and a protection team in its staff room) sending a
random sequence: text in every script, control characters, digits of any script,
commands, labels typed by hand, very long text, button presses current, stale and
forged, files, group messages and staff commands. After every private message:

- the bot answered it (at least one reply), and never with "Something went wrong";
- a message the input check refuses is told why, in the person's language;
- no reply is empty or holds a template placeholder, and no screen offers a choice
  twice or with an empty label.

Staff-room messages must not raise (the App does not catch around staff commands).
`HYPOTHESIS_PROFILE=long` runs 10,000 sequences (see tests/conftest.py).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from bot.app import App
from bot.conversation.flood import FloodGuard
from bot.model import Attachment, ChatRef, Incoming, Reply
from bot.storage.database import Connection
from handlers.router import input_problem
from tests.fakes import FakeTransport
from tests.reporting import STAFF_ROOM, Team

LANGUAGES = ("en", "es", "fr", "ar")
_PLACEHOLDER = re.compile(r"\{[a-z_]+\}")
_people = itertools.count()


@dataclass(frozen=True)
class Say:
    text: str
    raw_size: int | None = None


@dataclass(frozen=True)
class TypeLabel:
    """Type the label of an offered choice (as a console or Matrix user does)."""

    index: int
    mangle: str


@dataclass(frozen=True)
class Press:
    index: int


@dataclass(frozen=True)
class PressId:
    """Press the offered choice whose id starts with `prefix` (a journey's next step)."""

    prefix: str


@dataclass(frozen=True)
class PressStale:
    back: int
    index: int


@dataclass(frozen=True)
class PressForged:
    choice: str


@dataclass(frozen=True)
class Send:
    """A file (or, with no data, one over the download limit) or a sticker (no text)."""

    attachment: Attachment | None


@dataclass(frozen=True)
class InGroup:
    text: str


@dataclass(frozen=True)
class Staff:
    who: str
    command: str
    case: int | None
    rest: str


Action = Say | TypeLabel | Press | PressId | PressStale | PressForged | Send | InGroup | Staff

COMMANDS = (
    "/start",
    "/menu",
    "/cancel",
    "/help",
    "/language",
    "/forget",
    "/cases",
    "/ack",
    "/reply",
    "/selfdestruct",
    "/",
    "//",
    "/start@hrd_bot",
    "/MENU",
    "/start extra words",
)
FORGED = (
    "forget:yes",
    "report:send",
    "report:start",
    "report:edit:99",
    "report:edit:²",
    "opt:0",
    "opt:99",
    "opt:-1",
    "opt:①",
    "checkin:every:2",
    "checkin:every:٢",
    "checkin:help",
    "nav:back",
    "nav:more",
    "lang:en",
    "lang:xx",
    "guide:nope",
    "country:ZZ",
    "answer:nope",
    "menu:resume",
    "",
)
SPECIAL = ("\x00", "\x1b[2J", "\ufffd", "\u202e", "\u200f", "\u0301", "\r\n", "\t", "🏳️‍🌈", "\uffff")

NUMBERS = (
    "1",
    "٣",
    "۳",
    "३",
    "３",
    "①",
    "⑩",
    "❶",
    "²",
    "¹²",
    "½",
    "Ⅻ",
    "٣.",
    "(2)",
    "𝟑",
    "0",
    "-1",
    "99",
)
COUNTRIES = ("Kenya", "colombia", "MÉXICO", "مصر", "Côte d'Ivoire", "Turquía", "Soudan")
PLAIN = ("   ", "\n\n", "yes", "HRD-", "Español", "english", "back", "menu", "ok thanks")

texts = st.one_of(
    st.text(max_size=60),
    st.sampled_from(NUMBERS),
    st.text(st.characters(categories=["Nd", "No", "Nl"]), min_size=1, max_size=3),
    st.text(st.characters(min_codepoint=0x600, max_codepoint=0x6FF), max_size=40),
    st.lists(st.sampled_from(SPECIAL), min_size=1, max_size=4).map("".join),
    st.tuples(st.sampled_from(COMMANDS), st.text(max_size=20)).map(" ".join),
    st.sampled_from(COMMANDS),
    st.integers(3990, 4010).map(lambda n: "ا" * n),
    st.sampled_from(PLAIN),
)
files = st.builds(
    Attachment,
    name=st.text(max_size=30),
    media_type=st.sampled_from(["image/jpeg", "application/pdf", "text/html", "", "x/\x00"]),
    size=st.integers(0, 20 * 1024 * 1024),
    data=st.one_of(st.none(), st.binary(max_size=64)),
)
actions: st.SearchStrategy[Action] = st.one_of(
    st.builds(Say, texts),
    st.builds(Say, texts),
    st.builds(Say, texts, st.integers(0, 10**8)),
    st.builds(TypeLabel, st.integers(0, 30), st.sampled_from(["", "upper", "prefix", "number"])),
    st.builds(Press, st.integers(0, 30)),
    st.builds(Press, st.integers(0, 30)),
    st.builds(Press, st.integers(0, 30)),
    st.builds(PressStale, st.integers(1, 10), st.integers(0, 30)),
    st.builds(PressForged, st.one_of(st.sampled_from(FORGED), st.text(max_size=30))),
    st.builds(Send, st.one_of(st.none(), files)),
    st.builds(InGroup, texts),
    st.builds(
        Staff,
        st.sampled_from(["staff-alice", "staff-bruno", "infiltrator"]),
        st.sampled_from(
            ["/cases", "/case", "/ack", "/assign", "/escalate", "/note", "/reply", "/close"]
        ),
        st.one_of(st.none(), st.integers(0, 5)),
        texts,
    ),
)


def _journey(*steps: str) -> list[Action]:
    return [Say("/start"), PressId("lang:"), *(PressId(step) for step in steps)]


def _answers(count: int) -> st.SearchStrategy[list[Action]]:
    """Answers to a whole interview: mostly typed text, some presses (choice questions)."""
    answer = st.one_of(
        st.builds(Say, texts),
        st.builds(Say, st.sampled_from(COUNTRIES)),
        st.builds(Press, st.integers(0, 5)),
    )
    return st.lists(answer, min_size=count, max_size=count)


PRELUDES: st.SearchStrategy[list[Action]] = st.one_of(
    st.just([]),
    st.just(_journey()),
    st.just(_journey("menu:guides", "guide:")),
    st.just(_journey("menu:guides", "guide:", "opt:", "opt:")),
    st.just(_journey("menu:legal", "country:")),
    st.builds(
        lambda answers: [*_journey("menu:report", "report:start"), *answers],
        _answers(9),
    ),
    st.builds(
        lambda answers: [
            *_journey("menu:report", "report:start"),
            *answers,
            PressId("report:send"),
        ],
        _answers(9),
    ),
)


class Person:
    """One person in a private chat, remembering every screen they were shown."""

    def __init__(self, app: App, transport: FakeTransport, hint: str | None) -> None:
        self.app, self.transport, self.hint = app, transport, hint
        self.user = app.pseudonyms.user(transport.name, f"fuzz-{next(_people)}")
        self.chat = ChatRef(transport.name, f"chat-{self.user.pseudonym[:12]}")
        self.screens: list[Reply] = []
        self.language = hint or "en"

    @property
    def offered(self) -> Sequence[str]:
        return [c.id for c in self.screens[-1].choices] if self.screens else []

    async def send(self, **fields: object) -> Sequence[Reply]:
        msg = Incoming(user=self.user, chat=self.chat, language_hint=self.hint, **fields)  # type: ignore[arg-type]
        self.language = (await self.app.sessions.load(self.user)).language or self.hint or "en"
        replies = await self.app.handle(msg)
        for reply in replies:
            await self.transport.send(self.chat, reply)
        check_answer(self.app, replies, input_problem(msg), self.language)
        self.screens += replies
        return replies


def check_answer(app: App, replies: Sequence[Reply], problem: str | None, language: str) -> None:
    assert replies, "a private message went unanswered"
    internal = {app.library.translator(code)("error.internal") for code in LANGUAGES}
    for reply in replies:
        assert reply.text.strip(), "an empty reply"
        assert not any(text in reply.text for text in internal), "Something went wrong"
        assert not _PLACEHOLDER.search(reply.text), reply.text
        ids = [c.id for c in reply.choices]
        assert len(ids) == len(set(ids)), ids
        assert all(c.label.strip() for c in reply.choices)
    if problem is not None and not replies[0].erase_chat:
        told = app.library.translator(language)(problem)
        assert told in replies[0].text, (problem, language)


def _typed(label: str, mangle: str, index: int) -> str:
    if mangle == "upper":
        return label.upper()
    if mangle == "prefix":
        return label[: max(3, len(label) // 2)]
    if mangle == "number":
        return str(index + 1)
    return label


async def _act(person: Person, action: Action, cases: list[str]) -> None:
    if isinstance(action, Say):
        size = len(action.text.encode()) if action.raw_size is None else action.raw_size
        await person.send(text=action.text, raw_size=size)
    elif isinstance(action, TypeLabel) and person.screens and person.screens[-1].choices:
        choices = person.screens[-1].choices
        index = action.index % len(choices)
        text = _typed(choices[index].label, action.mangle, index)
        await person.send(text=text, raw_size=len(text.encode()))
    elif isinstance(action, Press) and person.offered:
        replies = await person.send(choice=person.offered[action.index % len(person.offered)])
        stale = person.app.library.translator(person.language)("error.stale")
        assert stale not in replies[0].text, "a button on the current screen was called stale"
    elif isinstance(action, PressId):
        chosen = [cid for cid in person.offered if cid.startswith(action.prefix)]
        if chosen:
            await person.send(choice=chosen[0])
    elif isinstance(action, PressStale) and len(person.screens) > action.back:
        old = person.screens[-1 - action.back].choices
        if old:
            await person.send(choice=old[action.index % len(old)].id)
    elif isinstance(action, PressForged):
        await person.send(choice=action.choice)
    elif isinstance(action, Send):
        if action.attachment is None:
            await person.send()
        else:
            await person.send(attachment=action.attachment)
    elif isinstance(action, InGroup):
        group = ChatRef(person.transport.name, "some-group", private=False)
        msg = Incoming(person.user, group, text=action.text, raw_size=len(action.text))
        assert await person.app.handle(msg), "a group message addressed to the bot is answered"
    elif isinstance(action, Staff):
        await _staff(person.app, action, cases)


async def _staff(app: App, staff: Staff, cases: list[str]) -> None:
    """Staff commands must not raise; a command gets one answer, chatter none."""
    case = cases[staff.case % len(cases)] if cases and staff.case is not None else ""
    text = " ".join(part for part in (staff.command, case, staff.rest) if part)
    user = app.pseudonyms.user("fake", staff.who)
    msg = Incoming(user, STAFF_ROOM, text=text, verified_device=True)
    replies = await app.handle(msg)
    assert len(replies) <= 1
    internal = app.library.translator("en")("error.internal")
    assert all(internal not in reply.text for reply in replies)


@given(
    script=st.lists(actions, min_size=3, max_size=40),
    hint=st.sampled_from([*LANGUAGES, None, "zz", "pt-BR"]),
    prelude=PRELUDES,
)
async def test_any_sequence_is_answered_truly_and_nothing_escapes(
    team_app: tuple[App, Team],
    transport: FakeTransport,
    script: list[Action],
    hint: str | None,
    prelude: list[Action],
) -> None:
    """A `prelude` takes most people somewhere deep first (a guide, a country's legal
    topics, a report's review or a sent report) before the random script."""
    app, _ = team_app
    app.flood = FloodGuard(rate=1e9, burst=10**9)
    app.attach(transport)
    person = Person(app, transport, hint)
    transport.sent.clear()
    cases = await app.db.run(_recent_cases)
    for action in [*prelude, *script]:
        await _act(person, action, cases)


def _recent_cases(conn: Connection) -> list[str]:
    """Some case ids (drafts, open, closed) for staff commands to aim at."""
    rows = conn.execute("SELECT id FROM cases ORDER BY created_at DESC LIMIT 6")
    return [str(row[0]) for row in rows]
