"""Transports see the bot only through their port: no module under `bot/transports`
imports the App or the handlers (issue 14)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TRANSPORTS = Path(__file__).parent.parent / "bot" / "transports"
FORBIDDEN = ("bot.app", "handlers")


def _imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


@pytest.mark.parametrize(
    "path", sorted(TRANSPORTS.rglob("*.py")), ids=lambda p: str(p.relative_to(TRANSPORTS))
)
def test_a_transport_module_imports_neither_the_app_nor_the_handlers(path: Path) -> None:
    bad = {
        name
        for name in _imported(path)
        if any(name == f or name.startswith(f + ".") for f in FORBIDDEN)
    }
    assert not bad, f"{path.relative_to(TRANSPORTS.parent.parent)} imports {sorted(bad)}"
