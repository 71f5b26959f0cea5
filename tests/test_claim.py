"""One-tap claiming and the staff queues, at the handler level over the fake transport.

A claim (`Incoming.claim_of`: the bot's alert a reaction or button press points at)
acknowledges the case and assigns it to the claimer in one audited transaction; of two
claims at once exactly one wins and both are told, by staff label only. The case is
found from the alert's recorded message id, never from anything in the claim. A claim
stops the escalation at once. The queues list only open cases, one screen at a time.
"""

from __future__ import annotations

import asyncio

import pytest

from bot.app import App
from bot.cases.claims import is_claim_reaction
from bot.crypto.bundle import open_bundle
from bot.delivery import rows
from bot.model import Incoming
from bot.safety.escalation import Escalation
from bot.storage.database import Connection
from handlers.queues import PAGE
from tests.fakes import FakeTransport, FakeUser
from tests.reporting import STAFF_ROOM, Team, staff_says, submit_report

pytestmark = pytest.mark.backends


def alert_id(transport: FakeTransport, case: str) -> str:
    """The fake transport's message id of the case's alert in the staff room."""
    for index, (chat, reply) in enumerate(transport.sent):
        if chat == STAFF_ROOM and reply.text.startswith(f"New case {case}"):
            return str(index + 1)
    raise AssertionError(f"no alert for {case}")


async def claim(app: App, who: str, alert: str, *, device: bool | None = True) -> str:
    user = app.pseudonyms.user("fake", who)
    msg = Incoming(user, STAFF_ROOM, verified_device=device, claim_of=alert)
    return "\n".join(reply.text for reply in await app.handle(msg))


async def claims(app: App, case: str) -> list[str]:
    return [e.action for e in await app.casework.store.audit(case) if e.action == "case.claim"]


async def test_two_claims_at_once_one_wins_and_both_are_told(
    team_app: tuple[App, Team], transport: FakeTransport, reporter: FakeUser
) -> None:
    app, team = team_app
    case = await submit_report(reporter)
    alert = alert_id(transport, case)
    said = await asyncio.gather(claim(app, "staff-alice", alert), claim(app, "staff-bruno", alert))
    won = [text for text in said if text.startswith(f"{case} claimed by ")]
    lost = [text for text in said if "is already claimed by" in text]
    assert len(won) == 1 and len(lost) == 1, said
    winner = won[0].removeprefix(f"{case} claimed by ").split(":")[0]
    loser = ({"Alice", "Bruno"} - {winner}).pop()
    assert lost[0] == f"{loser}: {case} is already claimed by {winner}."
    assert await claims(app, case) == ["case.claim"]
    view = await app.casework.case(case)
    assert (view.state, view.assignee) == ("assigned", winner)
    assert view.history[-1][1:] == (winner, "case.claim")
    for text in said:
        assert "reporter-1" not in text and "chat-" not in text, "never the reporter"
    opened = open_bundle(await app.casework.store.export_bundle(case), team.alice)
    assert opened.case.state == "assigned", "the claim is in the case's tamper-evident log"


async def test_a_claim_stops_the_escalation_at_once(
    team_app: tuple[App, Team], transport: FakeTransport, reporter: FakeUser
) -> None:
    app, _ = team_app
    case = await submit_report(reporter)
    assert (await claim(app, "staff-bruno", alert_id(transport, case))).startswith(case)
    later = Escalation.of(app.db, app.casework, clock=lambda: 10 * 86_400 + 2e9)
    assert await later.tick() == 0


async def test_a_claim_after_an_ack_assigns_and_one_after_an_assign_is_refused(
    team_app: tuple[App, Team], transport: FakeTransport, reporter: FakeUser
) -> None:
    app, _ = team_app
    case = await submit_report(reporter)
    await staff_says(app, transport, "staff-alice", f"/ack {case}")
    assert await claim(app, "staff-bruno", alert_id(transport, case)) == (
        f"{case} claimed by Bruno: acknowledged and assigned to them."
    )
    other = await submit_report(FakeUser(app, transport, "reporter-2"))
    await staff_says(app, transport, "staff-alice", f"/assign {other} Alice")
    assert await claim(app, "staff-bruno", alert_id(transport, other)) == (
        f"Bruno: {other} is already claimed by Alice."
    )
    assert await claims(app, other) == []


