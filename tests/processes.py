"""Real `hrd-bot` processes for tests: a clean environment, and a console bot to type at."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

from tests.conftest import CONTENT

OWN_PREFIXES = ("HRD_BOT_", "TELEGRAM_", "MATRIX_")


def bot_env(data: Path, content: Path = CONTENT, **settings: str) -> dict[str, str]:
    """This machine's environment minus every bot setting, plus a data dir and `settings`."""
    kept = {k: v for k, v in os.environ.items() if not k.startswith(OWN_PREFIXES)}
    kept.pop("CREDENTIALS_DIRECTORY", None)
    return {
        **kept,
        "HRD_BOT_DATA_DIR": str(data),
        "HRD_BOT_CONTENT_DIR": str(content),
        "LANG": "en_US.UTF-8",
        **settings,
    }


def run_cli(
    env: dict[str, str], *args: str, stdin: bytes = b""
) -> subprocess.CompletedProcess[str]:
    """`hrd-bot ARGS` to the end; its output as text."""
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        env=env,
        input=stdin.decode(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


class ConsoleBot:
    """The console bot in a child process, typed at line by line, read as it answers.
    Its standard input stays open until `close_input`, as on a terminal."""

    def __init__(self, env: dict[str, str], args: tuple[str, ...] = ("--console",)) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "run", *args],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self._errors: list[str] = []
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout, self.lines.put)),
            threading.Thread(target=self._read, args=(self.proc.stderr, self._errors.append)),
        ]
        for reader in self._readers:
            reader.daemon = True
            reader.start()

    @staticmethod
    def _read(stream: IO[bytes], put: Callable[[str], object]) -> None:
        for raw in stream:
            put(raw.decode(errors="replace"))

    def wait_for(self, text: str, timeout: float = 20) -> str:
        seen, deadline = "", time.monotonic() + timeout
        while text not in seen:
            try:
                seen += self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"waited for {text!r}, saw:\n{seen}") from None
        return seen

    def type(self, line: str, then: str) -> str:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()
        return self.wait_for(then)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def terminate(self, timeout: float = 10) -> int:
        """SIGTERM, stdin still open; the exit status."""
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def stderr(self) -> str:
        """What the process wrote to stderr, once it has ended."""
        for reader in self._readers:
            reader.join(timeout=10)
        return "".join(self._errors)
