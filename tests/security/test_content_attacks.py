"""Hostile content files end as one `path:line: message`, fast and in bounded memory.

Each attack is tried three ways on real processes: `hrd-bot content validate`, `hrd-bot run`
(refuses to start, exit 1) and a SIGHUP to a running bot (keeps its old content and answers).
Validate and start run under RLIMIT_AS = 500 MB, so an expansion would end in MemoryError;
the running bot's peak RSS is read from /proc.
"""

from __future__ import annotations

import os
import queue
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pytest

from tests.conftest import CONTENT
from tests.processes import bot_env

MEMORY = 500 << 20
SECONDS = 5.0
GREETING = "Which language do you want to use?"


@dataclass(frozen=True)
class Attack:
    """Writes a hostile file under a content root; says where the problem must be reported."""

    name: str
    relative: str
    line: int
    says: str
    write: Callable[[Path], None]


def _text(text: str) -> Callable[[Path], None]:
    return _bytes(text.encode("utf-8"))


def _bytes(data: bytes) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        path.write_bytes(data)

    return write


def _alias_bomb(path: Path) -> None:
    lines = ["id: attack", "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, 10):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]")
    path.write_text("\n".join(lines) + "\n")


def _huge_list(path: Path) -> None:
    with path.open("wb") as out:
        out.write(b"id: attack\nitems:\n")
        chunk = b"  - lol\n" * 65536
        for _ in range(50 * (1 << 20) // len(chunk)):
            out.write(chunk)


GUIDE = "en/guides/attack.yaml"
ATTACKS = [
    Attack("alias-bomb", GUIDE, 2, "anchors (&name) are not supported", _alias_bomb),
    Attack("50mb-list", GUIDE, 1, "larger than 1024 KB", _huge_list),
    Attack(
        "recursive-alias",
        GUIDE,
        2,
        "anchors (&name) are not supported",
        _text("id: attack\nloop: &loop\n  again: *loop\n"),
    ),
    Attack(
        "alias-without-anchor",
        GUIDE,
        2,
        "aliases (*name) are not supported",
        _text("id: attack\nref: *somewhere\n"),
    ),
    Attack(
        "10000-deep-flow",
        GUIDE,
        2,
        "nest",
        _text("id: attack\nnodes: " + "[" * 10_000 + "]" * 10_000 + "\n"),
    ),
    Attack(
        "30-deep-block",
        GUIDE,
        22,
        "nested deeper than 20 levels",
        _text(
            "id: attack\n" + "".join("  " * i + f"k{i}:\n" for i in range(30)) + "  " * 30 + "x\n"
        ),
    ),
    Attack("nul-byte", GUIDE, 3, "NUL", _bytes(b"id: attack\ntitle: A\nsummary: a\x00b\n")),
    Attack(
        "100000-digit-integer",
        GUIDE,
        2,
        "a number with more than 18 digits",
        _text("id: attack\norder: " + "9" * 100_000 + "\n"),
    ),
    Attack(
        "list-as-key",
        GUIDE,
        3,
        "keys must be text, not a list or mapping",
        _text("id: attack\ntitle: T\n[a, b]: c\n"),
    ),
    Attack(
        "boolean-key",
        GUIDE,
        2,
        "keys must be text: put 'yes' in quotes",
        _text("id: attack\nyes: c\n"),
    ),
    Attack("fifo", GUIDE, 1, "named pipe (FIFO)", lambda path: os.mkfifo(path)),
    Attack(
        "symlink-to-dev-zero",
        GUIDE,
        1,
        "a symbolic link",
        lambda path: path.symlink_to("/dev/zero"),
    ),
    Attack("invalid-utf8", GUIDE, 3, "not UTF-8", _bytes(b"id: attack\ntitle: A\nsummary: \xff\n")),
    Attack(
        "directory-for-file",
        "en/strings.yaml",
        1,
        "a folder where a file should be",
        lambda path: path.mkdir(),
    ),
    Attack(
        "oversized-file",
        GUIDE,
        1,
        "larger than 1024 KB",
        _text("id: attack\ntitle: " + "a" * (2 << 20) + "\n"),
    ),
    Attack(
        "python-tag",
        GUIDE,
        2,
        "tags (tag:yaml.org,2002:python/object/apply:os.system) are not supported",
        _text("id: attack\ntitle: !!python/object/apply:os.system [echo]\n"),
    ),
]
IDS = [attack.name for attack in ATTACKS]


def _arm(root: Path, attack: Attack) -> Path:
    target = root / attack.relative
    if target.exists():
        target.unlink()
    attack.write(target)
    return target


def _bounded() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))


