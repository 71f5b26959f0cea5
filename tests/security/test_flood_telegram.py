"""Through Telegram: a flooder's dropped messages leave no chat-trail row.

The App answers a dropped message with `Dropped` (see `bot.conversation.flood`); the Telegram
dispatcher must then not note the user's message id. Until `Dispatcher._receive`
does (one line: `received = [] if isinstance(replies, Dropped) else received` after
`replies = await self._answers(...)`), this test is an expected failure; strict, so
it is noticed when the line lands.
"""

from __future__ import annotations

from pathlib import Path

from bot.conversation.flood import FloodGuard
from tests.telegram_emulator import Emulator, Message, SimUser
from tests.telegram_emulator.harness import RunningBot, eventually, onboard, running_bot, trail_rows


async def _kept(running: RunningBot, user: SimUser, sent: list[Message]) -> list[Message]:
    rows = {message_id for message_id, _ in await trail_rows(running.app, user.chat.id)}
    return [m for m in sent if str(m.message_id) in rows]


async def test_dropped_messages_leave_no_trail_row(emu: Emulator, tmp_path: Path) -> None:
    calls: list[int] = []
    flood = FloodGuard(rate=0.001, burst=8)
    original = flood.check

    def counted(key: str, now: float | None = None) -> tuple[bool, bool]:
        calls.append(1)
        return original(key, now)

    flood.check = counted  # type: ignore[method-assign]
    async with running_bot(emu, tmp_path / "x.db", flood=flood) as running:
        ana = emu.user()
        await onboard(ana)
        sent = [await ana.send(f"x{i}") for i in range(30)]

        async def all_handled() -> bool:
            return len(calls) == 2 + len(sent)

        await eventually(all_handled)
        await emu.world.wait_for(lambda: "very fast" in (ana.from_bot()[-1].text or ""), within=5)
        await running.transport._trail.flush()  # what was noted is written
        kept = await _kept(running, ana, sent)
        assert [m.text for m in kept] == [f"x{i}" for i in range(6)]
