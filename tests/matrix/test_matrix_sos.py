"""SOS over Matrix on a real Synapse: `/sos` from an encrypted DM, a one-line message and
an `m.location` event. The encrypted all-staff room gets the alert and both, quoted;
the unencrypted staff room gets the alert and is told a location was shared, never
where. Under a flood from the same person and from others, the SOS and its location go
ahead of everything queued for the staff room.

The bot's client reaches Synapse through `FaultyProxy`, which passes everything on
unless a test holds a room back (then the room's sends fail with a 503 until released).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from nio import RoomSendResponse

from bot.content.library import Library
from bot.crypto.bundle import open_bundle
from bot.delivery.outbox import Outgoing
from bot.model import Reply
from tests.matrix.activist import Activist, Chat
from tests.matrix.faulty_proxy import FaultyProxy
from tests.matrix.fixtures import Bot, MakeActivist, unique
from tests.matrix.homeserver import Synapse
from tests.matrix.staff import Desk
from tests.matrix.test_matrix_delivery import POLICY
from tests.matrix.test_matrix_reports import WITHHELD

GEO = "geo:4.6097,-74.0817;u=20"
WORDS = "CANARY-SOS a car without plates at the door"
QUEUED = 20
"""Notices queued for the encrypted staff room before the SOS, held there meanwhile."""
FLOOD = 40
"""Messages from each person before the SOS: past the flood guard's burst of 30."""
OTHERS = 3
HELD = 10**6


@pytest.fixture
async def proxy(synapse: Synapse) -> AsyncIterator[FaultyProxy]:
    running = await FaultyProxy(synapse.url).start()
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture
async def bot(
    synapse: Synapse, proxy: FaultyProxy, tmp_path: Path, library: Library
) -> AsyncIterator[Bot]:
    """The bot behind the proxy, retrying a held room within seconds."""
    account = synapse.register(unique("bot"))
    folder = tmp_path / "bot"
    running = Bot(synapse, account, folder, library, homeserver=proxy.url, delivery=POLICY)
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


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


async def _flood(chat: Chat, count: int) -> None:
    for number in range(count):
        await chat.activist.send(chat.room_id, f"flood {number}")


async def _until_screen(chat: Chat, words: str) -> str:
    """The bot's messages in this chat, read until one holds `words` (floods answered)."""
    async with asyncio.timeout(180):
        while words not in (text := await chat.reply(wait=180)):
            pass
    return text


async def _room_until(chat: Chat, done: int) -> list[str]:
    """The room's bot messages until `done` notices and the SOS location relay came."""
    texts: list[str] = []
    while sum(t.startswith("notice ") for t in texts) < done or not any(
        t.startswith("SOS ") and "quoted" in t for t in texts
    ):
        texts.append(await chat.reply(wait=60))
    return texts


async def test_sos_and_its_location_go_first_under_a_flood_from_the_same_person_and_others(
    bot: Bot, desk: Desk, make_activist: MakeActivist, proxy: FaultyProxy
) -> None:
    app = bot.app
    assert app is not None
    ana = await make_activist()
    dm = await ana.open_dm()
    await dm.pick("English")
    others = [await (await make_activist()).open_dm() for _ in range(OTHERS)]
    for chat in others:
        await chat.pick("English")

    proxy.fail(desk.room.room_id, 503, times=HELD)  # the room's lane stalls on its first
    notices = [Outgoing(desk.ref(desk.room), Reply(f"notice {i}"), "notice") for i in range(QUEUED)]
    await app.outbox.post_many(notices)
    flooding = [asyncio.create_task(_flood(chat, FLOOD)) for chat in others]
    await _flood(dm, FLOOD)
    await ana.send(dm.room_id, "/sos")
    await _until_screen(dm, "Send an urgent alert")
    raised = await dm.pick("Yes, alert the team now")
    assert "The protection team has your alert now" in raised, "the plain room has it"
    content = {"msgtype": "m.location", "body": "Location", "geo_uri": GEO}
    sent = await ana.client.room_send(
        dm.room_id, "m.room.message", content, ignore_unverified_devices=True
    )
    assert isinstance(sent, RoomSendResponse), sent
    assert "Your location is sealed" in await dm.reply()
    await asyncio.gather(*flooding)
    assert all(s.status == 503 for s in proxy.sends(desk.room.room_id)), (
        "nothing reached the encrypted room while it was held"
    )
    proxy.clear()

    texts = await _room_until(desk.room, QUEUED)
    alert = next(i for i, t in enumerate(texts) if "SOS · new case" in t)
    place = next(i for i, t in enumerate(texts) if "shared a location" in t)
    relay = next(i for i, t in enumerate(texts) if t.startswith("SOS ") and "quoted" in t)
    later = [i for i, t in enumerate(texts) if t.startswith("notice ") and t != "notice 0"]
    assert texts.index("notice 0") < alert, "the notice held in flight went first"
    assert alert < place < relay < min(later), texts
    assert "> geo:4.609700,-74.081700;u=20" in texts[relay]
    assert [t for t in texts if t.startswith("notice ")] == [f"notice {i}" for i in range(QUEUED)]
