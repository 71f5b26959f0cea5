"""Admins change content and reload it into the running bot, without a restart.

Reloads load in a separate process (`bot.content.loader_child`); the `Gate` holds that real
process at the start of each load, so tests can act while a load is under way.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.app import App
from bot.content import loader_child, loader_process, reloads
from bot.content.problems import Problem
from tests.conftest import CONTENT
from tests.fakes import FakeUser
from tests.processes import bot_env


@pytest.fixture
async def app(app: App) -> AsyncIterator[App]:
    """The shared app, with its loader process stopped at the end of each test."""
    yield app
    await app.close()


def _children(pid: int | str = "self") -> set[int]:
    """The processes `pid` started that are still there (zombies included)."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found.update(int(child) for child in (task / "children").read_text().split())
    return found


def _loaders(pid: int | str = "self") -> set[int]:
    """The content loader processes `pid` started (other tests may leave other children)."""
    found: set[int] = set()
    for child in _children(pid):
        try:
            command = Path(f"/proc/{child}/cmdline").read_bytes()
        except FileNotFoundError:
            continue
        if b"bot.content.loader_child" in command or b"tests.reload_gate" in command:
            found.add(child)
    return found


def _address_space_limits(pid: int) -> list[str]:
    """Soft and hard RLIMIT_AS of a process, in bytes."""
    limits = Path(f"/proc/{pid}/limits").read_text().splitlines()
    return next(line for line in limits if line.startswith("Max address space")).split()[3:5]


def _gone(pid: int) -> bool:
    """Ended and reaped: no process, not even a zombie, has this id."""
    return not Path(f"/proc/{pid}").exists()


def _wait_until(done: Callable[[], bool], what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


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
        (loader,) = _loaders(bot.pid)
        (content / "en" / "guides" / "phishing.yaml").write_text("id: [broken\n")
        broken = _reload(env)
        assert broken.returncode == 1
        assert "phishing.yaml:2: YAML syntax" in broken.stderr
        out, _ = bot.communicate(input=b"1\n", timeout=30)
    finally:
        bot.kill()
    assert "Reloaded menu?" in out.decode()
    assert bot.returncode == 0
    _wait_until(lambda: _gone(loader), "the loader process outlived the bot", 5)


def test_the_loader_process_ends_when_the_bot_is_killed(tmp_path: Path) -> None:
    env = _env(tmp_path / "data", CONTENT)
    log = tmp_path / "bot.log"
    with log.open("w") as errors:
        bot = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "run", "--console"],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=errors,
        )
    try:
        _wait_until((tmp_path / "data" / "hrd-bot.pid").exists, "the bot did not start")
        bot.send_signal(signal.SIGHUP)
        _wait_for(log, "content reload done")
        (loader,) = _loaders(bot.pid)
    finally:
        bot.kill()
        bot.wait()
    _wait_until(lambda: _gone(loader), "the loader process outlived the bot", 5)


def test_reload_without_a_running_bot_says_so(tmp_path: Path) -> None:
    run = _reload(_env(tmp_path / "data", CONTENT))
    assert run.returncode == 1
    assert "no running bot" in run.stderr


@dataclass
class Gate:
    """The folder through which a test holds the loader process (see tests/reload_gate.py)."""

    folder: Path

    def loads(self) -> list[int]:
        """The process id of each load started so far, oldest first."""
        return [int(p.read_text()) for p in sorted(self.folder.glob("load-*"))]

    async def reached(self, count: int = 1) -> int:
        """Once `count` loads have started: the last one's process id."""
        await asyncio.to_thread(
            _wait_until, lambda: len(self.loads()) >= count, "no load started", 10
        )
        return self.loads()[-1]

    def open(self) -> None:
        (self.folder / "open").touch()


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Gate]:
    held = Gate(tmp_path / "gate")
    held.folder.mkdir()
    monkeypatch.setenv("RELOAD_GATE", str(held.folder))
    monkeypatch.setattr(loader_process, "MODULE", "tests.reload_gate")
    try:
        yield held
    finally:
        held.open()


@pytest.fixture
def content(tmp_path: Path) -> Path:
    root = tmp_path / "content"
    shutil.copytree(CONTENT, root)
    return root


def _retitle(guide: Path, title: str) -> None:
    lines = guide.read_text(encoding="utf-8").splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if line.startswith("title: "))
    lines[at] = f"title: {title}\n"
    guide.write_text("".join(lines), encoding="utf-8")


async def test_messages_are_answered_from_the_old_content_during_a_reload(
    app: App, user: FakeUser, content: Path, gate: Gate
) -> None:
    strings = content / "en" / "strings.yaml"
    strings.write_text(strings.read_text().replace("How can I help?", "Reloaded menu?"))
    reload = asyncio.create_task(app.reload_content(content))
    loader = await gate.reached()
    assert loader != os.getpid() and loader in _children()
    during = await user.say("/menu")
    assert "How can I help?" in during.text and not reload.done()
    gate.open()
    problems = await asyncio.wait_for(reload, 30)
    # English changed, so its translations are now older than it: warnings, nothing else
    assert all(p.warning and "older than en/strings.yaml" in p.message for p in problems)
    assert "Reloaded menu?" in (await user.say("/menu")).text


async def test_reload_requests_during_a_reload_coalesce_into_one_more_load(
    app: App, gate: Gate
) -> None:
    first = asyncio.create_task(app.reload_content(CONTENT))
    await gate.reached()
    asked = asyncio.Semaphore(0)

    async def request() -> list[Problem]:
        reloading = app.reload_content(CONTENT)
        asked.release()  # its task yields only once the reload has counted the request
        return await reloading

    later = [asyncio.create_task(request()) for _ in range(3)]
    for _ in later:
        await asked.acquire()
    gate.open()
    await asyncio.wait_for(asyncio.gather(first, *later), 30)
    assert len(gate.loads()) == 2


