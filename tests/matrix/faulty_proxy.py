"""A fault-injecting HTTP/1.1 proxy on 127.0.0.1, between the bot's nio client and Synapse.

Test infrastructure in front of the real homeserver, not a stand-in for it: every request
is forwarded, unless a rule aimed at one room's event sends (`PUT …/rooms/{room}/send/…`)
answers in Synapse's place (a 5xx, or a 429 with `retry_after_ms`), or forwards the send
and then cuts the connection before the answer (a response lost after the request
arrived), or forwards it and never answers (a send that hangs until the bot gives up).
`outage()` refuses every connection until `restore()`. Each send to a room is logged
with its transaction id, the status the bot saw (0: no answer) and the event id Synapse
gave, so a test can tell a deduplicated retry from a double.
The people in the tests talk to Synapse directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import aiohttp

__all__ = ["FaultyProxy", "Sent"]

LOST = 0
HELD = -1
SEND = re.compile(r"^/_matrix/client/(?:r0|v3)/rooms/([^/]+)/send/[^/]+/([^/?]+)")
HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host", "upgrade"}
REASONS = {429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway"}
REASONS |= {503: "Service Unavailable", 504: "Gateway Timeout"}
BAD_GATEWAY = b"<html><body><h1>502 Bad Gateway</h1></body></html>"


@dataclass(frozen=True, slots=True)
class Sent:
    """One event send to a watched room, as the bot's client experienced it."""

    txn: str
    status: int
    event_id: str | None
    at: float


@dataclass(slots=True)
class _Rule:
    room: str
    status: int
    times: int
    retry_after_ms: int | None


@dataclass(frozen=True, slots=True)
class _Request:
    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes


class FaultyProxy:
    """`start()` listens on a free port; point the bot's homeserver URL at `url`."""

    def __init__(self, upstream: str) -> None:
        self._upstream = upstream.rstrip("/")
        self._rules: list[_Rule] = []
        self._sends: dict[str, list[Sent]] = {}
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[Any]] = set()
        self._session: aiohttp.ClientSession | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> FaultyProxy:
        timeout = aiohttp.ClientTimeout(total=None)
        self._session = aiohttp.ClientSession(timeout=timeout, auto_decompress=False)
        await self.restore()
        return self

    async def stop(self) -> None:
        """Close everything and let each connection's handler end (a handler cancelled at
        loop close makes asyncio log an error)."""
        await self.outage()
        if self._session is not None:
            await self._session.close()
        if self._handlers:
            await asyncio.wait(self._handlers, timeout=10)

    async def outage(self) -> None:
        """Refuse every connection (the port is closed) and cut those in flight."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._open):
            writer.transport.abort()
        self._open.clear()

    async def restore(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
            self.port = int(self._server.sockets[0].getsockname()[1])

    def fail(
        self, room: str, status: int, *, times: int, retry_after_ms: int | None = None
    ) -> None:
        """Answer the next `times` sends to `room` with `status`, in Synapse's place."""
        self._rules.append(_Rule(room, status, times, retry_after_ms))

    def clear(self) -> None:
        """Drop every rule not yet used up: the room's sends go through again."""
        self._rules.clear()

    def lose_answer(self, room: str, *, times: int = 1) -> None:
        """Forward the next `times` sends to `room`, then cut the connection unanswered."""
        self._rules.append(_Rule(room, LOST, times, None))

    def hold_answer(self, room: str, *, times: int = 1) -> None:
        """Forward the next `times` sends to `room`, then answer nothing until the bot
        closes the connection."""
        self._rules.append(_Rule(room, HELD, times, None))

    def sends(self, room: str) -> list[Sent]:
        return list(self._sends.get(room, []))

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._open.add(writer)
        if (task := asyncio.current_task()) is not None:
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)
        try:
            while (request := await _read_request(reader)) is not None:
                kept = await self._answer(request, writer)
                if kept is not None:
                    if kept == HELD:
                        await reader.read()  # until the bot gives up and hangs up
                    break
        except (ConnectionError, asyncio.IncompleteReadError, aiohttp.ClientError):
            pass
        finally:
            self._open.discard(writer)
            writer.transport.abort()

    async def _answer(self, request: _Request, writer: asyncio.StreamWriter) -> int | None:
        """Answer one request; or return the rule (`LOST`, `HELD`) that keeps the answer."""
        send = SEND.match(urlsplit(request.target).path) if request.method == "PUT" else None
        room, txn = (unquote(send.group(1)), unquote(send.group(2))) if send else ("", "")
        rule = self._rule(room) if send else None
        if rule is not None and rule.status > 0:
            status, body, kind = _refusal(rule)
            self._log(room, txn, status, None)
            await _respond(writer, status, [("Content-Type", kind)], body)
            return None
        status, headers, body = await self._forward(request)
        if send:
            event_id = _event_id(body) if status == 200 else None
            self._log(room, txn, LOST if rule is not None else status, event_id)
        if rule is not None:
            return rule.status
        await _respond(writer, status, headers, body)
        return None

    def _rule(self, room: str) -> _Rule | None:
        for rule in self._rules:
            if rule.room == room and rule.times > 0:
                rule.times -= 1
                return rule
        return None

    def _log(self, room: str, txn: str, status: int, event_id: str | None) -> None:
        self._sends.setdefault(room, []).append(Sent(txn, status, event_id, time.monotonic()))

    async def _forward(self, request: _Request) -> tuple[int, list[tuple[str, str]], bytes]:
        assert self._session is not None
        headers = [(k, v) for k, v in request.headers if k.lower() not in HOP]
        async with self._session.request(
            request.method,
            self._upstream + request.target,
            headers=headers,
            data=request.body if request.body else None,
            allow_redirects=False,
        ) as response:
            body = await response.read()
            kept = [(k, v) for k, v in response.headers.items() if k.lower() not in HOP]
            return response.status, kept, body


