"""Claiming from a Telegram staff group, end to end on the emulator, real SQLCipher.

The alert in the staff group carries a Claim button. Two staff members pressing it at
once: exactly one claim in the audit trail, the case acknowledged and assigned to the
winner, and the group told both outcomes by staff label. The default staff policy
(`triage`) allows it: claiming is a triage action. The button stays good under newer
messages in the group.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.app import App
from bot.crypto.keys import PrivateKey
from bot.model import ChatRef
from bot.storage.database import Connection
from tests.telegram_emulator import Emulator, SimUser
from tests.telegram_emulator.harness import RunningBot, eventually, running_bot
from tests.telegram_emulator.world import Message
from tests.test_telegram_reports import finish_report, start_report


@dataclass
class Group:
    """The staff group: Alice and Bruno are staff, Mallory is not."""

    bot: RunningBot
    alice: SimUser
    bruno: SimUser
    mallory: SimUser


@pytest.fixture
async def group(emu: Emulator, tmp_path: Path) -> AsyncIterator[Group]:
    alice, bruno, mallory = emu.group("Protection team", "Alice", "Bruno", "Mallory")
    room = ChatRef("telegram", str(alice.chat.id), private=False)
    async with running_bot(emu, tmp_path / "claim.db", staff_rooms=(room,)) as running:
        app = running.app
        for member in (alice, bruno):
            identity = app.pseudonyms.user("telegram", str(member.person.id)).key
            name = member.person.first_name
            await app.casework.store.add_staff(name, [identity], PrivateKey.generate().public)
        await app.casework.store.set_recovery(PrivateKey.generate().public)
        yield Group(running, alice, bruno, mallory)


async def delivered(app: App, case: str) -> bool:
    """The alert's outbox row has settled, with its message id recorded."""

    def read(conn: Connection) -> bool:
        row = conn.execute(
            "SELECT 1 FROM outbox WHERE case_id = ? AND kind = 'alert' AND state = 'delivered'",
            (case,),
        ).fetchone()
        return row is not None

    return await app.db.run(read)


async def reported(emu: Emulator, group: Group) -> tuple[str, Message]:
    """A case sent by an activist, and its alert in the staff group (once on record)."""
    case = await start_report_and_send(emu.user("Activist"))
    alert = next(m for m in group.alice.from_bot() if case in (m.text or ""))
    await eventually(lambda: delivered(group.bot.app, case))
    return case, alert


async def start_report_and_send(activist: SimUser) -> str:
    await start_report(activist)
    return await finish_report(activist)


def claim_data(alert: Message) -> str:
    (button,) = alert.buttons
    assert button["text"] == "Claim"
    return str(button["callback_data"])


async def claims(app: App, case: str) -> list[tuple[str, str]]:
    audit = await app.casework.store.audit(case)
    return [(e.actor, e.action) for e in audit if e.action == "case.claim"]


async def test_two_presses_at_once_make_one_claim_and_both_are_told(
    emu: Emulator, group: Group
) -> None:
    case, alert = await reported(emu, group)
    data = claim_data(alert)
    await group.alice.press_data(alert, data)
    await group.bruno.press_data(alert, data)
    answers = (await group.alice.answer(count=2)).messages
    texts = sorted(m.text or "" for m in answers)
    app = group.bot.app
    winner = (await app.casework.case(case)).assignee
    assert winner in ("Alice", "Bruno")
    loser = ({"Alice", "Bruno"} - {winner}).pop()
    assert texts == sorted(
        [
            f"{case} claimed by {winner}: acknowledged and assigned to them.",
            f"{loser}: {case} is already claimed by {winner}.",
        ]
    )
    assert len(await claims(app, case)) == 1
    view = await app.casework.case(case)
    assert view.state == "assigned"
    assert all("Activist" not in t for t in texts), "never the reporter"


async def test_the_button_still_claims_after_newer_messages(emu: Emulator, group: Group) -> None:
    case, alert = await reported(emu, group)
    await group.alice.send("/cases")
    await group.alice.answer(count=1)
    await group.bruno.press_data(alert, claim_data(alert))
    answer = (await group.bruno.answer(count=1)).text
    assert answer == f"{case} claimed by Bruno: acknowledged and assigned to them."
    assert len(await claims(group.bot.app, case)) == 1


async def test_the_button_claims_after_a_restart(emu: Emulator, tmp_path: Path) -> None:
    alice, activist = emu.group("Protection team", "Alice")[0], emu.user("Activist")
    room = ChatRef("telegram", str(alice.chat.id), private=False)
    path = tmp_path / "restart.db"
    async with running_bot(emu, path, staff_rooms=(room,)) as running:
        app = running.app
        identity = app.pseudonyms.user("telegram", str(alice.person.id)).key
        await app.casework.store.add_staff("Alice", [identity], PrivateKey.generate().public)
        await app.casework.store.set_recovery(PrivateKey.generate().public)
        case = await start_report_and_send(activist)
        await eventually(lambda: delivered(app, case))
    alert = next(m for m in alice.from_bot() if case in (m.text or ""))
    async with running_bot(emu, path, staff_rooms=(room,)) as running:
        await alice.press_data(alert, claim_data(alert))
        answer = (await alice.answer(count=1)).text
        assert answer == f"{case} claimed by Alice: acknowledged and assigned to them."
        assert len(await claims(running.app, case)) == 1
