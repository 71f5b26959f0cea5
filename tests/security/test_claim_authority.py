"""A claim needs the same staff authority as a command.

- A reaction from a device the transport could not prove listed (`verified_device=False`:
  an unlisted Matrix login, or an unencrypted reaction) claims nothing; the room is told
  whose account it was, the case and its audit are unchanged, the log holds no ids.
- A claim from someone not on the staff list claims nothing, anywhere.
- On Telegram a Claim button's payload is an HMAC bound to the staff group: a forged
  payload, the group's payload pressed in another chat, or a non-staff member's press in
  the staff group claims nothing.
"""

from __future__ import annotations

import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.app import App
from bot.model import ChatRef, Incoming
from bot.transports.telegram.buttons import ButtonBook
from tests.fakes import FakeTransport, FakeUser
from tests.reporting import Team, submit_report
from tests.telegram_emulator import Emulator
from tests.test_claim import alert_id, claim, claims
from tests.test_telegram_claim import Group, claim_data, reported
from tests.test_telegram_claim import claims as telegram_claims

pytestmark = pytest.mark.backends

pytest_plugins = ["tests.test_telegram_claim"]


async def _unchanged(app: App, case: str) -> tuple[object, ...]:
    view = await app.casework.case(case)
    audit = await app.casework.store.audit(case)
    return view.state, view.assignee, len(audit)


async def test_a_reaction_from_an_unlisted_device_claims_nothing(
    team_app: tuple[App, Team],
    transport: FakeTransport,
    reporter: FakeUser,
    caplog: pytest.LogCaptureFixture,
) -> None:
    app, _ = team_app
    caplog.set_level(logging.DEBUG)
    case = await submit_report(reporter)
    alert = alert_id(transport, case)
    before = await _unchanged(app, case)
    answer = await claim(app, "staff-alice", alert, device=False)
    assert answer.startswith("A claim came from an unlisted device of Alice")
    assert case not in answer
    assert await _unchanged(app, case) == before
    assert await claims(app, case) == []
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "did not come from a listed staff device" in logged
    pseudonym = app.pseudonyms.user("fake", "staff-alice").pseudonym
    for secret in (case, pseudonym, "staff-alice", "Alice"):
        assert secret not in logged


async def test_a_claim_from_outside_the_staff_list_claims_nothing(
    team_app: tuple[App, Team], transport: FakeTransport, reporter: FakeUser
) -> None:
    app, _ = team_app
    case = await submit_report(reporter)
    alert = alert_id(transport, case)
    before = await _unchanged(app, case)
    answer = await claim(app, "reporter-1", alert, device=True)
    assert answer == "Only the protection team can claim cases. This was recorded."
    elsewhere = ChatRef("fake", "another-group", private=False)
    user = app.pseudonyms.user("fake", "staff-alice")
    msg = Incoming(user, elsewhere, verified_device=True, claim_of=alert)
    assert list(await app.handle(msg)) == []
    assert await _unchanged(app, case) == before


async def test_forged_and_non_staff_presses_claim_nothing(emu: Emulator, group: Group) -> None:
    case, alert = await reported(emu, group)
    app, data = group.bot.app, claim_data(alert)
    before = len(emu.calls("answerCallbackQuery"))
    forged = ["K" + "A" * 16, "K" + data[1:][::-1], data + "x", "Kclaim"]
    for payload in forged:
        await group.alice.press_data(alert, payload)
    await group.mallory.press_data(alert, data)
    refused = (await group.mallory.answer(count=1)).text
    assert refused == "Only the protection team can claim cases. This was recorded."
    (elsewhere,) = emu.group("Somewhere else", "Alice")
    await elsewhere.send("/start")
    pointer = (await elsewhere.answer(count=1)).last
    await elsewhere.press_data(pointer, data)
    dm = emu.user("Alice")
    await dm.send("/start")
    screen = (await dm.answer()).last
    await dm.press_data(screen, data)
    await emu.wait_for_call("answerCallbackQuery", after=before + len(forged) + 2)
    assert await telegram_claims(app, case) == []
    assert (await app.casework.case(case)).state == "new"
    texts = [m.text or "" for m in group.alice.from_bot()]
    assert not any("claimed by" in t for t in texts)


BOOK = ButtonBook(b"k" * 32)
STAFF_GROUP = "-1001234"


@given(st.text(max_size=70))
def test_no_payload_but_the_groups_own_claims_in_it(payload: str) -> None:
    real = BOOK.claim_payload(STAFF_GROUP)
    assert BOOK.claim(STAFF_GROUP, payload) is (payload == real)


@given(st.text(min_size=1, max_size=20).filter(lambda chat: chat != STAFF_GROUP))
def test_a_groups_claim_payload_claims_nowhere_else(chat: str) -> None:
    assert not BOOK.claim(chat, BOOK.claim_payload(STAFF_GROUP))
    assert BOOK.is_claim(BOOK.claim_payload(chat))
