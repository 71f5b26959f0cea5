"""Screens: how each renders, and what it does with a choice or typed text.

Each handler module lists its own screens in a `SCREENS` tuple; the router assembles them
into one mapping (`assemble`), so importing a module changes nothing elsewhere."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from handlers.context import Args, Context, Screen

__all__ = ["Choose", "Render", "ScreenKind", "Typed", "assemble", "screen"]

Render = Callable[[Context, Args], Screen]
Choose = Callable[[Context, Args, str], Awaitable[bool]]
Typed = Callable[[Context, Args, str], Awaitable[bool]]


async def _nothing(ctx: Context, args: Args, value: str) -> bool:
    return False


@dataclass(frozen=True, slots=True)
class ScreenKind:
    """`choose`/`typed` return False when the input meant nothing on this screen."""

    name: str
    render: Render
    choose: Choose = _nothing
    typed: Typed = _nothing


def screen(
    name: str, render: Render, choose: Choose = _nothing, typed: Typed = _nothing
) -> ScreenKind:
    return ScreenKind(name, render, choose, typed)


def assemble(*modules: Iterable[ScreenKind]) -> Mapping[str, ScreenKind]:
    """One read-only mapping by name from each module's screens; a name given twice (two
    modules would each answer on it) is refused."""
    found: dict[str, ScreenKind] = {}
    for screens in modules:
        for kind in screens:
            if kind.name in found:
                raise ValueError(f"screen {kind.name!r} is defined twice")
            found[kind.name] = kind
    return MappingProxyType(found)
