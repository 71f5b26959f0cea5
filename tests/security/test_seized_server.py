"""The whole server seized after a scripted session: no canary on disk, in the DB or in logs.

Reporters answer, staff note and reply, all with canary strings, through the real App.
Then everything on the server (data dir with database, WAL and exports, configuration,
every log line at DEBUG) is searched raw and, for the database, decrypted with its key.
The case still opens with a staff key and the recovery key, not a removed member's.
"""

from __future__ import annotations

import logging
import secrets
from pathlib import Path

import pytest

from bot.app import App
from bot.content.library import Library
from bot.crypto.bundle import Bundle, open_bundle
from bot.crypto.errors import CryptoError
from bot.crypto.keys import PrivateKey
from bot.delivery import Reason, Undelivered
from bot.storage import Database, DbKey
from tests.fakes import FakeTransport, FakeUser
from tests.reporting import STAFF_ROOM, staff_key, staff_says
from tests.security.test_seized_bundles import _encodings, _keyed_view, _raw_view

CANARIES = {
    "what": "CANARY-E2E-what-7f3c soldiers came to the office",
    "who": "Nadia Canary Haddad",
    "contact": "+20 100 555 0142 after 9pm",
    "note": "CANARY-E2E-note-b1d0",
    "reply": "CANARY-E2E-reply-44aa",
    "outcome": "CANARY-E2E-outcome-relocated",
}


async def _session(app: App, transport: FakeTransport) -> str:
    person = FakeUser(app, transport, "seized-reporter")
    await person.say("/start")
    await person.press("English")
    await person.press("Report a risk")
    await person.press("Start the report")
    await person.say(CANARIES["what"])
    await person.say("last night")
    await person.say("Egypt")
    await person.say(CANARIES["who"])
    await person.press("Within the next few days")
    await person.say(CANARIES["contact"])
    await person.press("No, only the team")
    sent = await person.press("Send the report")
    case = next(w for w in sent.text.split() if w.startswith("HRD-")).rstrip(".")
    for command in (
        f"/ack {case}",
        f"/note {case} {CANARIES['note']}",
        f"/reply {case} {CANARIES['reply']}",
        f"/export {case}",
        f"/close {case} {CANARIES['outcome']}",
    ):
        await staff_says(app, transport, "staff-a", command)
    return case


@pytest.mark.parametrize("queued", [False, True], ids=["delivered", "queued"])
async def test_nothing_a_reporter_or_staff_said_is_recoverable_from_the_server(
    tmp_path: Path,
    library: Library,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    queued: bool,
) -> None:
    """`queued`: the staff room and the reporter cannot be reached, so the alert, the
    answers for the room and the team's reply are all still in the outbox when the
    server is taken."""
    caplog.set_level(logging.DEBUG)
    data = tmp_path / "data"
    db_key = secrets.token_bytes(32)
    config = tmp_path / "hrd-bot.env"
    config.write_text(f"HRD_BOT_DATA_DIR={data}\nHRD_BOT_STAFF_ROOMS=fake:staff-room\n")
    staff, removed, recovery = PrivateKey.generate(), PrivateKey.generate(), PrivateKey.generate()

    db = await Database.open(data / "hrd-bot.db", DbKey(db_key.hex()))
    app = await App.open(db, library, staff_rooms=(STAFF_ROOM,), exports=data / "exports")
    transport = FakeTransport()
    if queued:
        monkeypatch.setattr("bot.cases.casework.TOLD_WITHIN", 0.05)
        down = Undelivered(Reason.UNREACHABLE, transient=True)
        transport.refuse = {STAFF_ROOM.address: down, "chat-seized-reporter": down}
        transport.settle = False
    app.attach(transport)
    store = app.casework.store
    await store.add_staff("Probe-Label-5e1d", [staff_key(app, "staff-a")], staff.public)
    gone = await store.add_staff("B", [staff_key(app, "staff-b")], removed.public)
    await store.set_recovery(recovery.public)
    await store.remove_staff(gone.id)
    case = await _session(app, transport)
    relayed = any(CANARIES["reply"] in r.text for _, r in transport.sent)
    assert relayed != queued, "the reply was relayed, or is still queued"
    if queued:
        states = await db.run(lambda c: c.execute("SELECT kind, state FROM outbox").fetchall())
        assert {("alert", "queued"), ("answers", "queued"), ("reply", "queued")} <= set(states)

    server = _raw_view(data) + config.read_bytes() + "\n".join(caplog.messages).encode()
    for view in (server, _keyed_view(data, db_key)):
        for canary in CANARIES.values():
            for encoded in _encodings(canary):
                assert encoded not in view, f"{canary!r} is recoverable"
    assert b"Probe-Label-5e1d" in _keyed_view(data, db_key), "the keyed view sees plaintext"
    assert b"Probe-Label-5e1d" not in server
    await app.outbox.close()
    await db.close()

    bundle = Bundle.from_json((data / "exports" / f"{case}.bundle.json").read_text())
    for key in (staff, recovery):
        opened = {item.field: item.data.decode() for item in open_bundle(bundle, key).items}
        assert opened["answer.what"] == CANARIES["what"]
        assert opened["note"] == CANARIES["note"]
        assert opened["reply"] == CANARIES["reply"]
    with pytest.raises(CryptoError):
        open_bundle(bundle, removed)
