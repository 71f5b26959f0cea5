"""Staff authority needs a listed device, not just a staff account.

- A message whose device the transport could not prove listed (`verified_device=False`:
  a Matrix login that is not in `MATRIX_STAFF_DEVICE_KEYS`, or an unencrypted event)
  is refused for every staff command; the room is told whose account it was and
  nothing of the command; the case and its audit are unchanged; the log holds no ids.
- A platform with no device identity (`verified_device=None`: Telegram) may by default
  only list, show, acknowledge and claim; every other command needs the operator's
  `HRD_BOT_TELEGRAM_STAFF_ACTIONS=all`. Shown here with the App and on the emulator.
- The Matrix check itself (`sent_from_listed_device`) on nio's device store: only a
  session received straight from a listed device of the sender counts. The whole path
  runs on Synapse in tests/matrix/test_matrix_staff_devices.py.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import pytest
from nio.crypto import DeviceStore, OlmDevice

from bot.app import App
from bot.config import ConfigError, Settings
from bot.content.library import Library
from bot.crypto.keys import PrivateKey
from bot.model import ChatRef, Incoming
from bot.transports.matrix.inbound import Sealed
from bot.transports.matrix.trust import sent_from_listed_device
from handlers.staff import StaffScope
from tests.conftest_storage import OpenDatabase
from tests.fakes import FakeTransport, FakeUser
from tests.reporting import STAFF_ROOM, Team, room_messages, staff_key, staff_says, submit_report
from tests.telegram_emulator import Emulator
from tests.telegram_emulator.harness import running_bot

pytestmark = pytest.mark.backends
CANARY = "CANARY-IMPOSTOR meet me at the bus station"
UNLISTED = "A staff command came from an unlisted device of Alice"
TRIAGE_ONLY = "Telegram cannot show which device sent it"
EVERY_COMMAND = (
    f"/reply {{case}} {CANARY}",
    f"/note {{case}} {CANARY}",
    f"/close {{case}} {CANARY}",
    "/ack {case}",
    "/assign {case} Alice",
    "/assign {case} Bruno",
    "/escalate {case}",
    "/export {case}",
    "/case {case}",
    "/cases",
)
NOT_TRIAGE = (*EVERY_COMMAND[:3], "/assign {case} Bruno", "/escalate {case}", "/export {case}")


async def _team(
    open_database: OpenDatabase, tmp_path: Path, library: Library, scope: StaffScope
) -> App:
    db = await open_database(scope)
    app = await App.open(
        db,
        library,
        staff_rooms=(STAFF_ROOM,),
        exports=tmp_path / "exports",
        staff_without_device=scope,
    )
    store = app.casework.store
    await store.add_staff("Alice", [staff_key(app, "staff-alice")], PrivateKey.generate().public)
    await store.add_staff("Bruno", [staff_key(app, "staff-bruno")], PrivateKey.generate().public)
    await store.set_recovery(PrivateKey.generate().public)
    return app


@pytest.fixture
async def triage(
    open_database: OpenDatabase, tmp_path: Path, library: Library, transport: FakeTransport
) -> AsyncIterator[tuple[App, str]]:
    """A team App with the default policy, and an open case a reporter just sent."""
    app = await _team(open_database, tmp_path, library, "triage")
    app.attach(transport)
    case = await submit_report(FakeUser(app, transport, "reporter-1"))
    try:
        yield app, case
    finally:
        await app.outbox.close()
        await app.db.close()


async def _says(app: App, who: str, text: str, device: bool | None) -> str:
    msg = Incoming(app.pseudonyms.user("fake", who), STAFF_ROOM, text=text, verified_device=device)
    replies = await app.handle(msg)
    await app.outbox.drain()
    return "\n".join(r.text for r in replies)


async def _state(app: App, case: str) -> tuple[object, ...]:
    view = await app.casework.case(case)
    audit = await app.casework.store.audit(case)
    return view.state, view.urgency, view.assignee, tuple((e.actor, e.action) for e in audit)


async def test_an_unlisted_device_of_a_staff_account_is_refused_every_command(
    triage: tuple[App, str], transport: FakeTransport, caplog: pytest.LogCaptureFixture
) -> None:
    app, case = triage
    caplog.set_level(logging.DEBUG)
    before, sent = await _state(app, case), len(transport.sent)
    for command in EVERY_COMMAND:
        answer = await _says(app, "staff-alice", command.format(case=case), device=False)
        assert answer.startswith(UNLISTED) and "not carried out" in answer, (command, answer)
        assert CANARY not in answer and case not in answer, "no content of the command"
    assert await _state(app, case) == before, "the case and its audit are unchanged"
    assert len(transport.sent) == sent, "nothing reached the reporter or any room"
    pseudonym = app.pseudonyms.user("fake", "staff-alice").pseudonym
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "did not come from a listed staff device" in logged
    for secret in (CANARY, case, pseudonym, "staff-alice", "Alice"):
        assert secret not in logged


async def test_the_listed_device_still_acts_and_outsiders_are_refused_as_before(
    triage: tuple[App, str],
) -> None:
    app, case = triage
    assert "Only the protection team" in await _says(app, "mallory", f"/ack {case}", False)
    assert "acknowledged" in await _says(app, "staff-alice", f"/ack {case}", True)
    assert "sealed" in await _says(app, "staff-alice", f"/note {case} checked", True)
    assert "closed" in await _says(app, "staff-alice", f"/close {case} safe", True)
    actions = [e.action for e in await app.casework.store.audit(case)]
    assert actions[-3:] == ["case.acknowledge", "case.note", "case.close"]


async def test_without_device_identity_only_triage_by_default(
    triage: tuple[App, str], transport: FakeTransport
) -> None:
    app, case = triage
    sent = len(transport.sent)
    for command in NOT_TRIAGE:
        typed = command.format(case=case)
        answer = await _says(app, "staff-alice", typed, device=None)
        assert answer.startswith(typed.split()[0] + " was not carried out"), answer
        assert TRIAGE_ONLY in answer and "HRD_BOT_TELEGRAM_STAFF_ACTIONS=all" in answer
        assert CANARY not in answer
    assert len(transport.sent) == sent
    assert case in await _says(app, "staff-alice", "/cases", None)
    assert "History:" in await _says(app, "staff-alice", f"/case {case}", None)
    assert "acknowledged" in await _says(app, "staff-alice", f"/ack {case}", None)
    assert "assigned" in await _says(app, "staff-alice", f"/assign@bot {case} alice", None)
    view = await app.casework.case(case)
    assert (view.state, view.assignee) == ("assigned", "Alice"), "claimed, by herself"
    actions = [e.action for e in await app.casework.store.audit(case)]
    assert actions[-2:] == ["case.acknowledge", "case.assign"]
    assert "case.note" not in actions and "case.close" not in actions


async def test_the_operator_can_allow_every_command_without_device_identity(
    open_database: OpenDatabase, tmp_path: Path, library: Library, transport: FakeTransport
) -> None:
    app = await _team(open_database, tmp_path, library, "all")
    app.attach(transport)
    try:
        case = await submit_report(FakeUser(app, transport, "reporter-1"))
        assert "sealed" in await _says(app, "staff-alice", f"/note {case} checked", None)
        assert "assigned" in await _says(app, "staff-alice", f"/assign {case} Bruno", None)
        assert "closed" in await _says(app, "staff-alice", f"/close {case} safe", None)
        refused = await _says(app, "staff-alice", "/cases", False)
        assert refused.startswith(UNLISTED), "an unlisted device stays refused"
    finally:
        await app.outbox.close()
        await app.db.close()


def test_the_setting_is_declared_defaults_to_triage_and_rejects_other_values() -> None:
    assert Settings.from_env({}).telegram_staff_actions == "triage"
    allowed = Settings.from_env({"HRD_BOT_TELEGRAM_STAFF_ACTIONS": "all"})
    assert allowed.telegram_staff_actions == "all"
    with pytest.raises(ConfigError, match="HRD_BOT_TELEGRAM_STAFF_ACTIONS"):
        Settings.from_env({"HRD_BOT_TELEGRAM_STAFF_ACTIONS": "everything"})


async def test_a_telegram_staff_group_by_default_triages_only(
    emu: Emulator, tmp_path: Path
) -> None:
    """Through the real Telegram transport: its messages carry no device identity."""
    (alice,) = emu.group("Protection team", "Alice", supergroup=True)
    room = f"telegram:{alice.chat.id}"
    settings = Settings.from_env({"HRD_BOT_DATA_DIR": str(tmp_path), "HRD_BOT_STAFF_ROOMS": room})
    async with running_bot(
        emu,
        tmp_path / "x.db",
        staff_rooms=settings.chats("HRD_BOT_STAFF_ROOMS"),
        staff_without_device=settings.telegram_staff_actions,
    ) as running:
        identity = running.app.pseudonyms.user("telegram", str(alice.person.id)).key
        await running.app.casework.store.add_staff(
            "Alice", [identity], PrivateKey.generate().public
        )
        await alice.send(f"/reply HRD-2222-2222 {CANARY}")
        refused = (await alice.answer(count=1)).text or ""
        assert refused.startswith("/reply was not carried out") and TRIAGE_ONLY in refused
        assert CANARY not in refused
        await alice.send("/cases")
        assert "No open cases." in ((await alice.answer(count=1)).text or "")
        await alice.send("/note HRD-2222-2222 x")
        assert TRIAGE_ONLY in ((await alice.answer(count=1)).text or "")


@dataclass
class _Session:
    ed25519: str
    forwarding_chain: list[str] = field(default_factory=list)


@dataclass
class _Olm:
    """The two parts of nio's olm machine the check reads: sessions and known devices."""

    sessions: dict[tuple[str, str, str], _Session] = field(default_factory=dict)
    device_store: DeviceStore = field(default_factory=DeviceStore)

    @property
    def inbound_group_store(self) -> _Olm:
        return self

    def get(self, room_id: str, sender_key: str, session_id: str) -> _Session | None:
        return self.sessions.get((room_id, sender_key, session_id))