async def test_only_an_alert_of_this_room_claims_and_other_reactions_are_left_alone(
    team_app: tuple[App, Team], transport: FakeTransport, reporter: FakeUser
) -> None:
    app, _ = team_app
    case = await submit_report(reporter)
    reporters_message = str(
        next(i for i, (c, _) in enumerate(transport.sent) if c == reporter.chat) + 1
    )
    for alert in (reporters_message, "999999", "", case, f"New case {case}"):
        assert await claim(app, "staff-alice", alert) == "", alert
        assert await claim(app, "staff-alice", alert, device=False) == "", alert
        assert await claim(app, "reporter-1", alert) == "", alert
    await staff_says(app, transport, "staff-alice", f"/close {case} resolved")
    assert (await claim(app, "staff-alice", alert_id(transport, case))).startswith(
        "That case is closed"
    )
    assert await claims(app, case) == []


async def test_an_alert_of_an_open_case_outlives_the_outbox_week(
    team_app: tuple[App, Team], transport: FakeTransport, reporter: FakeUser
) -> None:
    app, _ = team_app
    kept = await submit_report(reporter)
    gone = await submit_report(FakeUser(app, transport, "reporter-2"))
    await staff_says(app, transport, "staff-alice", f"/close {gone} resolved")

    def age_and_prune(conn: Connection) -> None:
        conn.execute("UPDATE outbox SET updated_at = updated_at - ?", (8 * 86_400,))
        rows.prune(conn)

    await app.db.transaction(age_and_prune)
    assert await claim(app, "staff-bruno", alert_id(transport, gone)) == ""
    assert (await claim(app, "staff-bruno", alert_id(transport, kept))).startswith(
        f"{kept} claimed by Bruno"
    )


async def test_a_claim_outside_the_staff_room_does_nothing(
    team_app: tuple[App, Team], transport: FakeTransport, reporter: FakeUser
) -> None:
    app, _ = team_app
    case = await submit_report(reporter)
    user = app.pseudonyms.user("fake", "staff-alice")
    msg = Incoming(user, reporter.chat, verified_device=True, claim_of=alert_id(transport, case))
    assert list(await app.handle(msg)) == []
    assert await claims(app, case) == []


async def test_queues(
    team_app: tuple[App, Team], transport: FakeTransport, reporter: FakeUser
) -> None:
    app, _ = team_app
    cases = [await submit_report(FakeUser(app, transport, f"reporter-{n}")) for n in range(3)]
    for case in cases:
        await app.casework.route(case, urgency="normal")
    await claim(app, "staff-alice", alert_id(transport, cases[0]))
    await staff_says(app, transport, "staff-bruno", f"/escalate {cases[1]}")

    async def listed(text: str) -> list[str]:
        answer = await staff_says(app, transport, "staff-alice", text)
        return sorted((c for c in cases if c in answer), key=answer.index)

    assert await listed("/cases mine") == [cases[0]]
    assert await listed("/cases unacked") == [cases[1], cases[2]]
    assert await listed("/cases urgent") == [cases[1]]
    assert await listed("/cases") == [cases[1], cases[0], cases[2]]
    assert (await staff_says(app, transport, "staff-bruno", "/cases mine")) == (
        "No open cases in this list."
    )
    mine = await staff_says(app, transport, "staff-alice", "/cases mine")
    assert mine.startswith("Open cases assigned to you (1):")


async def test_the_country_queue_takes_only_a_real_country_code(
    team_app: tuple[App, Team], transport: FakeTransport, reporter: FakeUser
) -> None:
    app, _ = team_app
    case = await submit_report(reporter)
    await app.casework.route(case, country="EG")

    async def say(text: str) -> str:
        return await staff_says(app, transport, "staff-alice", text)

    assert case in await say("/cases country eg")
    listed = await say("/cases country EG")
    assert listed.startswith("Open cases in Egypt (1):") and " Egypt new" in listed
    assert await say("/cases country LB") == "No open cases in this list."
    for bad in ("/cases country", "/cases country XX", "/cases country EGY", "/cases country 12"):
        assert (await say(bad)).startswith("Give a two-letter country code"), bad
    assert (await say("/cases nonsense")).startswith("Lists: /cases, /cases mine")


