"""One error tree: every error raised on purpose derives from `HrdBotError` and is in the
tree `bot/errors.py` documents, so callers catch by kind and the operator's guide is true."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import bot
import bot.errors
import handlers

PRIVATE = "_"


def _error_classes() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for package in (bot, handlers):
        for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if module.name.endswith(("__main__", "loader_child")):
                continue
            loaded = importlib.import_module(module.name)
            for name, value in vars(loaded).items():
                defined_here = getattr(value, "__module__", None) == module.name
                if inspect.isclass(value) and issubclass(value, BaseException) and defined_here:
                    found[name] = value
    return found


def test_every_error_raised_on_purpose_is_in_the_tree() -> None:
    classes = _error_classes()
    assert len(classes) > 12, "the walk must find the package's errors"
    outside = [
        n
        for n, c in classes.items()
        if not n.startswith(PRIVATE) and not issubclass(c, bot.errors.HrdBotError)
    ]
    assert outside == []
    undocumented = [n for n in classes if not n.startswith(PRIVATE) and n not in bot.errors.__doc__]
    assert undocumented == [], "bot/errors.py's docstring names every error"
