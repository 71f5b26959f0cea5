"""A terminal transport: lines in, numbered choices out. Scriptable through a pipe.

Standard input is read by the event loop (`add_reader`), not by a thread blocked in
`readline`: a thread still holding stdin's buffer when the process ends on SIGTERM makes
Python abort ("Fatal Python error: _enter_buffered_busy"). A regular file cannot be
polled, but a read from one never waits, so it is read in short calls off the loop.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from dataclasses import dataclass
from typing import BinaryIO, TextIO

from bot.cases.attachments import ENGLISH as KIND_NAMES
from bot.cases.attachments import english_size, file_kind
from bot.conversation.pseudonym import Pseudonymizer
from bot.model import ChatRef, Handler, Incoming, Reply, UserRef

__all__ = [
    "CHUNK",
    "MAX_LINE_BYTES",
    "STAFF_PREFIX",
    "STAFF_SHOWN",
    "ConsoleTransport",
    "DemoStaff",
    "Item",
]

MAX_LINE_BYTES = 64 * 1024
CHUNK = 64 * 1024
_CLEAR = "\033[2J\033[3J\033[H"

log = logging.getLogger("hrd_bot.console")
Item = bytes | int | None  # a line, the size of an oversized line, or the end of input
STAFF_PREFIX = "staff:"
"""With a demo team, a line typed `staff: /cases` comes from the demo staff member."""
STAFF_SHOWN = "[staff room] "


class _Lines:
    """Splits chunks into lines; an oversized line is passed on as its size, never kept."""

    def __init__(self, queue: asyncio.Queue[Item]) -> None:
        self._queue = queue
        self._partial = b""
        self._oversized = 0  # bytes of the current oversized line seen so far

    def feed(self, chunk: bytes) -> None:
        """A chunk of input; an empty chunk is the end of input."""
        if not chunk:
            if self._partial or self._oversized:
                self._end_line(self._partial)
            self._queue.put_nowait(None)
            return
        *lines, rest = (self._partial + chunk).split(b"\n")
        self._partial = b""
        for line in lines:
            self._end_line(line + b"\n")
        if self._oversized or len(rest) >= MAX_LINE_BYTES:
            self._oversized += len(rest)
        else:
            self._partial = rest

    def _end_line(self, line: bytes) -> None:
        size = self._oversized + len(line)
        self._oversized = 0
        self._queue.put_nowait(line if size <= MAX_LINE_BYTES else size)


@dataclass(frozen=True, slots=True)
class DemoStaff:
    """`hrd-bot run --demo-team`: a staff member and their room, both on this terminal."""

    user: UserRef
    room: ChatRef


class ConsoleTransport:
    """One local user (and, with a demo team, one staff member whose room's messages are
    printed with `[staff room]` before each line). Replies are printed; a TTL cannot be
    honoured on a terminal."""

    name = "console"
    idempotent = True
    connected = True  # a terminal has nothing to connect to

    def __init__(
        self,
        pseudonyms: Pseudonymizer,
        stdin: BinaryIO | None = None,
        stdout: TextIO | None = None,
        language_hint: str | None = None,
        demo: DemoStaff | None = None,
    ) -> None:
        self._demo = demo
        self._stdin = stdin or sys.stdin.buffer
        self._out = stdout or sys.stdout
        self._tty = self._out.isatty()
        self._user = pseudonyms.user("console", os.environ.get("USER", "local"))
        self._chat = ChatRef("console", "local")
        self._hint = language_hint or os.environ.get("LANG", "").split(".")[0] or None
        self._queue: asyncio.Queue[Item] = asyncio.Queue()
        self._stop_reading: list[asyncio.Task[None] | int] = []

    async def run(self, handle: Handler) -> None:
        self._start_reading(asyncio.get_running_loop())
        try:
            start = Incoming(
                self._user,
                self._chat,
                text="/start",
                language_hint=self._hint,
                verified_device=True,
            )
            await self._deliver(handle, start)
            while True:
                self._prompt()
                item = await self._queue.get()
                if item is None:
                    break
                msg = self._incoming(item)
                await self._deliver(handle, msg, staff=msg.chat != self._chat)
        finally:
            self._end_reading(asyncio.get_running_loop())

    def _start_reading(self, loop: asyncio.AbstractEventLoop) -> None:
        fd = self._stdin.fileno()
        lines = _Lines(self._queue)
        try:
            loop.add_reader(fd, self._readable, loop, fd, lines)
        except (PermissionError, ValueError):  # a regular file cannot be polled
            self._stop_reading.append(loop.create_task(self._read_file(loop, fd, lines)))
        else:
            self._stop_reading.append(fd)

    def _readable(self, loop: asyncio.AbstractEventLoop, fd: int, lines: _Lines) -> None:
        try:
            chunk = os.read(fd, CHUNK)  # ready, so this does not wait
        except BlockingIOError:
            return
        except OSError:  # a terminal that hung up
            chunk = b""
        if not chunk:
            loop.remove_reader(fd)
        lines.feed(chunk)

    async def _read_file(self, loop: asyncio.AbstractEventLoop, fd: int, lines: _Lines) -> None:
        while chunk := await loop.run_in_executor(None, os.read, fd, CHUNK):
            lines.feed(chunk)
        lines.feed(b"")

    def _end_reading(self, loop: asyncio.AbstractEventLoop) -> None:
        for reader in self._stop_reading:
            if isinstance(reader, int):
                loop.remove_reader(reader)
            else:
                reader.cancel()
        self._stop_reading.clear()

    def _incoming(self, item: bytes | int) -> Incoming:
        if isinstance(item, int):
            text, size = "", item
        else:
            text, size = item.decode("utf-8", errors="replace").rstrip("\r\n"), len(item)
        user, chat = self._user, self._chat
        if self._demo is not None and text.startswith(STAFF_PREFIX):
            user, chat = self._demo.user, self._demo.room
            text = text.removeprefix(STAFF_PREFIX).strip()
        return Incoming(  # the operator's own terminal: its device is the server itself
            user,
            chat,
            text=text,
            language_hint=self._hint,
            raw_size=size,
            verified_device=True,
        )

    async def _deliver(self, handle: Handler, msg: Incoming, staff: bool = False) -> None:
        """A failure handling one line is logged and told; it never ends the console."""
        try:
            replies = await handle(msg)
        except Exception as exc:
            log.error("console: a message could not be handled: %s", type(exc).__name__)
            self._out.write("That message could not be handled; please try again.\n\n")
            self._out.flush()
            return
        for reply in replies:
            self._show(reply, staff)

    def _prompt(self) -> None:
        if self._tty:
            self._out.write("> ")
            self._out.flush()

    async def send(self, chat: ChatRef, reply: Reply, key: str = "") -> tuple[str, ...]:
        demo = self._demo is not None and chat.address == self._demo.room.address
        self._show(reply, staff=demo)
        return ()

    def _show(self, reply: Reply, staff: bool = False) -> None:
        if reply.erase_chat and self._tty and not staff:
            self._out.write(_CLEAR)
        lines = [reply.text]
        if reply.choices:
            lines.append("")
            lines += [f"  {i}. {choice.label}" for i, choice in enumerate(reply.choices, 1)]
        for sent in reply.files:  # a terminal gets no file: only what it is
            kind = KIND_NAMES[file_kind(sent.media_type)]
            lines.append(f"[{kind}, {english_size(sent.size)}: not shown on the console]")
        if staff:
            lines = [STAFF_SHOWN + line for line in "\n".join(lines).split("\n")]
        self._out.write("\n".join(lines) + "\n\n")
        self._out.flush()

    async def stop(self) -> None:
        self._queue.put_nowait(None)
