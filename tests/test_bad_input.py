"""Oversized, binary, empty, unknown, stale and flooding input: a clear answer, no state lost."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bot.app import App
from bot.conversation.flood import FloodGuard
from bot.model import Incoming
from handlers.numbers import choice_index
from tests.fakes import FakeUser
from tests.reporting import start_report


async def _at_guide_list(user: FakeUser) -> str:
    return (await user.press("digital security problem")).text


@pytest.mark.parametrize(
    ("text", "raw_size", "expected"),
    [
        ("x" * 5000, None, "too long"),
        ("", 10_000_000, "too long"),
        ("abc\x00\x01def", None, "could not read"),
        ("\ufffd\ufffd", None, "could not read"),
        ("   ", None, "empty"),
        ("/selfdestruct", None, "don't know that command"),
        ("what is this", None, "choose one of the options"),
        ("99", None, "choose one of the options"),
    ],
)
async def test_bad_input_is_answered_and_the_screen_stays(
    user: FakeUser, text: str, raw_size: int | None, expected: str
) -> None:
    screen = await _at_guide_list(user)
    reply = await user.say(text, raw_size=raw_size)
    assert expected in reply.text
    assert screen in reply.text, "the current screen is shown again"
    assert "Your safety comes first" in (await user.say("1")).text, "still at the guide list"


async def test_pressing_a_choice_from_an_old_message_is_answered_not_obeyed(user: FakeUser) -> None:
    old_menu_choice = user.find("Legal information")
    await _at_guide_list(user)
    reply = await user.press_id(old_menu_choice.id)
    assert "from an earlier message" in reply.text
    assert "physical danger" in reply.text


async def test_answer_by_number_or_label(user: FakeUser) -> None:
    assert "physical danger" in (await user.say("3")).text
    assert "How can I help" in (await user.say("main MENU")).text


@pytest.mark.parametrize("typed", ["1", "١", "۱", "１", "①", "❶", "¹", "1.", "١)", "(1)", "𝟏"])
async def test_a_choice_number_in_any_script_picks_it(user: FakeUser, typed: str) -> None:
    """Arabic-Indic, Persian, fullwidth, circled (as guides number steps) and superscript."""
    await _at_guide_list(user)
    assert "Your safety comes first" in (await user.say(typed)).text


@pytest.mark.parametrize("typed", ["٩٩", "⑳", "²³", "½", "Ⅻ", "٣٣٣٣٣٣٣٣٣", "9" * 4000])
async def test_a_number_out_of_range_in_any_script_is_answered(user: FakeUser, typed: str) -> None:
    screen = await _at_guide_list(user)
    reply = await user.say(typed)
    assert "choose one of the options" in reply.text
    assert screen in reply.text


async def test_flood_is_slowed_with_one_notice_and_others_are_unaffected(
    app: App, make_user: Callable[..., FakeUser]
) -> None:
    app.flood = FloodGuard(rate=0.001, burst=5)
    flooder, other = make_user(platform_id="flood"), make_user(platform_id="calm")
    await flooder.say("/start")
    replies = [await app.handle(_msg(app, flooder, "x")) for _ in range(20)]
    answered = [r for r in replies if r]
    notices = [r for r in answered if "very fast" in r[0].text]
    assert len(notices) == 1
    assert len(answered) == 5
    assert "Which language" in (await other.say("/start")).text


def _msg(app: App, person: FakeUser, text: str) -> Incoming:
    return Incoming(
        user=app.pseudonyms.user(person.transport.name, person.platform_id),
        chat=person.chat,
        text=text,
    )


async def test_the_unique_start_of_a_label_picks_it(user: FakeUser) -> None:
    assert "choose one of the options" in (await user.say("le")).text, "too short to guess"
    assert "Which country" in (await user.say("legal")).text


async def test_a_failing_handler_answers_and_the_bot_goes_on(
    user: FakeUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr("bot.app.respond", broken)
    assert "went wrong on my side" in (await user.say("2")).text
    monkeypatch.undo()
    assert "physical danger" in (await user.say("3")).text, "the state was not damaged"


@pytest.mark.parametrize(
    ("choice", "expected"),
    [("opt:3", 3), ("opt:²", None), ("opt:٣", None), ("opt:", None), ("3", None), ("opt:-1", None)],
)
def test_choice_ids_are_read_as_ascii_positions_only(choice: str, expected: int | None) -> None:
    assert choice_index(choice, "opt:") == expected


@pytest.mark.parametrize("typed", ["1", "2", "3", "٣", "①", "Stop"])
async def test_a_number_typed_as_an_answer_is_the_answer(reporter: FakeUser, typed: str) -> None:
    """ "When did it happen?" → "3" is an answer, not the third button (Stop and delete)."""
    await start_report(reporter)
    await reporter.say("they followed me")
    reply = await reporter.say(typed)
    assert "Saved and locked" in reply.text
    assert "Question 3 of 7" in reply.text
    review = await reporter.press("Previous question")
    assert "Question 2 of 7" in review.text


async def test_a_whole_label_typed_on_an_answer_screen_still_picks_it(reporter: FakeUser) -> None:
    await start_report(reporter)
    assert "Question 2 of 7" in (await reporter.say("skip this question")).text
    assert "report was deleted" in (await reporter.say("Stop and delete this report")).text
