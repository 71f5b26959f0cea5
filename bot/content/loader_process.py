"""The bot's handle on the content loader process (`bot.content.loader_child`).

Started on first use and kept, so the loader's cache of unchanged files lasts from one
reload to the next. A process that dies, hangs or answers out of step is killed, waited for
(no zombie) and reported as a problem; the next reload starts a new one. It is a fresh
interpreter (`python -m`, never a fork of the bot's threads) with none of the bot's open
files and none of its secrets in its environment, in a session of its own (signals from the
bot's terminal are the bot's to handle), and it ends when the bot closes its input.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import signal
import sys
from collections.abc import AsyncIterator, Collection
from pathlib import Path

import bot
from bot.content.loader_child import HEADER, MAX_FRAME, Digest, Plan, Request, frame
from bot.errors import InternalSignal

__all__ = [
    "CLOSE_SECONDS",
    "ENDING_SECONDS",
    "LOAD_SECONDS",
    "MODULE",
    "PIECE_SECONDS",
    "SECRETS",
    "Exchange",
    "LoaderFailed",
    "LoaderProcess",
]

log = logging.getLogger("hrd_bot.content")
MODULE = "bot.content.loader_child"
LOAD_SECONDS = 60.0
"""A load's longest wait, start of the process included. The loader's own limits end even
a hostile file within seconds; past this, the process is stuck and is killed."""
PIECE_SECONDS = 10.0
"""The longest wait for the next piece once the plan has come: they are written at once."""
CLOSE_SECONDS = 5.0
ENDING_SECONDS = 1.0
"""How long a process that closed its output gets to end, so its exit status can be told."""
SECRETS = ("HRD_BOT_", "TELEGRAM_", "MATRIX_", "CREDENTIALS_DIRECTORY")


class LoaderFailed(InternalSignal):
    """The loader process could not answer; the message says why, for a `Problem`."""


def _environment() -> dict[str, str]:
    source = str(Path(bot.__file__).resolve().parents[1])
    env = {k: v for k, v in os.environ.items() if not k.startswith(SECRETS)}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (source, env.get("PYTHONPATH"))))
    return env


def _ending(returncode: int | None) -> str:
    if returncode is None:
        return "it stopped answering"
    if returncode < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-returncode).name}"
        return f"killed by signal {-returncode}"
    return f"exit status {returncode}"


class Exchange:
    """One request's answer, read piece by piece as the caller is ready for them."""

    def __init__(self, process: asyncio.subprocess.Process, plan: Plan) -> None:
        self._process = process
        self.plan = plan
        self._left = list(plan.sent)

    @property
    def finished(self) -> bool:
        return not self._left

    async def piece(self) -> tuple[Digest, bytes]:
        """The next piece the plan announced, as its digest and pickle."""
        name = self._left.pop(0)
        return name, await _read(self._process, PIECE_SECONDS)


async def _read(process: asyncio.subprocess.Process, seconds: float) -> bytes:
    assert process.stdout is not None
    try:
        async with asyncio.timeout(seconds):
            header = await process.stdout.readexactly(HEADER.size)
            (size,) = HEADER.unpack(header)
            if size > MAX_FRAME:
                raise LoaderFailed("content loading stopped: the loader answered out of step")
            return await process.stdout.readexactly(size)
    except TimeoutError:
        raise LoaderFailed(f"content loading stopped: no answer within {seconds:g} s") from None


class LoaderProcess:
    """One loader process at a time, for one caller at a time (the `Reloader`'s lock)."""

    def __init__(self) -> None:
        self._process: asyncio.subprocess.Process | None = None
        self._closed = False
        self._loading = False

    @contextlib.asynccontextmanager
    async def load(self, root: Path, held: Collection[Digest]) -> AsyncIterator[Exchange]:
        """Ask for `root`; the exchange must be read to its end inside the block. On any
        failure (or cancellation) the process is killed, and LoaderFailed says why."""
        process = await self._running()
        done = False
        self._loading = True
        try:
            exchange = await self._ask(process, Request(str(root), frozenset(held)))
            yield exchange
            done = exchange.finished
        except (asyncio.IncompleteReadError, ConnectionError):
            returncode = await self._discard(process, grace=ENDING_SECONDS)
            raise LoaderFailed(
                f"content loading stopped: the loader process ended ({_ending(returncode)})"
            ) from None
        finally:
            self._loading = False
            if not done:
                await self._discard(process)

    async def _ask(self, process: asyncio.subprocess.Process, request: Request) -> Exchange:
        assert process.stdin is not None
        process.stdin.write(frame(pickle.dumps(request, protocol=pickle.HIGHEST_PROTOCOL)))
        await process.stdin.drain()
        data = await _read(process, LOAD_SECONDS)
        plan = pickle.loads(data)  # noqa: S301 (our own child's answer, over our own pipe)
        if not isinstance(plan, Plan):
            raise LoaderFailed("content loading stopped: the loader answered out of step")
        return Exchange(process, plan)

    async def _running(self) -> asyncio.subprocess.Process:
        if self._closed:
            raise LoaderFailed("content loading stopped: the bot is shutting down")
        if self._process is not None and self._process.returncode is None:
            return self._process
        if self._process is not None:
            log.warning("content loader process had ended (%s)", _ending(self._process.returncode))
        level = logging.getLevelName(logging.getLogger().getEffectiveLevel())
        try:
            self._process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-P",  # not the working folder on the import path: only the bot's own code
                "-m",
                MODULE,
                level,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                env=_environment(),
                start_new_session=True,  # a Ctrl-C or hangup at the terminal is the bot's
            )
        except OSError as exc:
            self._process = None
            raise LoaderFailed(
                f"content loading stopped: the loader process did not start ({exc.strerror})"
            ) from None
        return self._process

    async def _discard(self, process: asyncio.subprocess.Process, grace: float = 0.0) -> int | None:
        """Kill and reap the process, after `grace` seconds to end on its own (if it is
        the current one, forget it)."""
        if self._process is process:
            self._process = None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace):
                return await process.wait()
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CLOSE_SECONDS):
                return await process.wait()
        return process.returncode

    async def close(self) -> None:
        """End the process: its input closes, so it leaves at once; one in the middle of a
        load (or slow to leave) is killed. Either way it is reaped before this returns."""
        self._closed = True
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        if self._loading:
            await self._discard(process)
            return
        assert process.stdin is not None
        process.stdin.close()
        try:
            async with asyncio.timeout(CLOSE_SECONDS):
                await process.wait()
        except TimeoutError:
            await self._discard(process)
