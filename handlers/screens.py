"""The registry of screens: how each renders, and what it does with a choice or typed text."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from handlers.context import Args, Context, Screen

Render = Callable[[Context, Args], Screen]
Choose = Callable[[Context, Args, str], Awaitable[bool]]
Typed = Callable[[Context, Args, str], Awaitable[bool]]


async def _nothing(ctx: Context, args: Args, value: str) -> bool:
    return False


@dataclass(frozen=True, slots=True)
class ScreenKind:
    """`choose`/`typed` return False when the input meant nothing on this screen."""

    render: Render
    choose: Choose = _nothing
    typed: Typed = _nothing


SCREENS: dict[str, ScreenKind] = {}


def screen(name: str, render: Render, choose: Choose = _nothing, typed: Typed = _nothing) -> None:
    SCREENS[name] = ScreenKind(render, choose, typed)
