"""The metrics identify nobody: no series, label or value carries a user key, a
pseudonym, a platform id, a chat address or a case reference, and the set of series
does not grow with the number of people who write (a per-person series would let
whoever scrapes the endpoint follow one person's activity)."""

from __future__ import annotations

import pytest

from bot.app import App
from bot.conversation.flood import FloodGuard
from bot.delivery import Reason, Undelivered
from bot.health.metrics import CASE_STATES, Metrics
from bot.model import Reply
from tests.fakes import FakeTransport, FakeUser
from tests.metrics_text import samples
from tests.reporting import STAFF_ROOM, Team, staff_says, submit_report

PEOPLE = ("+254712345678", "@canaryuser:example.org", "987654321", "Zainab canary")
VOCABULARY = {
    "platform": {"fake"},
    "transport": {"fake"},
    "reason": {reason.value for reason in Reason},
    "state": {*CASE_STATES, "other"},
}


@pytest.fixture
async def scraped(team_app: tuple[App, Team], transport: FakeTransport) -> tuple[App, Metrics]:
    app, _ = team_app
    app.attach(transport)
    return app, Metrics(app.counts, app.outbox.failed, app.transports, app.db)


def _traces(app: App, person: FakeUser) -> set[str]:
    user = app.pseudonyms.user(person.transport.name, person.platform_id)
    return {person.platform_id, user.pseudonym, user.key, person.chat.address}


async def test_no_series_carries_anything_that_names_a_person_a_chat_or_a_case(
    scraped: tuple[App, Metrics], transport: FakeTransport
) -> None:
    app, metrics = scraped
    quiet = samples(await metrics.render())
    traces: set[str] = {STAFF_ROOM.address}
    people = [FakeUser(app, transport, platform_id) for platform_id in PEOPLE]
    case = await submit_report(people[0])
    traces.add(case)
    await staff_says(app, transport, "staff-alice", f"/ack {case}")
    app.flood = FloodGuard(rate=1e-6, burst=2)
    for person in people[1:]:
        traces |= _traces(app, person)
        for _ in range(3):  # the third is dropped
            await person.say("/start")
        transport.refuse[person.chat.address] = Undelivered(Reason.BLOCKED)
        key = app.pseudonyms.user(transport.name, person.platform_id).key
        await (await app.deliver(person.chat, Reply("notice"), person=key))
    traces |= _traces(app, people[0])

    text = await metrics.render()
    busy = samples(text)
    for trace in traces:
        assert trace not in text
        assert trace.lower() not in text.lower()
    assert busy.keys() == quiet.keys(), "the series grew with the people who wrote"
    for _, labels in busy:
        for name, value in labels:
            assert value in VOCABULARY[name], f"{name}={value!r} is not from a closed list"
    assert sum(v for (n, _), v in busy.items() if n == "hrd_bot_flood_drops_total") == 3
    assert sum(v for (n, _), v in busy.items() if n == "hrd_bot_deliveries_failed_total") == 3