def _problem_lines(stderr: str, target: Path) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith(f"{target}:")]


@pytest.fixture
def content(tmp_path: Path) -> Path:
    root = tmp_path / "content"
    shutil.copytree(CONTENT, root)
    return root


@pytest.mark.parametrize("attack", ATTACKS, ids=IDS)
def test_validate_reports_the_line(content: Path, attack: Attack) -> None:
    target = _arm(content, attack)
    run = subprocess.run(
        [sys.executable, "-m", "bot.cli", "content", "validate", str(content)],
        env=bot_env(content.parent / "data", content),
        capture_output=True,
        text=True,
        timeout=SECONDS,
        preexec_fn=_bounded,
        check=False,
    )
    assert run.returncode == 1, run.stderr
    assert "Traceback" not in run.stderr
    problems = _problem_lines(run.stderr, target)
    assert len(problems) == 1, run.stderr
    assert problems[0].startswith(f"{target}:{attack.line}: ")
    assert attack.says in problems[0]


@pytest.mark.parametrize("attack", ATTACKS, ids=IDS)
def test_start_refuses_with_one_problem_line(content: Path, attack: Attack) -> None:
    target = _arm(content, attack)
    run = subprocess.run(
        [sys.executable, "-m", "bot.cli", "run", "--console"],
        env=bot_env(content.parent / "data", content),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=SECONDS,
        preexec_fn=_bounded,
        check=False,
    )
    assert run.returncode == 1, run.stderr
    assert "Traceback" not in run.stderr
    problems = _problem_lines(run.stderr, target)
    assert len(problems) == 1, run.stderr
    assert problems[0].startswith(f"{target}:{attack.line}: ")
    assert "the bot did not start" in run.stderr


class RunningBot:
    """A console bot process whose output is collected line by line as it comes."""

    def __init__(self, data: Path, content: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "run", "--console"],
            env=bot_env(data, content),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.out: queue.Queue[str] = queue.Queue()
        self.err: queue.Queue[str] = queue.Queue()
        for stream, lines in ((self.process.stdout, self.out), (self.process.stderr, self.err)):
            threading.Thread(target=self._pump, args=(stream, lines), daemon=True).start()

    @staticmethod
    def _pump(stream: IO[str] | None, lines: queue.Queue[str]) -> None:
        assert stream is not None
        for line in stream:
            lines.put(line.rstrip("\n"))

    def wait_for(self, lines: queue.Queue[str], wanted: str, seconds: float) -> list[str]:
        """Lines read until one containing `wanted`; fails after `seconds`."""
        seen: list[str] = []
        deadline = time.monotonic() + seconds
        while not seen or wanted not in seen[-1]:
            try:
                seen.append(lines.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                pytest.fail(f"no {wanted!r} within {seconds} s; got {seen[-20:]}")
        return seen

    def say(self, text: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(text + "\n")
        self.process.stdin.flush()

    def peak_memory(self) -> int:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        kib = next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))
        return int(kib) * 1024

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningBot, Path]]:
    """One bot for every SIGHUP attack: each is armed, refused and cleaned up in turn."""
    base = tmp_path_factory.mktemp("running")
    root = base / "content"
    shutil.copytree(CONTENT, root)
    bot = RunningBot(base / "data", root)
    try:
        bot.wait_for(bot.out, GREETING, 30)
        yield bot, root
    finally:
        bot.stop()


@pytest.mark.parametrize("attack", ATTACKS, ids=IDS)
def test_sighup_keeps_old_content_and_answers(
    running: tuple[RunningBot, Path], attack: Attack
) -> None:
    bot, root = running
    strings = root / "en" / "strings.yaml"
    original = strings.read_text(encoding="utf-8")
    strings.write_text(original.replace(GREETING, "Changed greeting?"), encoding="utf-8")
    target = _arm(root, attack)
    try:
        started = time.monotonic()
        bot.process.send_signal(signal.SIGHUP)
        logged = bot.wait_for(bot.err, "content reload refused", SECONDS)
        assert time.monotonic() - started < SECONDS
        problems = [line for line in logged if f"content: {target}:{attack.line}: " in line]
        assert len(problems) == 1, logged
        assert attack.says in problems[0]
        assert not any("Traceback" in line for line in logged)
        bot.say("/start")
        bot.wait_for(bot.out, GREETING, SECONDS)
        assert bot.peak_memory() < MEMORY
    finally:
        if target.is_dir() and not target.is_symlink():
            target.rmdir()
        elif os.path.lexists(target):
            target.unlink()
        strings.write_text(original, encoding="utf-8")
    assert bot.process.poll() is None
