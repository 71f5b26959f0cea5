"""Admins change content and reload it into the running bot, without a restart."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bot.app import App
from bot.content import reloads
from bot.content.library import Library
from bot.content.loader import load_library
from bot.content.problems import Problem
from tests.conftest import CONTENT
from tests.fakes import FakeUser
from tests.processes import bot_env


def _env(data: Path, content: Path) -> dict[str, str]:
    return bot_env(data, content)


def _reload(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", "content", "reload"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def _wait_for(log: Path, text: str, count: int = 1) -> None:
    deadline = time.monotonic() + 30
    while log.read_text().count(text) < count:
        assert time.monotonic() < deadline, f"no {text!r} in the bot's log"
        time.sleep(0.05)


def test_reload_swaps_good_content_and_refuses_broken(tmp_path: Path) -> None:
    content = tmp_path / "content"
    shutil.copytree(CONTENT, content)
    env = _env(tmp_path / "data", content)
    log = tmp_path / "bot.log"
    with log.open("w") as errors:
        bot = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "run"],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errors,
        )
    try:
        pid_file = tmp_path / "data" / "hrd-bot.pid"
        deadline = time.monotonic() + 30
        while not pid_file.exists():
            assert time.monotonic() < deadline, "the bot did not start"
            time.sleep(0.05)
        strings = content / "en" / "strings.yaml"
        strings.write_text(strings.read_text().replace("How can I help?", "Reloaded menu?"))
        assert _reload(env).returncode == 0
        _wait_for(log, "content reload done")
        (content / "en" / "guides" / "phishing.yaml").write_text("id: [broken\n")
        broken = _reload(env)
        assert broken.returncode == 1
        assert "phishing.yaml:2: YAML syntax" in broken.stderr
        out, _ = bot.communicate(input=b"1\n", timeout=30)
    finally:
        bot.kill()
    assert "Reloaded menu?" in out.decode()
    assert bot.returncode == 0


def test_reload_without_a_running_bot_says_so(tmp_path: Path) -> None:
    run = _reload(_env(tmp_path / "data", CONTENT))
    assert run.returncode == 1
    assert "no running bot" in run.stderr


@dataclass
class Gate:
    """Holds the real loader at its start until `open` is set; counts the loads."""

    open: threading.Event = field(default_factory=threading.Event)
    entered: threading.Event = field(default_factory=threading.Event)
    loads: list[Path] = field(default_factory=list)

    async def reached(self) -> None:
        assert await asyncio.to_thread(self.entered.wait, 10), "no load started"


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Iterator[Gate]:
    held = Gate()
    real = load_library

    def load(root: Path, pace: Callable[[], None]) -> tuple[Library | None, list[Problem]]:
        held.loads.append(root)
        held.entered.set()
        if not held.open.wait(timeout=30):
            raise AssertionError("the gate was never opened")
        return real(root, pace)

    monkeypatch.setattr(reloads, "load_library", load)
    try:
        yield held
    finally:
        held.open.set()


async def test_messages_are_answered_from_the_old_content_during_a_reload(
    app: App, user: FakeUser, tmp_path: Path, gate: Gate
) -> None:
    content = tmp_path / "content"
    shutil.copytree(CONTENT, content)
    strings = content / "en" / "strings.yaml"
    strings.write_text(strings.read_text().replace("How can I help?", "Reloaded menu?"))
    reload = asyncio.create_task(app.reload_content(content))
    await gate.reached()
    during = await user.say("/menu")
    assert "How can I help?" in during.text and not reload.done()
    gate.open.set()
    problems = await asyncio.wait_for(reload, 30)
    # English changed, so its translations are now older than it: warnings, nothing else
    assert all(p.warning and "older than en/strings.yaml" in p.message for p in problems)
    assert "Reloaded menu?" in (await user.say("/menu")).text


async def test_reload_requests_during_a_reload_coalesce_into_one_more_load(
    app: App, gate: Gate
) -> None:
    first = asyncio.create_task(app.reload_content(CONTENT))
    await gate.reached()
    later = [asyncio.create_task(app.reload_content(CONTENT)) for _ in range(3)]
    await asyncio.sleep(0.05)
    gate.open.set()
    await asyncio.wait_for(asyncio.gather(first, *later), 30)
    assert len(gate.loads) == 2


async def test_a_broken_reload_keeps_the_old_library(app: App, tmp_path: Path) -> None:
    content = tmp_path / "content"
    shutil.copytree(CONTENT, content)
    (content / "es" / "guides" / "phishing.yaml").write_text("id: &x phishing\n")
    before = app.library
    problems = await app.reload_content(content)
    assert app.library is before
    assert [str(p) for p in problems if not p.warning] == [
        f"{content}/es/guides/phishing.yaml:1: anchors (&name) are not supported: "
        "write the value out"
    ]


@pytest.mark.parametrize("closed", [False, True])
def test_a_loop_that_does_not_turn_does_not_hold_up_the_load(closed: bool) -> None:
    """Stopping (not running) or closed: the paced loader stops waiting and finishes."""
    loop = asyncio.new_event_loop()
    if closed:
        loop.close()
    try:
        library, problems = load_library(CONTENT, reloads._after_the_loop(loop))
    finally:
        loop.close()
    assert library is not None, problems


async def test_the_loader_waits_while_a_message_is_in_hand(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reloads, "PACE_TIMEOUT", 30.0)
    busy = threading.Event()
    busy.set()
    pace = reloads._after_the_loop(asyncio.get_running_loop(), busy.is_set)
    waiting = asyncio.create_task(asyncio.to_thread(pace))
    await asyncio.sleep(0.2)
    assert not waiting.done(), "the loader went on while a message was being handled"
    busy.clear()
    await asyncio.wait_for(waiting, 10)