STAFF_ID, ROOM = "@alice:example.org", "!staff:example.org"
LISTED = frozenset({"ed-listed"})


def _client(session: _Session | None, device_ed25519: str = "ed-listed") -> SimpleNamespace:
    olm = _Olm()
    olm.device_store.add(
        OlmDevice(STAFF_ID, "PHONE", {"ed25519": device_ed25519, "curve25519": "curve-phone"})
    )
    if session is not None:
        olm.sessions[(ROOM, "curve-phone", "s1")] = session
    return SimpleNamespace(olm=olm)


@pytest.mark.parametrize(
    ("client", "sender", "sealed", "obeyed"),
    [
        (_client(_Session("ed-listed")), STAFF_ID, Sealed("curve-phone", "s1"), True),
        (_client(_Session("ed-listed")), STAFF_ID, None, False),  # not encrypted
        (_client(_Session("ed-listed", ["curve-x"])), STAFF_ID, Sealed("curve-phone", "s1"), False),
        (_client(_Session("ed-other")), STAFF_ID, Sealed("curve-phone", "s1"), False),
        (_client(_Session("ed-new"), "ed-new"), STAFF_ID, Sealed("curve-phone", "s1"), False),
        (
            _client(_Session("ed-listed")),
            "@mallory:example.org",
            Sealed("curve-phone", "s1"),
            False,
        ),
        (_client(_Session("ed-listed")), STAFF_ID, Sealed("curve-unknown", "s1"), False),
        (_client(None), STAFF_ID, Sealed("curve-phone", "s1"), False),
        (SimpleNamespace(olm=None), STAFF_ID, Sealed("curve-phone", "s1"), False),
    ],
    ids=[
        "listed device, its own session",
        "unencrypted event",
        "forwarded session",
        "session signed by another key",
        "a new login, not listed",
        "a listed key under another account",
        "unknown sender key",
        "unknown session",
        "encryption off",
    ],
)
def test_the_matrix_device_check(
    client: SimpleNamespace, sender: str, sealed: Sealed | None, obeyed: bool
) -> None:
    assert sent_from_listed_device(client, ROOM, sender, sealed, LISTED) is obeyed


async def test_staff_commands_from_others_or_elsewhere_are_refused(
    team_app: tuple[App, Team], reporter: FakeUser, transport: FakeTransport
) -> None:
    app, _ = team_app
    case = await submit_report(reporter)
    refused = await staff_says(
        app, transport, "infiltrator", f"/reply {case} send me your location"
    )
    assert "Only the protection team" in refused
    assert room_messages(transport, reporter.chat)[-1].text.startswith("Sent."), "nothing relayed"
    elsewhere = await staff_says(
        app, transport, "staff-alice", f"/ack {case}", room=ChatRef("fake", "alice-dm")
    )
    assert "only in the protection team's room" in elsewhere
    forged = await staff_says(app, transport, "staff-alice", "/reply HRD-2222-2222 hello")
    assert "no such case" in forged
    assert await staff_says(app, transport, "infiltrator", "just chatting") == ""
