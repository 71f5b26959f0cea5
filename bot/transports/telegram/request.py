"""The Bot API connection: python-telegram-bot's `BaseRequest` over aiohttp.

Profiled under load (issue 16), the bot spent more than half its event-loop time in
httpx's connection pool (assigning requests to connections, checking each for expiry
with `getpeername`) and anyio's cancel scopes, and a bigger pool made it worse. aiohttp
keeps idle connections in a plain list and needs no task group per request. What PTB
expects of a request class is kept: the same timeouts and defaults as `HTTPXRequest`,
`TimedOut` for timeouts, `NetworkError` for anything else on the wire (PTB maps HTTP
statuses to `BadRequest`, `Forbidden`, `RetryAfter` … itself, in `BaseRequest.post`).
A failure where the request surely never left carries `NotSent` as its cause, so the
delivery code may repeat it (see `failures.retry_safe`).
"""

from __future__ import annotations

from typing import Any

import aiohttp
from telegram._utils.defaultvalue import DefaultValue
from telegram._utils.types import ODVInput
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

from bot.errors import InternalSignal

__all__ = ["AiohttpRequest", "NotSent"]

READ_S = WRITE_S = CONNECT_S = 5.0
POOL_S = 1.0
MEDIA_WRITE_S = 20.0
KEEP_ALIVE_S = 60.0


class NotSent(InternalSignal):
    """No byte of the request left: no connection was free, or none could be made."""


class AiohttpRequest(BaseRequest):
    """`connections` bounds the open connections; a request waits `pool_timeout` for one."""

    def __init__(self, connections: int = 64, *, pool_timeout: float = POOL_S) -> None:
        self._connections = connections
        self._pool_timeout = pool_timeout
        self._session: aiohttp.ClientSession | None = None

    @property
    def read_timeout(self) -> float:
        return READ_S

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._connections, keepalive_timeout=KEEP_ALIVE_S, ttl_dns_cache=300
            )
            headers = {"User-Agent": self.USER_AGENT}
            self._session = aiohttp.ClientSession(connector=connector, headers=headers)

    async def shutdown(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        if self._session is None or self._session.closed:
            raise RuntimeError("This AiohttpRequest is not initialized!")
        files = request_data.multipart_data if request_data else None
        waits = (
            _given(pool_timeout, self._pool_timeout),
            _given(connect_timeout, CONNECT_S),
            _given(write_timeout, MEDIA_WRITE_S if files else WRITE_S),
            _given(read_timeout, READ_S),
        )
        timeout = aiohttp.ClientTimeout(
            total=_bound(waits), connect=waits[0], sock_connect=waits[1], sock_read=waits[3]
        )
        body = _body(request_data)
        try:
            async with self._session.request(method, url, data=body, timeout=timeout) as res:
                return res.status, await res.read()
        except aiohttp.ConnectionTimeoutError:
            raise TimedOut("The connection pool or the connection timed out") from NotSent()
        except (TimeoutError, aiohttp.ServerTimeoutError) as err:
            raise TimedOut from err
        except aiohttp.ClientConnectorError as err:
            raise NetworkError(f"aiohttp.{type(err).__name__}") from NotSent(err)
        except aiohttp.ClientError as err:
            raise NetworkError(f"aiohttp.{type(err).__name__}") from err


def _given(value: ODVInput[float], default: float) -> float | None:
    """PTB's "not passed" marker means this class's default; None means no limit."""
    if isinstance(value, DefaultValue):
        return default
    return value


def _bound(waits: tuple[float | None, ...]) -> float | None:
    """aiohttp has no write timeout: the whole request is bounded by all four waits
    together, so a write that stalls ends too (httpx bounds each write instead)."""
    return None if None in waits else sum(w for w in waits if w is not None)


def _body(request_data: RequestData | None) -> Any:
    """Form fields as PTB encodes them; with files, one multipart body."""
    if request_data is None:
        return None
    fields = request_data.json_parameters
    files = request_data.multipart_data
    if not files:
        return fields or None
    form = aiohttp.FormData()
    for name, value in fields.items():
        form.add_field(name, value)
    for name, (filename, content, mimetype) in files.items():
        data = content if isinstance(content, bytes) else content.read()
        form.add_field(name, data, filename=filename, content_type=mimetype)
    return form
