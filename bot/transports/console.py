"""A terminal transport: lines in, numbered choices out. Scriptable through a pipe."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from typing import BinaryIO, TextIO

from bot.model import ChatRef, Handler, Incoming, Reply
from bot.pseudonym import Pseudonymizer

MAX_LINE_BYTES = 64 * 1024
_CLEAR = "\033[2J\033[3J\033[H"


def _read_lines(
    stream: BinaryIO, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[bytes | int | None]
) -> None:
    """Thread body: blocking reads stay off the loop; an oversized line arrives as its size."""
    while line := stream.readline(MAX_LINE_BYTES):
        item: bytes | int = line
        if len(line) >= MAX_LINE_BYTES and not line.endswith(b"\n"):
            size = len(line)
            while (rest := stream.readline(MAX_LINE_BYTES)) and not rest.endswith(b"\n"):
                size += len(rest)
            item = size + len(rest)
        loop.call_soon_threadsafe(queue.put_nowait, item)
    loop.call_soon_threadsafe(queue.put_nowait, None)


class ConsoleTransport:
    """One local user. Replies are printed; a TTL cannot be honoured on a terminal."""

    name = "console"

    def __init__(
        self,
        pseudonyms: Pseudonymizer,
        stdin: BinaryIO | None = None,
        stdout: TextIO | None = None,
        language_hint: str | None = None,
    ) -> None:
        self._stdin = stdin or sys.stdin.buffer
        self._out = stdout or sys.stdout
        self._tty = self._out.isatty()
        self._user = pseudonyms.user("console", os.environ.get("USER", "local"))
        self._chat = ChatRef("console", "local")
        self._hint = language_hint or os.environ.get("LANG", "").split(".")[0] or None
        self._queue: asyncio.Queue[bytes | int | None] = asyncio.Queue()

    async def run(self, handle: Handler) -> None:
        loop = asyncio.get_running_loop()
        reader = threading.Thread(
            target=_read_lines, args=(self._stdin, loop, self._queue), daemon=True
        )
        reader.start()
        start = Incoming(self._user, self._chat, text="/start", language_hint=self._hint)
        await self._deliver(handle, start)
        while True:
            self._prompt()
            item = await self._queue.get()
            if item is None:
                break
            await self._deliver(handle, self._incoming(item))

    def _incoming(self, item: bytes | int) -> Incoming:
        if isinstance(item, int):
            return Incoming(
                self._user, self._chat, text="", language_hint=self._hint, raw_size=item
            )
        text = item.decode("utf-8", errors="replace").rstrip("\r\n")
        return Incoming(
            self._user, self._chat, text=text, language_hint=self._hint, raw_size=len(item)
        )

    async def _deliver(self, handle: Handler, msg: Incoming) -> None:
        for reply in await handle(msg):
            await self.send(self._chat, reply)

    def _prompt(self) -> None:
        if self._tty:
            self._out.write("> ")
            self._out.flush()

    async def send(self, chat: ChatRef, reply: Reply) -> None:
        if reply.erase_chat and self._tty:
            self._out.write(_CLEAR)
        lines = [reply.text]
        if reply.choices:
            lines.append("")
            lines += [f"  {i}. {choice.label}" for i, choice in enumerate(reply.choices, 1)]
        self._out.write("\n".join(lines) + "\n\n")
        self._out.flush()

    async def stop(self) -> None:
        self._queue.put_nowait(None)
