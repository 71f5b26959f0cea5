"""A Telegram Bot API emulator for tests: python-telegram-bot talks to it through `base_url`.

    async with Emulator() as emu:
        ana = emu.user("Ana", "es")
        ...  # point the bot at emu.api_base_url with emu.token
        screen = await ana.ask("/start")

It keeps the Bot API's JSON shapes, error codes and wording for the methods the bot
uses, numbers messages as Telegram does (private chats and basic groups from one counter
of the bot's account, see `world`), deletes as the Bot API does (`deleteMessages` skips
ids not in the chat and refuses a batch holding one it may not delete), holds the
48-hour delete rule against a clock tests can move (`advance`), and
can be told to fail (`fail`: 429 with retry_after, 403, 5xx). Tests can queue raw
update dicts of any shape (`inject`, with `poison` for shapes the library rejects),
deliver an update again (`redeliver`), and hold delivery so several updates go out in
one getUpdates batch (`batch`). Files people send are
served by `getFile` and `GET /file/bot<token>/<path>`; in groups the bot's privacy mode
decides what it receives. Deviations from the real service, on purpose: webhooks may
be plain http (tests have no TLS), nothing is rate limited unless a test injects a 429,
and file paths do not expire.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import TracebackType

from tests.telegram_emulator.people import Screen, SimUser
from tests.telegram_emulator.server import Fault, Server, fault
from tests.telegram_emulator.world import Call, Message, World

__all__ = ["Call", "Emulator", "Fault", "Message", "Screen", "SimUser", "fault"]

TOKEN = "7000000001:AAF-emulator-test-token_0123456789abc"


class Emulator:
    """The world, its HTTP server, and helpers to make people and groups."""

    def __init__(self, token: str = TOKEN) -> None:
        self.world = World(bot_id=int(token.split(":")[0]))
        self.server = Server(self.world, token)
        self.token = token

    @property
    def api_base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}/bot"

    async def __aenter__(self) -> Emulator:
        await self.server.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.server.stop()

    def user(self, first_name: str = "Ana", language_code: str | None = "en") -> SimUser:
        """A person in their private chat with the bot."""
        person = self.world.new_person(first_name, language_code)
        return SimUser(self.world, person, self.world.private_chat(person))

    def group(self, title: str, *names: str, supergroup: bool = False) -> list[SimUser]:
        """People in a new group (with the bot in it). `world.privacy` is the bot's privacy
        mode: on, as by default, it receives only commands and replies to its messages."""
        chat = self.world.new_group(title, supergroup=supergroup)
        return [SimUser(self.world, self.world.new_person(n, "en"), chat) for n in names]

    def fail(
        self,
        method: str,
        code: int,
        *,
        times: int = 1,
        retry_after: int | None = None,
        chat: int | None = None,
    ) -> None:
        """The next `times` calls of `method` (for `chat`, if given) fail with `code`
        before doing anything."""
        failure = fault(code, retry_after=retry_after)
        failure.chat = chat
        self.server.fail(method, failure, times)

    def lose_answer(self, method: str, *, chat: int | None = None) -> None:
        """The next call of `method` (for `chat`, if given) is carried out, and its
        answer lost: the connection is cut before it."""
        self.server.lose.append((method.lower(), chat))

    async def outage(self) -> None:
        """The Bot API server is down until `restore`."""
        await self.server.outage()

    async def restore(self) -> None:
        await self.server.restore()

    def advance(self, seconds: float) -> None:
        self.world.advance(seconds)

    def calls(self, method: str) -> list[Call]:
        return [c for c in self.world.calls if c.method.lower() == method.lower()]

    async def inject(self, update: object) -> None:
        """Queue anything as an update, exactly as given (ids from `world.next_update_id`)."""
        self.world.queue_raw(update)
        await self.world.notify()

    async def redeliver(self, update_id: int) -> None:
        """Send an update again, as Telegram does when its receipt was not confirmed."""
        self.world.queue_again(update_id)
        await self.world.notify()

    @asynccontextmanager
    async def batch(self) -> AsyncIterator[None]:
        """Nothing is delivered inside; what was queued there goes out together after."""
        self.world.holding = True
        try:
            yield
        finally:
            self.world.holding = False
            await self.world.notify()

    @property
    def deliveries(self) -> list[tuple[object, int | None]]:
        """Webhook posts so far: (update id, HTTP status)."""
        return self.server.deliveries

    async def wait_for_call(self, method: str, *, after: int = 0, within: float = 10.0) -> None:
        """Until `method` has been called more than `after` times."""
        await self.world.wait_for(lambda: len(self.calls(method)) > after, within)
