"""`hrd-bot run` on Matrix killed with SIGKILL while a case alert is queued for a staff
room (its sends answer 502, or Synapse stored the alert and its answer was held back):
after the restart on the same disk the alert is in the room exactly once.

The bot's client reaches Synapse through `FaultyProxy`; the reporter and the staff member
talk to Synapse directly. What arrived is what Synapse stored (its own tables), as the
staff member's client decrypted it; in a plain staff room and an encrypted one.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.crypto.keys import PrivateKey
from tests.matrix.activist import Activist, Chat
from tests.matrix.faulty_proxy import FaultyProxy
from tests.matrix.fixtures import unique
from tests.matrix.homeserver import Account, Synapse
from tests.matrix.staff import group_room, invite, joined, room_holds
from tests.matrix.test_matrix_cli import bot_env, start_cli
from tests.matrix.test_matrix_delivery import Seen, bot_events, submit, until


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


@dataclass(frozen=True, slots=True)
class Setup:
    """A bot configured as an operator would, its one staff room joined on start."""

    env: dict[str, str]
    bot_id: str
    room: str
    logs: Path
    seen: Seen

    def start(self, name: str) -> subprocess.Popen[bytes]:
        return start_cli(self.env, self.logs / f"{name}.log")

    def events(self, synapse: Synapse) -> list[str]:
        return bot_events(synapse, self.bot_id, self.room)

    async def stored(self) -> list[str]:
        """The bodies of the bot's events in the room, as the staff member read them."""
        return await self.seen.view(self.room)


async def configure(
    synapse: Synapse, proxy: FaultyProxy, people: People, tmp_path: Path, *, encrypted: bool
) -> Setup:
    account, _, staff = people
    room = await group_room(staff, encrypted=encrypted)
    assert staff.client.olm is not None
    env = bot_env(synapse, account, tmp_path / "data", "pass phrase") | {
        "MATRIX_HOMESERVER": proxy.url,
        "HRD_BOT_STAFF_ROOMS": f"matrix:{room}",
        "MATRIX_STAFF_USER_IDS": staff.account.user_id,
        "MATRIX_STAFF_DEVICE_KEYS": staff.client.olm.account.identity_keys["ed25519"],
        "HRD_BOT_DELIVERY_FIRST_RETRY": "0.2",
    }
    await set_recovery_key(env)
    await invite(staff, room, account.user_id)
    return Setup(env, account.user_id, room, tmp_path, Seen(staff, synapse, (room,)))


async def report(setup: Setup, people: People) -> tuple[Chat, str]:
    """Once the bot has joined its staff room: a whole report in a new DM."""
    _, activist, staff = people
    await room_holds(staff, setup.room, joined(setup.bot_id), wait=60)
    dm = await activist.open_dm()
    return dm, await submit(dm)


async def restarted(setup: Setup, synapse: Synapse) -> None:
    """`hrd-bot run` again on the same disk, until the staff room holds two of the bot's
    events (the alert, the notice of what a stop lost), and a little longer (room for a
    second copy to show)."""
    process = setup.start("second")
    try:
        await until(lambda: len(setup.events(synapse)) >= 2, wait=60)
        await asyncio.sleep(2)
    finally:
        assert await stop(process, signal.SIGTERM) == 0, (setup.logs / "second.log").read_text()


def once(stored: list[str], case: str) -> None:
    """The alert once, the notice of the lost answers once, and nothing twice."""
    assert len([text for text in stored if text.startswith(f"New case {case}")]) == 1, stored
    lost = [text for text in stored if text.startswith("After a restart, 1 message")]
    assert len(lost) == 1 and f"report answers for the staff room · {case}" in lost[0], stored
    assert [text for text, n in Counter(stored).items() if n > 1] == [], "nothing twice"


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "encrypted"])
async def test_a_queued_alert_survives_sigkill_and_arrives_once(
    encrypted: bool, synapse: Synapse, proxy: FaultyProxy, people: People, tmp_path: Path
) -> None:
    setup = await configure(synapse, proxy, people, tmp_path, encrypted=encrypted)
    proxy.fail(setup.room, 502, times=10_000)
    process = setup.start("first")
    try:
        dm, case = await report(setup, people)
        assert "could not be reached just now" in dm.last, "the reporter is not told it arrived"
        await until(lambda: len(proxy.sends(setup.room)) >= 6)
        await asyncio.sleep(0.3)  # between tries: the sixth failed, the next is seconds away
    finally:
        assert await stop(process, signal.SIGKILL) == -signal.SIGKILL
    assert {sent.status for sent in proxy.sends(setup.room)} == {502}
    assert setup.events(synapse) == [], "nothing reached the staff room"
    told = bot_events(synapse, setup.bot_id, dm.room_id)

    proxy.clear()
    await restarted(setup, synapse)
    once(await setup.stored(), case)
    assert bot_events(synapse, setup.bot_id, dm.room_id) == told, (
        "the reporter is told nothing again"
    )


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "encrypted"])
async def test_an_alert_synapse_stored_before_the_kill_is_not_stored_again(
    encrypted: bool, synapse: Synapse, proxy: FaultyProxy, people: People, tmp_path: Path
) -> None:
    """The alert reached Synapse, and the bot was killed while its answer was held back:
    the restarted bot sends it again under the same transaction id, and Synapse answers
    with the event it already has instead of storing a second."""
    setup = await configure(synapse, proxy, people, tmp_path, encrypted=encrypted)
    proxy.hold_answer(setup.room, times=10_000)
    process = setup.start("first")
    try:
        dm, case = await report(setup, people)
        assert "could not be reached just now" in dm.last, "the reporter is not told it arrived"
        await until(lambda: any(sent.event_id for sent in proxy.sends(setup.room)))
    finally:
        assert await stop(process, signal.SIGKILL) == -signal.SIGKILL
    held = proxy.sends(setup.room)
    assert [text.startswith(f"New case {case}") for text in await setup.stored()] == [True]
    told = bot_events(synapse, setup.bot_id, dm.room_id)

    proxy.clear()
    await restarted(setup, synapse)
    once(await setup.stored(), case)
    again = [sent for sent in proxy.sends(setup.room) if sent.txn == held[0].txn][1:]
    assert again and {sent.event_id for sent in again} == {held[0].event_id}, "same event"
    assert bot_events(synapse, setup.bot_id, dm.room_id) == told, (
        "the reporter is told nothing again"
    )
