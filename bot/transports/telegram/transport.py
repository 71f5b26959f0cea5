"""The Telegram transport: a python-telegram-bot `Application` driving the bot's handler.

It starts the application (long polling, or a webhook when one is configured), sets
the command menu, and runs the sweeper that deletes expired messages. Everything that
has to do with one update lives in `reading` (an update the library cannot read skips
only itself), `seen` (one delivered twice is handled once), `dispatch`, `incoming`
and `outbox`.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from telegram import Bot, Update
from telegram.error import InvalidToken, NetworkError, TelegramError
from telegram.ext import Application, ApplicationBuilder, TypeHandler

from bot.cluster.worker import Membership
from bot.config import ConfigError
from bot.conversation.sweeper import Sweeper
from bot.model import MAX_ATTACHMENT_BYTES, Attachment, ChatRef, Handler, Reply
from bot.transports.port import TransportPort
from bot.transports.telegram.buttons import ButtonBook
from bot.transports.telegram.commands import publish_commands
from bot.transports.telegram.config import TelegramConfig
from bot.transports.telegram.dispatch import Dispatcher
from bot.transports.telegram.files import Media, fetch
from bot.transports.telegram.forgotten import epilogue
from bot.transports.telegram.inboxed import InboxedUpdates
from bot.transports.telegram.incoming import ALLOWED_UPDATES, PLATFORM, from_update
from bot.transports.telegram.outbox import Outbox
from bot.transports.telegram.priority import PriorityLimiter
from bot.transports.telegram.rawbot import RawBot
from bot.transports.telegram.reading import QuietRequest, ScreeningRequest, UpdateReader
from bot.transports.telegram.seen import SeenUpdates
from bot.transports.telegram.shared_buttons import SharedButtonBook
from bot.transports.telegram.webhook import WebhookServer

__all__ = ["CALLBACK_KEY", "TelegramTransport"]

log = logging.getLogger("hrd_bot.telegram")
CALLBACK_KEY = "telegram-callback"
TelegramApp = Application[Any, Any, Any, Any, Any, Any]
Stopper = Callable[[], Awaitable[None]]


class TelegramTransport:
    """One bot account. `run` returns after `stop`; nothing Telegram-specific leaves it."""

    name = PLATFORM
    idempotent = False  # Telegram cannot tell whether a send whose answer was lost arrived

    def __init__(
        self, port: TransportPort, config: TelegramConfig, cluster: Membership | None = None
    ) -> None:
        """`cluster`: one worker of several behind the webhook (`bot.cluster`)."""
        self._port = port
        self._config = config
        self._cluster = cluster
        self._inboxed: InboxedUpdates | None = None
        self._trail = port.chat_trail(PLATFORM)
        self._stopping = asyncio.Event()
        self._dispatcher: Dispatcher | None = None
        self._seen = SeenUpdates(port.storage)
        self._reader = UpdateReader(self._seen.seen)

    @property
    def connected(self) -> bool:
        """Once Telegram answered getMe and polling (or the webhook) started, until stop."""
        return self._dispatcher is not None

    @property
    def skipped_updates(self) -> dict[str, int]:
        """Updates skipped as unreadable since the start, by kind ("message"…), for metrics."""
        return dict(self._reader.skipped)

    @property
    def duplicate_updates(self) -> int:
        """Updates delivered again (and not handled again) since the start."""
        return self._seen.duplicates

    async def run(self, handle: Handler) -> None:
        application = self._build()
        if not await self._initialize(application):
            return
        bot = application.bot
        await self._seen.load(bot.id)
        port = self._port
        buttons = await self._buttons()
        outbox = Outbox(bot, self._trail, buttons, epilogue=epilogue(lambda: port.library))

        async def fetch_file(media: Media) -> Attachment | None:
            return await fetch(bot, media, MAX_ATTACHMENT_BYTES)

        dispatcher = Dispatcher(
            handle,
            port.pseudonyms,
            buttons,
            self._trail,
            outbox,
            fetch=fetch_file,
            reader=self._reader,
            seen=self._seen,
            username=bot.username,
        )
        pseudonyms, username = port.pseudonyms, bot.username
        self._reader.convert = lambda update: from_update(update, pseudonyms, username)
        self._join(bot, dispatcher, buttons)
        application.add_handler(TypeHandler(Update, dispatcher.on_update))
        application.add_error_handler(_log_error)
        sweeper = Sweeper(self._trail, outbox.delete, interval=self._config.sweep_interval)
        stop_receiving: Stopper | None = None
        try:
            await publish_commands(bot, port.library)
            await application.start()
            stop_receiving = await self._start_receiving(application)
            sweeper.start(self._port.scheduler)
            self._dispatcher = dispatcher
            log.info("telegram: running (%s)", "webhook" if self._config.webhook else "polling")
            await self._stopping.wait()
        finally:
            self._dispatcher = None
            await sweeper.stop()
            if stop_receiving is not None:
                await stop_receiving()
            if application.running:
                await application.stop()
            await self._trail.flush()
            await self._seen.flush()
            await application.shutdown()

    def _join(self, bot: Bot, dispatcher: Dispatcher, buttons: ButtonBook) -> None:
        """One worker of several: updates go through the shared inbox (`inboxed`)."""
        if self._cluster is not None and isinstance(buttons, SharedButtonBook):
            port, reader = self._port, self._reader
            self._inboxed = InboxedUpdates(port, self._cluster, bot, reader, dispatcher, buttons)

    async def _buttons(self) -> ButtonBook:
        """Shared by every worker when there are several (`shared_buttons`)."""
        secret = await self._port.storage.secret(CALLBACK_KEY)
        if self._cluster is None or self._config.webhook is None:
            return ButtonBook(secret)
        return SharedButtonBook(secret, self._port.storage, self._port.pseudonyms)

    async def send(self, chat: ChatRef, reply: Reply, key: str = "") -> tuple[str, ...]:
        if self._dispatcher is None:
            raise RuntimeError("the Telegram transport is not running")
        return await self._dispatcher.send(chat, reply)

    async def stop(self) -> None:
        self._stopping.set()

    def _build(self) -> TelegramApp:
        config = self._config
        limiter = PriorityLimiter(overall_max_rate=config.max_rate, max_retries=config.max_retries)
        bot = RawBot(
            config.token,
            base_url=config.api_base_url,
            base_file_url=config.file_base_url,
            request=QuietRequest(connections=256),
            get_updates_request=ScreeningRequest(self._reader),
            rate_limiter=limiter,
        )
        builder = ApplicationBuilder().bot(bot).concurrent_updates(256).job_queue(None)
        if config.webhook is not None:
            builder = builder.updater(None)
        application: TelegramApp = builder.build()
        return application

    async def _initialize(self, application: TelegramApp) -> bool:
        """Wait for Telegram to answer (it may be unreachable at boot); False if stopped first."""
        delay = 1.0
        while not self._stopping.is_set():
            try:
                await application.initialize()
                return True
            except InvalidToken:
                raise ConfigError("TELEGRAM_BOT_TOKEN was rejected by Telegram") from None
            except NetworkError as exc:
                log.warning("telegram: not reachable at start (%s); retrying", type(exc).__name__)
            try:
                await asyncio.wait_for(self._stopping.wait(), delay)
            except TimeoutError:
                delay = min(delay * 2, 60.0)
        return False

    async def _start_receiving(self, application: TelegramApp) -> Stopper:
        webhook = self._config.webhook
        if webhook is None:
            updater = application.updater
            assert updater is not None
            await updater.start_polling(
                timeout=self._config.poll_timeout,
                allowed_updates=list(ALLOWED_UPDATES),
                bootstrap_retries=3,
                error_callback=_log_polling_error,
            )
            return updater.stop
        inboxed = self._inboxed
        receive = inboxed.receive if inboxed is not None else None
        queue = application.update_queue
        server = WebhookServer(webhook, application.bot, queue, self._reader, receive)
        server.start()
        consuming = asyncio.create_task(inboxed.consumer.run()) if inboxed else None
        await application.bot.set_webhook(
            webhook.url, secret_token=webhook.secret, allowed_updates=list(ALLOWED_UPDATES)
        )

        async def stop() -> None:
            await server.stop()
            if consuming is not None and inboxed is not None:
                await inboxed.consumer.stop()
                await consuming

        return stop


def _where(exc: BaseException) -> str:
    """Where an error happened (file and line), which tells a maintainer enough without
    printing the exception's message, which may quote what a user wrote."""
    frames = traceback.extract_tb(exc.__traceback__)
    return f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""


async def _log_error(_update: object, context: Any) -> None:
    error: BaseException | None = context.error
    if error is not None:
        log.error("telegram: an update failed: %s%s", type(error).__name__, _where(error))


def _log_polling_error(exc: TelegramError) -> None:
    log.warning("telegram: polling failed (%s); retrying", type(exc).__name__)
