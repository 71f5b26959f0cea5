"""The HTTP face of the emulator: `/bot<token>/<method>`, file downloads, long polling,
webhooks, faults.

Requests are parsed as Telegram does: JSON bodies, or form/multipart fields whose
non-string values are JSON (which is how python-telegram-bot sends them). Answers are
`{"ok": true, "result": ...}` or an error body with the error code as HTTP status.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections import deque
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from tests.telegram_emulator.methods import METHODS
from tests.telegram_emulator.world import JSON, ApiError, Call, World, bad_request

_STRING_PARAMS = frozenset(
    {
        "text",
        "callback_query_id",
        "url",
        "secret_token",
        "language_code",
        "parse_mode",
        "data",
        "file_id",
    }
)
_SECRET = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_DESCRIPTIONS = {
    403: "Forbidden: bot was blocked by the user",
    500: "Internal Server Error",
    502: "Bad Gateway",
}


@dataclass(slots=True)
class Fault:
    code: int
    description: str
    retry_after: int | None = None
    chat: int | None = None
    """Only calls for this chat fail (None: any call)."""

    def error(self) -> ApiError:
        parameters = {"retry_after": self.retry_after} if self.retry_after is not None else None
        return ApiError(self.code, self.description, parameters)


@dataclass(slots=True)
class Webhook:
    url: str
    secret: str | None
    last_error: str | None = None


def _typed(name: str, value: str) -> Any:
    if name in _STRING_PARAMS:
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


async def read_params(request: web.Request) -> JSON:
    params: JSON = {k: _typed(k, v) for k, v in request.query.items()}
    if request.content_type == "application/json":
        body = await request.json()
        if isinstance(body, dict):
            params.update(body)
    elif request.method == "POST":
        form = await request.post()
        params.update({k: _typed(k, v) for k, v in form.items() if isinstance(v, str)})
    return params


class Server:
    """One bot token's Bot API endpoint on 127.0.0.1, on a free port."""

    def __init__(self, world: World, token: str) -> None:
        self.world = world
        self.token = token
        self.faults: dict[str, deque[Fault]] = {}
        self.lose: list[tuple[str, int | None]] = []
        """Methods whose next answers are lost: the call is carried out, then the
        connection is cut before the answer (a response lost after the request arrived)."""
        self.webhook: Webhook | None = None
        self.deliveries: list[tuple[object, int | None]] = []
        """Webhook posts: the update's id (None without one) and the HTTP status (None if
        the connection failed)."""
        self._poll_generation = 0
        self._runner: web.AppRunner | None = None
        self._delivery: asyncio.Task[None] | None = None
        self.port = 0

    async def start(self, port: int = 0) -> None:
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._endpoint)
        app.router.add_get("/file/bot{token}/{path:.+}", self._download)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def outage(self) -> None:
        """The server goes away: open connections are cut, new ones refused."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def restore(self) -> None:
        await self.start(self.port)

    async def stop(self) -> None:
        await self._stop_delivery()
        if self._runner is not None:
            await self._runner.cleanup()

    def fail(self, method: str, fault: Fault, times: int = 1) -> None:
        self.faults.setdefault(method.lower(), deque()).extend([fault] * times)

    async def _endpoint(self, request: web.Request) -> web.Response:
        method = request.match_info["method"].lower()
        if request.match_info["token"] != self.token:
            return _answer(ApiError(401, "Unauthorized").body(), 401)
        params = await read_params(request)
        call = Call(request.match_info["method"], params)
        self.world.calls.append(call)
        await self.world.notify()
        try:
            result = await self._dispatch(method, params)
        except ApiError as exc:
            call.status = exc.code
            return _answer(exc.body(), exc.code)
        lost = (method, params.get("chat_id"))
        if (lost in self.lose or (method, None) in self.lose) and request.transport is not None:
            self.lose.remove(lost if lost in self.lose else (method, None))
            call.status = 0
            request.transport.abort()
        return _answer({"ok": True, "result": result}, 200)

    async def _download(self, request: web.Request) -> web.Response:
        """`GET /file/bot<token>/<file_path>`: the bytes, or Telegram's 404 body."""
        path = request.match_info["path"]
        self.world.calls.append(Call("download", {"file_path": path}))
        stored = next((f for f in self.world.files.values() if f.path == path), None)
        if request.match_info["token"] != self.token or stored is None:
            return _answer(ApiError(404, "Not Found").body(), 404)
        self.world.downloads.append(path)
        return web.Response(body=stored.data, content_type="application/octet-stream")

    async def _dispatch(self, method: str, params: JSON) -> Any:
        queued = self.faults.get(method)
        if queued and queued[0].chat in (None, params.get("chat_id")):
            raise queued.popleft().error()
        if method == "getupdates":
            return await self._get_updates(params)
        if method in ("setwebhook", "deletewebhook", "getwebhookinfo"):
            return await getattr(self, f"_{method}")(params)
        if method not in METHODS:
            raise ApiError(404, "Not Found")
        return await METHODS[method](self.world, params)

    async def _get_updates(self, params: JSON) -> list[JSON]:
        """Long polling: confirm below `offset`, then wait up to `timeout` for more."""
        world = self.world
        if self.webhook is not None:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        self._poll_generation += 1
        generation = self._poll_generation
        offset = int(params.get("offset") or 0)
        if offset:
            world.updates = [u for u in world.updates if _pending(world, u, offset)]
        if allowed := params.get("allowed_updates"):
            world.allowed_updates = list(allowed)
        await world.notify()
        timeout = float(params.get("timeout") or 0)
        with contextlib.suppress(TimeoutError):
            await world.wait_for(
                lambda: (
                    (bool(world.updates) and not world.holding)
                    or generation != self._poll_generation
                ),
                timeout,
            )
        if generation != self._poll_generation:
            raise ApiError(
                409,
                "Conflict: terminated by other getUpdates request; "
                "make sure that only one bot instance is running",
            )
        if world.holding:
            return []
        limit = int(params.get("limit") or 100)
        batch = world.updates[: max(1, min(limit, 100))]
        world.redelivered -= {_id_of(u) for u in batch}
        return batch

    async def _setwebhook(self, params: JSON) -> bool:
        url = str(params.get("url") or "")
        secret = params.get("secret_token")
        if secret is not None and not _SECRET.match(str(secret)):
            raise bad_request("secret token contains unallowed characters")
        if not url:
            return await self._deletewebhook(params)
        if not url.startswith(("https://", "http://")):
            raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        await self._stop_delivery()
        if params.get("drop_pending_updates"):
            self.world.updates.clear()
        if allowed := params.get("allowed_updates"):
            self.world.allowed_updates = list(allowed)
        self.webhook = Webhook(url, str(secret) if secret else None)
        self._delivery = asyncio.create_task(self._deliver(self.webhook))
        self._poll_generation += 1
        await self.world.notify()
        return True

    async def _deletewebhook(self, params: JSON) -> bool:
        await self._stop_delivery()
        self.webhook = None
        if params.get("drop_pending_updates"):
            self.world.updates.clear()
        return True

    async def _getwebhookinfo(self, params: JSON) -> JSON:
        info: JSON = {
            "url": self.webhook.url if self.webhook else "",
            "has_custom_certificate": False,
            "pending_update_count": len(self.world.updates),
        }
        if self.webhook and self.webhook.last_error:
            info["last_error_date"] = self.world.now()
            info["last_error_message"] = self.webhook.last_error
        return info

    async def _stop_delivery(self) -> None:
        if self._delivery is not None:
            self._delivery.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._delivery
            self._delivery = None

    async def _deliver(self, hook: Webhook) -> None:
        """Post pending updates one by one, in order; retry one that was not accepted."""
        headers = {"X-Telegram-Bot-Api-Secret-Token": hook.secret} if hook.secret else {}
        async with aiohttp.ClientSession() as session:
            while True:
                await self.world.wait_for(
                    lambda: bool(self.world.updates) and not self.world.holding, within=3600
                )
                update = self.world.updates[0]
                status: int | None = None
                try:
                    async with session.post(hook.url, json=update, headers=headers) as response:
                        status = response.status
                        accepted = status == 200
                        hook.last_error = None if accepted else f"Wrong response: {status}"
                except aiohttp.ClientError as exc:
                    accepted, hook.last_error = False, f"Connection failed: {type(exc).__name__}"
                self.deliveries.append((_id_of(update), status))
                if accepted:
                    self.world.updates.remove(update)
                    await self.world.notify()
                else:
                    await asyncio.sleep(0.05)


def _id_of(update: object) -> int | None:
    update_id = update.get("update_id") if isinstance(update, dict) else None
    return update_id if isinstance(update_id, int) else None


def _pending(world: World, update: object, offset: int) -> bool:
    """Not yet confirmed by `offset` (or queued again as if its confirmation was lost);
    an entry without an id can never be confirmed."""
    update_id = _id_of(update)
    return update_id is None or update_id >= offset or update_id in world.redelivered


def _answer(body: JSON, status: int) -> web.Response:
    return web.json_response(body, status=status)


def fault(code: int, description: str | None = None, retry_after: int | None = None) -> Fault:
    """A 429 says when to retry; other codes carry Telegram's usual wording."""
    if code == 429:
        wait = 1 if retry_after is None else retry_after
        return Fault(429, f"Too Many Requests: retry after {wait}", wait)
    return Fault(code, description or _DESCRIPTIONS.get(code, "Bad Request"), retry_after)
