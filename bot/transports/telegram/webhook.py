"""The webhook receiver: Telegram posts updates here, signed with our secret token.

PTB has its own receiver, but it compares the token with `!=` (timing leak) and logs
whole update bodies (message text) when one fails to parse. This one compares with
`hmac.compare_digest`, caps the body size, and logs nothing a request carries.

Any JSON from Telegram is taken (200): an update the library cannot read is skipped
(see `reading`), and asking Telegram to send it again would not make it readable. A
body that is not JSON at all cannot be an update and gets a 400.

With several workers (`bot.cluster`) an update is answered 200 only once it is stored
in the shared inbox (`receive`); a database fault answers 503, and Telegram retries.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Awaitable, Callable
from http import HTTPStatus

import tornado.web
from telegram import Bot
from tornado.httpserver import HTTPServer

from bot.transports.telegram.config import WebhookConfig
from bot.transports.telegram.reading import UNKNOWN, UpdateReader, quiet_json

__all__ = ["WebhookServer"]

log = logging.getLogger("hrd_bot.telegram")
MAX_BODY = 1024 * 1024
Receive = Callable[[object], Awaitable[bool]]
AUTH_HEADER = "X-Telegram-Bot-Api-Secret-Token"


class _UpdateHandler(tornado.web.RequestHandler):
    """POST only; a missing or wrong token is a 403 that says nothing more."""

    SUPPORTED_METHODS = ("POST",)

    def initialize(
        self,
        bot: Bot,
        queue: asyncio.Queue[object],
        secret: str,
        reader: UpdateReader,
        receive: Receive | None,
    ) -> None:
        self._bot = bot
        self._queue = queue
        self._secret = secret.encode()
        self._reader = reader
        self._receive = receive

    async def post(self) -> None:
        token = self.request.headers.get(AUTH_HEADER, "").encode()
        if not hmac.compare_digest(token, self._secret):
            log.warning("telegram webhook: a request without the right secret was refused")
            raise tornado.web.HTTPError(HTTPStatus.FORBIDDEN)
        try:
            body = quiet_json(self.request.body)
        except ValueError:
            self._reader.skip(UNKNOWN)
            raise tornado.web.HTTPError(HTTPStatus.BAD_REQUEST) from None
        if self._receive is not None and await self._stored(body):
            self.set_status(HTTPStatus.OK)
            return
        update = self._reader.read(body, self._bot)
        if update is not None:
            await self._queue.put(update)
        self.set_status(HTTPStatus.OK)

    async def _stored(self, body: object) -> bool:
        assert self._receive is not None
        try:
            return await self._receive(body)
        except Exception as exc:  # the database: Telegram sends it again
            log.warning("telegram webhook: an update was not stored (%s)", type(exc).__name__)
            raise tornado.web.HTTPError(HTTPStatus.SERVICE_UNAVAILABLE) from None

    def log_exception(self, *args: object) -> None:
        """Tornado would log the request line and body; the handler already logged the kind."""


class _Quiet(tornado.web.Application):
    def log_request(self, handler: tornado.web.RequestHandler) -> None:
        """No access log: it would hold addresses of Telegram's servers and timing only."""


class WebhookServer:
    """Listens on `config.listen:port` at the path of `config.url` (TLS ends at a proxy)."""

    def __init__(
        self,
        config: WebhookConfig,
        bot: Bot,
        queue: asyncio.Queue[object],
        reader: UpdateReader,
        receive: Receive | None = None,
    ) -> None:
        handler = {
            "bot": bot,
            "queue": queue,
            "secret": config.secret,
            "reader": reader,
            "receive": receive,
        }
        routes = [(config.path, _UpdateHandler, handler)]
        self._server = HTTPServer(_Quiet(routes), max_body_size=MAX_BODY, xheaders=True)
        self._config = config

    def start(self) -> None:
        self._server.listen(self._config.port, address=self._config.listen)

    async def stop(self) -> None:
        self._server.stop()
        await self._server.close_all_connections()
