"""`hrd-bot run` on Matrix killed with SIGKILL while a case alert waits for a staff room
whose sends answer 502: after the restart the alert arrives exactly once.

The bot's client reaches Synapse through `FaultyProxy`; the reporter and the staff member
talk to Synapse directly. What arrived is read from Synapse's own tables.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.crypto.keys import PrivateKey
from tests.matrix.activist import Activist
from tests.matrix.conftest import unique
from tests.matrix.faulty_proxy import FaultyProxy
from tests.matrix.homeserver import Account, Synapse
from tests.matrix.staff import group_room, invite, joined, room_holds
from tests.matrix.test_matrix_cli import bot_env, start_cli
from tests.matrix.test_matrix_delivery import bot_events, submit, until
from tests.matrix.test_matrix_flows import homeserver_rows

BODIES = (
    "SELECT j.json FROM events e JOIN event_json j USING (event_id) "
    "WHERE e.room_id = ? AND e.sender = ? AND e.type = 'm.room.message' "
    "ORDER BY e.stream_ordering"
)


@pytest.fixture
async def proxy(synapse: Synapse) -> AsyncIterator[FaultyProxy]:
    running = await FaultyProxy(synapse.url).start()
    try:
        yield running
    finally:
        await running.stop()


People = tuple[Account, Activist, Activist]


@pytest.fixture
async def people(synapse: Synapse, tmp_path: Path) -> AsyncIterator[People]:
    """The bot's account (no bot runs yet), a reporter and a staff member."""
    account = synapse.register(unique("killbot"))
    started: list[Activist] = []
    try:
        for prefix in ("activist", "staff"):
            name = unique(prefix)
            person = Activist(synapse.url, synapse.register(name), tmp_path / name, account.user_id)
            started.append(await person.start())
        yield account, started[0], started[1]
    finally:
        for person in started:
            await person.stop()


def bodies(synapse: Synapse, bot_id: str, room_id: str) -> list[str]:
    """The text of every plain message the bot stored in the room, in order."""
    rows = homeserver_rows(synapse, BODIES, room_id, bot_id)
    return [str(json.loads(row[0])["content"].get("body", "")) for row in rows]


async def set_recovery_key(env: dict[str, str]) -> None:
    """As an operator would, with `hrd-bot recovery set`: reports need a key to seal to."""
    public = PrivateKey.generate().public.text
    setting = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        "recovery",
        "set",
        "--public-key",
        public,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await setting.communicate()
    assert setting.returncode == 0, stderr.decode()


async def stop(process: subprocess.Popen[bytes], how: signal.Signals) -> int:
    process.send_signal(how)
    return await asyncio.to_thread(process.wait, 30)


async def test_a_queued_alert_survives_sigkill_and_arrives_once(
    synapse: Synapse, proxy: FaultyProxy, people: People, tmp_path: Path
) -> None:
    account, activist, staff = people
    bot_id = account.user_id
    room = await group_room(staff, encrypted=False)
    assert staff.client.olm is not None
    env = bot_env(synapse, account, tmp_path / "data", "pass phrase") | {
        "MATRIX_HOMESERVER": proxy.url,
        "HRD_BOT_STAFF_ROOMS": f"matrix:{room}",
        "MATRIX_STAFF_USER_IDS": staff.account.user_id,
        "MATRIX_STAFF_DEVICE_KEYS": staff.client.olm.account.identity_keys["ed25519"],
        "HRD_BOT_DELIVERY_FIRST_RETRY": "0.2",
    }
    await set_recovery_key(env)
    await invite(staff, room, bot_id)
    proxy.fail(room, 502, times=10_000)

    process = start_cli(env, tmp_path / "first.log")
    try:
        await room_holds(staff, room, joined(bot_id), wait=60)
        dm = await activist.open_dm()
        case = await submit(dm)
        assert "could not be reached just now" in dm.last, "the reporter is not told it arrived"
        await until(lambda: len(proxy.sends(room)) >= 6)
        await asyncio.sleep(0.3)  # between tries: the sixth failed, the next is seconds away
    finally:
        killed = await stop(process, signal.SIGKILL)
    assert killed == -signal.SIGKILL
    assert {sent.status for sent in proxy.sends(room)} == {502}
    assert bot_events(synapse, bot_id, room) == [], "nothing reached the staff room"
    told = bot_events(synapse, bot_id, dm.room_id)

    proxy.clear()
    process = start_cli(env, tmp_path / "second.log")
    try:
        await until(lambda: any(case in text for text in bodies(synapse, bot_id, room)), wait=60)
        await asyncio.sleep(2)  # room for a second copy to show
    finally:
        assert await stop(process, signal.SIGTERM) == 0, (tmp_path / "second.log").read_text()
    stored = bodies(synapse, bot_id, room)
    assert len([text for text in stored if text.startswith(f"New case {case}")]) == 1, stored
    lost = [text for text in stored if text.startswith("After a restart, 1 message(s)")]
    assert len(lost) == 1 and f"report answers for the staff room · {case}" in lost[0], stored
    assert [text for text, n in Counter(stored).items() if n > 1] == [], "nothing twice"
    assert bot_events(synapse, bot_id, dm.room_id) == told, "the reporter is told nothing again"
