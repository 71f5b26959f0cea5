"""Every guide in every language, walked to all its ends as a person would tap through it.

Per guide and language: the first concrete step within three taps of choosing the language,
every screen one phone screen (a "More" page beyond), a way back on every screen, every
node reached, and every contacts button leading to people who help with that need.
"""

from __future__ import annotations

import copy
from collections import deque

import pytest

from bot.app import App
from bot.content.library import Library
from bot.content.loader import load_library
from bot.content.schema import Guide
from bot.conversation.sessions import Session
from bot.model import ChatRef, Incoming, Reply
from handlers.context import BACK, MORE
from handlers.output import SCREEN_CHARS
from handlers.router import respond
from tests.conftest import CONTENT

STEP = "①"
MAX_CHOICES = 9
"""Buttons that fit under a screen of text on a small phone."""


def _shipped() -> Library:
    library, problems = load_library(CONTENT)
    assert library is not None, problems
    return library


SHIPPED = _shipped()
CASES = [
    (code, guide) for code in sorted(SHIPPED.packs) for guide in sorted(SHIPPED.packs["en"].guides)
]


class Walker:
    def __init__(self, app: App, code: str) -> None:
        self.app, self.code = app, code
        self.user = app.pseudonyms.user("fake", f"walker-{code}")
        self.chat = ChatRef("fake", f"walker-{code}")

    async def send(self, session: Session, **fields: object) -> Reply:
        async def forget() -> None:
            return None

        msg = Incoming(user=self.user, chat=self.chat, language_hint=self.code, **fields)  # type: ignore[arg-type]
        app = self.app
        return await respond(msg, session, app.library, forget, app.casework, app.checkins)

    async def press(self, session: Session, choice: str, reply: Reply) -> Reply:
        assert choice in {c.id for c in reply.choices}, f"{choice} is not offered"
        return await self.send(session, choice=choice)


def _screen_problems(where: str, reply: Reply) -> list[str]:
    ids = [c.id for c in reply.choices]
    problems = []
    if BACK not in ids:
        problems.append(f"{where}: no way back")
    if len(reply.text) > SCREEN_CHARS + 200:
        problems.append(f"{where}: {len(reply.text)} characters on one screen")
    if len(ids) > MAX_CHOICES:
        problems.append(f"{where}: {len(ids)} buttons")
    return problems


async def _first_step(walker: Walker, guide: Guide) -> tuple[Session, Reply]:
    session = Session(walker.user)
    welcome = await walker.send(session, text="/start")
    menu = await walker.press(session, f"lang:{walker.code}", welcome)
    safety = await walker.press(session, "menu:guides", menu)  # tap 1
    topic = walker.app.library.packs["en"].guides[guide.id].topic
    listing = await walker.press(session, f"topic:{topic}", safety)  # tap 2
    first = await walker.press(session, f"guide:{guide.id}", listing)  # tap 3
    return session, first


@pytest.mark.parametrize(("code", "guide_id"), CASES)
async def test_every_path_of_every_guide(app: App, code: str, guide_id: str) -> None:
    t = app.library.translator(code)
    guide = t.guide(guide_id)
    assert guide is not None and not t.fell_back, f"{code}/{guide_id} is not translated"
    walker = Walker(app, code)
    session, first = await _first_step(walker, guide)
    assert STEP in first.text, f"{code}/{guide_id}: no concrete step within three taps"
    assert t("fallback.note") not in first.text
    problems: list[str] = []
    seen: set[str] = set()
    todo = deque([(session, first)])
    while todo:
        session, reply = todo.popleft()
        node_id = session.state["at"][1]["node"]
        where = f"{code}/{guide_id}/{node_id}/page{session.state.get('page', 0)}"
        if where in seen:
            continue
        seen.add(where)
        problems += _screen_problems(where, reply)
        for choice, target in _onward(guide, node_id, reply):
            branch = copy.deepcopy(session)
            following = await walker.send(branch, choice=choice)
            if target.startswith("@contacts:"):
                problems += _contacts_problems(where, branch, target)
            elif branch.state["at"][0] == "guide":
                todo.append((branch, following))
    reached = {where.split("/")[2] for where in seen}
    assert reached == set(guide.nodes), f"not reached: {set(guide.nodes) - reached}"
    assert not problems, "\n".join(problems)


def _onward(guide: Guide, node_id: str, reply: Reply) -> list[tuple[str, str]]:
    """The choices that go on within the guide or to contacts, with the option's target."""
    options = guide.nodes[node_id].options
    found = [(c.id, options[int(c.id[4:])].next) for c in reply.choices if c.id.startswith("opt:")]
    return found + [(MORE, "") for c in reply.choices if c.id == MORE]


def _contacts_problems(where: str, session: Session, target: str) -> list[str]:
    at, args = session.state["at"]
    need = target.removeprefix("@contacts:")
    if at not in ("contacts_country", "contacts_results") or args.get("need") != need:
        return [f"{where}: {target} opened {at} {args}"]
    return []


@pytest.mark.parametrize("code", sorted(SHIPPED.packs))
def test_every_need_a_guide_sends_people_to_has_someone_in_every_language(
    library: Library, code: str
) -> None:
    t = library.translator(code)
    needs = {
        option.next.removeprefix("@contacts:")
        for guide in t.guides()
        for node in guide.nodes.values()
        for option in node.options
        if option.next.startswith("@contacts:")
    } | {guide.needs[0] for guide in t.guides()}
    for need in needs:
        helpers = [c for c in t.contacts() if need in c.needs and c.scope == "international"]
        assert helpers, f"{code}: nobody anywhere helps with {need}"
