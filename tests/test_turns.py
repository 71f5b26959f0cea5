"""Per-key turns: one at a time per key, in order; other keys run meanwhile; nothing leaks."""

from __future__ import annotations

import asyncio

from bot.conversation.turns import Turns


async def test_one_key_waits_its_turn_others_do_not_and_no_lock_is_left() -> None:
    turns, order = Turns(), []

    async def work(key: str, tag: str, pause: float) -> None:
        async with turns.turn(key):
            order.append(f"{tag}+")
            await asyncio.sleep(pause)
            order.append(f"{tag}-")

    await asyncio.gather(work("a", "a1", 0.02), work("a", "a2", 0), work("b", "b1", 0))
    assert order.index("a1-") < order.index("a2+"), "same key: one after the other"
    assert order.index("b1-") < order.index("a1-"), "another key did not wait"
    assert len(turns) == 0