async def test_a_broken_reload_keeps_the_old_library(app: App, content: Path) -> None:
    (content / "es" / "guides" / "phishing.yaml").write_text("id: &x phishing\n")
    before = app.library
    problems = await app.reload_content(content)
    assert app.library is before
    assert [str(p) for p in problems if not p.warning] == [
        f"{content}/es/guides/phishing.yaml:1: anchors (&name) are not supported: "
        "write the value out"
    ]


async def test_a_reload_brings_over_only_what_changed(app: App, content: Path) -> None:
    assert await app.reload_content(content) == []
    first = app.library
    _retitle(content / "es" / "guides" / "phishing.yaml", "Un mensaje raro")
    assert await app.reload_content(content) == []
    second = app.library
    assert second is not first
    assert second.packs["es"].guides["phishing"].title == "Un mensaje raro"
    assert first.packs["es"].guides["phishing"].title != "Un mensaje raro"
    for code, pack in second.packs.items():
        if code != "es":
            assert pack is first.packs[code]
    es, before = second.packs["es"], first.packs["es"]
    assert es.strings is before.strings and es.interview is before.interview
    for guide_id, guide in es.guides.items():
        assert (guide is before.guides[guide_id]) == (guide_id != "phishing")


async def test_a_loader_killed_mid_load_keeps_the_old_content_and_is_replaced(
    app: App, content: Path, gate: Gate
) -> None:
    before = app.library
    reload = asyncio.create_task(app.reload_content(content))
    killed = await gate.reached()
    os.kill(killed, signal.SIGKILL)
    problems = await asyncio.wait_for(reload, 30)
    assert problems == [
        Problem(content, 1, "content loading stopped: the loader process ended (killed by SIGKILL)")
    ]
    assert app.library is before
    assert _gone(killed)
    gate.open()
    assert await asyncio.wait_for(app.reload_content(content), 30) == []
    assert app.library is not before
    assert gate.loads()[-1] != killed


async def test_a_loader_that_hangs_is_stopped_and_replaced(
    app: App, content: Path, gate: Gate, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(loader_process, "LOAD_SECONDS", 1.0)
    before = app.library
    problems = await asyncio.wait_for(app.reload_content(content), 30)
    assert problems == [Problem(content, 1, "content loading stopped: no answer within 1 s")]
    assert app.library is before
    assert _gone(gate.loads()[-1])
    monkeypatch.setattr(loader_process, "LOAD_SECONDS", 60.0)
    gate.open()
    assert await asyncio.wait_for(app.reload_content(content), 30) == []
    assert app.library is not before


async def test_the_loader_process_has_a_memory_bound(app: App) -> None:
    assert await app.reload_content(CONTENT) == []
    (loader,) = _loaders()
    assert _address_space_limits(loader) == [str(loader_child.MEMORY_LIMIT)] * 2


async def test_the_loader_process_gets_none_of_the_bots_secrets(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123:canary-token")
    monkeypatch.setenv("HRD_BOT_DB_KEY", "canary-key")
    assert await app.reload_content(CONTENT) == []
    (loader,) = _loaders()
    environment = await asyncio.to_thread(Path(f"/proc/{loader}/environ").read_bytes)
    assert b"canary" not in environment
    assert b"PYTHONPATH=" in environment


async def test_the_loader_process_is_out_of_reach_of_the_bots_terminal(app: App) -> None:
    """A Ctrl-C or hangup goes to the terminal's session; stopping the loader is the bot's."""
    assert await app.reload_content(CONTENT) == []
    (loader,) = _loaders()
    assert os.getsid(loader) == loader != os.getsid(0)


async def test_close_ends_the_loader_process(app: App) -> None:
    assert await app.reload_content(CONTENT) == []
    (loader,) = _loaders()
    await app.close()
    assert _gone(loader)
    assert await app.reload_content(CONTENT) == [
        Problem(CONTENT, 1, "content loading stopped: the bot is shutting down")
    ]
    assert not _loaders()


async def test_reloading_waits_while_a_message_is_in_hand(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(reloads, "PACE_TIMEOUT", 30.0)
    busy, asked = True, 0
    asked_again = asyncio.Event()

    def in_hand() -> bool:
        nonlocal asked
        asked += 1
        if asked == 3:
            asked_again.set()
        return busy

    waiting = asyncio.create_task(reloads._Pace(in_hand)())
    watching = asyncio.create_task(asked_again.wait())
    await asyncio.wait([waiting, watching], timeout=30, return_when=asyncio.FIRST_COMPLETED)
    watching.cancel()
    assert asked_again.is_set(), "it asked again whether a message is in hand"
    assert not waiting.done(), "the reload went on while a message was being handled"
    busy = False
    await asyncio.wait_for(waiting, 10)


async def test_close_during_a_load_does_not_wait_for_it(
    app: App, content: Path, gate: Gate, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The gate holds the load far longer than the test waits: only a kill ends it in time."""
    monkeypatch.setattr(loader_process, "CLOSE_SECONDS", 120.0)
    before = app.library
    reload = asyncio.create_task(app.reload_content(content))
    loader = await gate.reached()
    await asyncio.wait_for(app.close(), 30)
    assert _gone(loader)
    (problem,) = await asyncio.wait_for(reload, 30)
    assert problem.message.startswith("content loading stopped: the loader process ended")
    assert app.library is before