def _refusal(rule: _Rule) -> tuple[int, bytes, str]:
    if rule.status == 429:
        answer = {"errcode": "M_LIMIT_EXCEEDED", "error": "Too Many Requests"}
        if rule.retry_after_ms is not None:
            answer["retry_after_ms"] = rule.retry_after_ms  # type: ignore[assignment]
        return 429, json.dumps(answer).encode(), "application/json"
    return rule.status, BAD_GATEWAY, "text/html"


def _event_id(body: bytes) -> str | None:
    with contextlib.suppress(ValueError):
        found = json.loads(body).get("event_id")
        return found if isinstance(found, str) else None
    return None


async def _read_request(reader: asyncio.StreamReader) -> _Request | None:
    line = await reader.readline()
    if not line.strip():
        return None
    method, target, _ = line.decode("latin-1").split(" ", 2)
    headers: list[tuple[str, str]] = []
    while (raw := await reader.readline()) not in (b"\r\n", b"\n", b""):
        name, _, value = raw.decode("latin-1").partition(":")
        headers.append((name.strip(), value.strip()))
    fields = {name.lower(): value for name, value in headers}
    if fields.get("transfer-encoding", "").lower() == "chunked":
        body = await _read_chunked(reader)
    else:
        body = await reader.readexactly(int(fields.get("content-length", "0")))
    return _Request(method, target, headers, body)


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts = []
    while size := int((await reader.readline()).split(b";")[0].strip() or b"0", 16):
        parts.append(await reader.readexactly(size))
        await reader.readline()
    while (await reader.readline()) not in (b"\r\n", b"\n", b""):
        pass
    return b"".join(parts)


async def _respond(
    writer: asyncio.StreamWriter, status: int, headers: list[tuple[str, str]], body: bytes
) -> None:
    reason = REASONS.get(status, "OK" if status < 300 else "Error")
    lines = [f"HTTP/1.1 {status} {reason}", *(f"{k}: {v}" for k, v in headers)]
    lines.append(f"Content-Length: {len(body)}")
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
    await writer.drain()
