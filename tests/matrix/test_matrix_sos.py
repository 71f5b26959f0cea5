"""SOS over Matrix on a real Synapse: `/sos` from an encrypted DM, a one-line message and
an `m.location` event. The encrypted all-staff room gets the alert and both, quoted;
the unencrypted staff room gets the alert and is told a location was shared, never
where."""

from __future__ import annotations

import re

from nio import RoomSendResponse

from bot.crypto.bundle import open_bundle
from tests.matrix.activist import Activist
from tests.matrix.fixtures import Bot
from tests.matrix.staff import Desk
from tests.matrix.test_matrix_reports import WITHHELD

GEO = "geo:4.6097,-74.0817;u=20"
WORDS = "CANARY-SOS a car without plates at the door"


async def test_sos_with_a_message_and_a_location_over_matrix(
    bot: Bot, desk: Desk, activist: Activist
) -> None:
    assert bot.app is not None
    dm = await activist.open_dm()
    menu = await dm.pick("English")
    assert re.search(r"^1\. I am in danger now$", menu, re.MULTILINE), menu
    assert "Send an urgent alert" in await dm.say("/sos")
    raised = await dm.pick("Yes, alert the team now")
    found = re.search(r"HRD-[0-9A-Z]{4}-[0-9A-Z]{4}", raised)
    assert found, raised
    case = found.group(0)
    assert f"The protection team has your alert now (case {case})" in raised
    assert "send your location" in raised

    alert = await desk.room.reply()
    assert alert.startswith(f"🆘 SOS · new case {case}")
    assert await desk.plain.reply() == alert

    told = await dm.say(WORDS)
    assert "Your message is sealed, and the team has been told it came." in told
    assert (
        await desk.room.reply()
        == f"🆘 SOS {case}: the reporter added a message (sealed to the case)."
    )
    relayed = await desk.room.reply()
    assert relayed.splitlines()[1:] == [f"> {WORDS}"]

    content = {"msgtype": "m.location", "body": "Location", "geo_uri": GEO}
    sent = await activist.client.room_send(
        dm.room_id, "m.room.message", content, ignore_unverified_devices=True
    )
    assert isinstance(sent, RoomSendResponse), sent
    located = await dm.reply()
    assert "Your location is sealed, and the team has been told it came." in located
    assert "shared a location" in await desk.room.reply()
    assert "> geo:4.609700,-74.081700;u=20" in await desk.room.reply()

    plain = [await desk.plain.reply() for _ in range(4)]  # each relay is withheld there
    assert "added a message" in plain[0] and WITHHELD in plain[1]
    assert "shared a location" in plain[2] and WITHHELD in plain[3]
    assert not any("CANARY" in text or "4.6097" in text for text in plain)

    bundle = await bot.app.casework.store.export_bundle(case)
    opened = {i.field: i.data for i in open_bundle(bundle, desk.key).items}
    assert opened["sos.message"] == WORDS.encode()
    assert opened["sos.location"] == b"geo:4.609700,-74.081700;u=20"
    meta = await bot.app.casework.store.case(case)
    assert meta.urgency == "critical"
