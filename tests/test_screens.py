"""Screens are assembled explicitly (issue 14): each handler module lists its own, the router
builds one mapping, and no module fills a registry in another when it is imported."""

from __future__ import annotations

import pytest

from handlers import checkin, contacts, guides, legal, menu, report, router, screens, sos, thread
from handlers.context import Args, Context, Screen

MODULES = (menu, guides, legal, contacts, report, sos, thread, checkin)


def _render(ctx: Context, args: Args) -> Screen:
    raise AssertionError("never rendered here")


def test_the_router_has_every_modules_screens_and_no_others() -> None:
    listed = {kind.name: kind for module in MODULES for kind in module.SCREENS}
    assert dict(router.SCREENS) == listed
    assert {"menu", "guide", "sos", "thread", "checkin"} <= listed.keys()


def test_a_screen_name_given_twice_is_refused() -> None:
    first, second = screens.screen("same", _render), screens.screen("same", _render)
    with pytest.raises(ValueError, match="'same' is defined twice"):
        screens.assemble((first,), (second,))


def test_the_assembled_mapping_cannot_be_changed_and_the_screens_module_holds_none() -> None:
    with pytest.raises(TypeError):
        router.SCREENS["menu"] = menu.SCREENS[0]  # type: ignore[index]
    names = [n for n in vars(screens) if not n.startswith("__")]
    mutable = [n for n in names if isinstance(getattr(screens, n), dict | list | set)]
    assert mutable == [], "a registry other modules fill"