async def test_a_long_queue_is_one_screen_with_more(
    team_app: tuple[App, Team], transport: FakeTransport
) -> None:
    app, _ = team_app
    count = PAGE + 3
    cases = [await submit_report(FakeUser(app, transport, f"r-{n}")) for n in range(count)]
    first = await staff_says(app, transport, "staff-alice", "/cases unacked")
    assert sum(c in first for c in cases) == PAGE
    assert first.endswith("3 more: /cases unacked 2")
    second = await staff_says(app, transport, "staff-alice", "/cases unacked 2")
    assert sum(c in second for c in cases) == 3 and "more:" not in second
    assert {c for c in cases if c in first + second} == set(cases)
    third = await staff_says(app, transport, "staff-alice", "/cases unacked 3")
    assert "this list has 2 page(s)" in third
    for odd in ("/cases unacked ²", "/cases unacked 0", "/cases unacked 99999"):
        assert (await staff_says(app, transport, "staff-alice", odd)).startswith("Lists:"), odd


async def test_the_whole_list_pages_too(
    team_app: tuple[App, Team], transport: FakeTransport
) -> None:
    app, _ = team_app
    cases = [await submit_report(FakeUser(app, transport, f"r-{n}")) for n in range(PAGE + 1)]
    first = await staff_says(app, transport, "staff-alice", "/cases")
    assert first.startswith(f"Open cases ({PAGE + 1}):") and first.endswith("1 more: /cases 2")
    second = await staff_says(app, transport, "staff-alice", "/cases 2")
    assert sum(c in second for c in cases) == 1


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("👍", True),
        ("👍\ufe0f", True),
        ("👍🏽", True),
        ("✋", True),
        ("✋\ufe0f", True),
        ("✋🏿", True),
        ("👎", False),
        ("👍👍", False),
        ("+1", False),
        ("", False),
        ("\ufe0f", False),
    ],
)
def test_which_reactions_claim(key: str, expected: bool) -> None:
    assert is_claim_reaction(key) is expected


async def test_each_staff_member_reads_answers_in_their_own_language(
    team_app: tuple[App, Team], transport: FakeTransport, reporter: FakeUser
) -> None:
    """The room stays in its language; Alice's answers follow her choice, Bruno's do not."""
    app, _ = team_app
    case = await submit_report(reporter)
    await app.casework.route(case, country="EG")
    offered = await staff_says(app, transport, "staff-alice", "/language")
    assert "fr (Français)" in offered and "ar (العربية)" in offered
    assert "en français" not in offered
    chosen = await staff_says(app, transport, "staff-alice", "/language fr")
    assert chosen.startswith("Les réponses à vos commandes sont désormais en Français")
    assert "Égypte" in await staff_says(app, transport, "staff-alice", "/cases country EG")
    assert "Egypt" in await staff_says(app, transport, "staff-bruno", "/cases country EG")
    await staff_says(app, transport, "staff-alice", "/language ar")
    arabic = await staff_says(app, transport, "staff-alice", "/cases")
    assert "مصر" in arabic and "\u2066" + case + "\u2069" in arabic, "case ids isolated in RTL"
    assert "جديدة" in arabic and "[critical]" not in arabic, "urgency and state in Arabic too"
    await staff_says(app, transport, "staff-alice", "/language en")
    assert "Egypt" in await staff_says(app, transport, "staff-alice", "/cases")


async def test_an_outsider_cannot_choose_a_language_in_the_staff_room(
    team_app: tuple[App, Team], transport: FakeTransport
) -> None:
    app, _ = team_app
    refused = await staff_says(app, transport, "not-staff", "/language fr")
    assert refused.startswith("Only the protection team can use this command")
