"""The Telegram rate limiter, with a way past its queues for an SOS.

`AIORateLimiter` makes every send wait its turn under the bot's overall rate (30 a
second) and each group's (20 a minute): under a flood of answers to other chats, a
staff alert could wait seconds behind them. A send marked `URGENT` (an SOS, see
`bot.safety.sos`) skips both queues and goes out at once; if Telegram answers 429 it waits
what Telegram asks and tries again, as the limiter would. SOS messages are few by
construction (the flood guard gives them a small bucket of their own), so they cannot
push the bot over Telegram's limits for long.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from telegram import Bot
from telegram.error import RetryAfter
from telegram.ext import AIORateLimiter, ExtBot

from bot.transports.telegram.failures import retry_seconds

__all__ = ["URGENT", "PriorityLimiter", "request"]

URGENT = -1
"""`rate_limit_args` of an urgent send (the limiter's own argument is a retry count)."""
Callback = Callable[..., Coroutine[Any, Any, bool | dict[str, Any] | list[dict[str, Any]]]]


async def request(bot: Bot, endpoint: str, params: dict[str, object], *, urgent: bool) -> Any:
    """`bot.do_api_request`, marked `URGENT` when it is and the bot has a limiter."""
    if urgent and isinstance(bot, ExtBot) and isinstance(bot.rate_limiter, PriorityLimiter):
        return await bot.do_api_request(endpoint, params, rate_limit_args=URGENT)
    return await bot.do_api_request(endpoint, params)


class PriorityLimiter(AIORateLimiter):
    """`AIORateLimiter`, except that a send with `rate_limit_args=URGENT` waits for nobody."""

    def __init__(self, *, overall_max_rate: float, max_retries: int) -> None:
        super().__init__(overall_max_rate=overall_max_rate, max_retries=max_retries)
        self._urgent_retries = max_retries

    async def process_request(
        self,
        callback: Callback,
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> bool | dict[str, Any] | list[dict[str, Any]]:
        if rate_limit_args != URGENT:
            return await super().process_request(
                callback, args, kwargs, endpoint, data, rate_limit_args
            )
        for attempt in range(self._urgent_retries + 1):
            try:
                return await callback(*args, **kwargs)
            except RetryAfter as exc:
                if attempt == self._urgent_retries:
                    raise
                await asyncio.sleep(retry_seconds(exc) + 0.1)
        raise AssertionError("unreachable")
