"""A flooder: one notice per burst, and dropped messages cost no storage work at all."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from bot.app import App
from bot.conversation.flood import Dropped, FloodGuard
from bot.model import Incoming
from bot.storage import Database
from tests.fakes import FakeUser


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_sustained_flood_is_warned_once_not_at_every_refilled_token() -> None:
    clock = Clock()
    guard = FloodGuard(rate=2.0, burst=30, quiet=10.0, clock=clock)
    verdicts = []
    for _ in range(600):  # ten messages a second for a minute
        verdicts.append(guard.check("flooder"))
        clock.now += 0.1
    assert sum(warn for _, warn in verdicts) == 1
    let_through = sum(allowed for allowed, _ in verdicts)
    assert 30 + 2 * 59 <= let_through <= 30 + 2 * 60 + 1, "the rate still lets some through"


def test_a_new_burst_after_a_quiet_window_is_warned_again() -> None:
    clock = Clock()
    guard = FloodGuard(rate=2.0, burst=5, quiet=10.0, clock=clock)
    warnings = 0
    for burst in range(3):
        for _ in range(50):
            warnings += guard.check("flooder")[1]
            clock.now += 0.01
        clock.now += 9.0 if burst == 0 else 10.0
    assert warnings == 2, "a 9 s pause does not end the flood; a 10 s one does"


def test_others_are_not_warned_or_slowed_by_a_flooder() -> None:
    clock = Clock()
    guard = FloodGuard(rate=1.0, burst=3, clock=clock)
    for _ in range(20):
        guard.check("flooder")
    assert guard.check("calm") == (True, False)


async def test_dropped_messages_do_no_storage_work_and_say_so(
    app: App, make_user: Callable[..., FakeUser], monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    app.flood = FloodGuard(rate=2.0, burst=5, clock=clock)
    flooder = make_user(platform_id="flood")
    await flooder.say("/start")
    await flooder.press("Español")
    trips: list[str] = []
    original_run, original_transaction = Database.run, Database.transaction

    async def run(self: Database, work: Any) -> Any:
        trips.append("run")
        return await original_run(self, work)

    async def transaction(self: Database, work: Any) -> Any:
        trips.append("transaction")
        return await original_transaction(self, work)

    monkeypatch.setattr(Database, "run", run)
    monkeypatch.setattr(Database, "transaction", transaction)
    user = app.pseudonyms.user(flooder.transport.name, flooder.platform_id)
    app.sessions.dropped([user.key])  # the notice's language must come from somewhere cheap
    answers, costs = [], []
    for _ in range(300):
        before = len(trips)
        answers.append(await app.handle(Incoming(user, flooder.chat, text="x", raw_size=1)))
        costs.append(len(trips) - before)
        clock.now += 0.1
    dropped = [(a, cost) for a, cost in zip(answers, costs, strict=True) if isinstance(a, Dropped)]
    handled = [a for a in answers if not isinstance(a, Dropped)]
    notices = [reply for a, _ in dropped for reply in a]
    assert len(notices) == 1 and "muy rápido" in notices[0].text, "one notice, in their language"
    assert len(handled) <= 5 + 2 * 30 + 1 and all(len(a) == 1 for a in handled)
    assert [cost for a, cost in dropped if not a] == [0] * (len(dropped) - 1), "no storage work"
    assert [cost for a, cost in dropped if a] in ([0], [1]), "at most a read for the notice"
