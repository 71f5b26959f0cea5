"""The real content loader process, held at the start of each load until a test opens its gate.

Run in place of `bot.content.loader_child` (tests set `loader_process.MODULE`). Each load
writes a `load-*` file holding this process's id into the folder named by RELOAD_GATE, then
waits until an `open` file appears there.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from bot.content import loader, loader_child
from bot.content.library import Library
from bot.content.problems import Problem

GATE = Path(os.environ.get("RELOAD_GATE", "."))
WAIT_SECONDS = 60.0
real_load = loader.load_library


def held_load(root: Path, pace: Callable[[], None]) -> tuple[Library | None, list[Problem]]:
    (GATE / f"load-{time.monotonic_ns()}").write_text(str(os.getpid()))
    deadline = time.monotonic() + WAIT_SECONDS
    while not (GATE / "open").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    return real_load(root, pace)


if __name__ == "__main__":
    setattr(loader_child, "load_library", held_load)  # noqa: B010 (not re-exported there)
    loader_child.main()
