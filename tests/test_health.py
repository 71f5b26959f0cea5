"""The health and metrics endpoint on a real App, a real database (SQLCipher and PostgreSQL)
and a real scheduler, over HTTP on 127.0.0.1 (an ephemeral port)."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from bot.app import App
from bot.config import ConfigError, Settings
from bot.conversation.flood import FloodGuard
from bot.delivery import Reason, Undelivered
from bot.health import Address, parse_address
from bot.health.counts import Counts
from bot.health.metrics import Metrics
from bot.health.readiness import Readiness
from bot.health.server import HealthServer
from bot.model import ChatRef, Reply
from bot.safety.jobs import SafetyJobs
from bot.storage.database import Connection
from tests.conftest import TEST_KEY
from tests.fakes import FakeTransport, FakeUser
from tests.metrics_text import one, samples
from tests.processes import ConsoleBot, bot_env, run_cli
from tests.reporting import Team, submit_report
from tests.telegram_emulator import Emulator
from tests.telegram_emulator.harness import onboard, running_bot

pytestmark = pytest.mark.backends


@dataclass
class Served:
    jobs: SafetyJobs
    http: aiohttp.ClientSession

    async def ready(self) -> tuple[int, dict[str, object]]:
        async with self.http.get("/ready") as answer:
            return answer.status, json.loads(await answer.text())

    async def metrics(self) -> dict[tuple[str, frozenset[tuple[str, str]]], int]:
        async with self.http.get("/metrics") as answer:
            assert answer.status == 200
            assert answer.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            return samples(await answer.text())


@asynccontextmanager
async def serving(app: App) -> AsyncIterator[Served]:
    jobs = SafetyJobs(app.db, casework=app.casework, sessions=app.sessions)
    jobs.start(app.scheduler)
    app.scheduler.start()
    server = HealthServer.of(app, lambda: jobs.running)
    await server.start(Address("127.0.0.1", 0))
    try:
        async with aiohttp.ClientSession(f"http://127.0.0.1:{server.port}") as http:
            yield Served(jobs, http)
    finally:
        await server.stop()
        jobs.stop()
        app.scheduler.shutdown()


@pytest.fixture
async def served(app: App, transport: FakeTransport) -> AsyncIterator[Served]:
    app.attach(transport)
    async with serving(app) as it:
        yield it


async def test_live_and_ready_answer_when_all_is_well(served: Served) -> None:
    async with served.http.get("/live") as live:
        assert live.status == 200
        assert live.headers["Cache-Control"] == "no-store"
    status, body = await served.ready()
    assert status == 200
    assert body == {
        "ready": True,
        "failed": [],
        "checks": {"transport:fake": True, "database": True, "scheduler": True},
    }


def _read_only(conn: Connection, *, on: bool) -> None:
    """The connection refuses writes from now on (`on`), or takes them again."""
    if conn.sqlite:
        conn.execute(f"PRAGMA query_only = {'ON' if on else 'OFF'}")
    else:
        conn.execute(f"SET default_transaction_read_only = {'on' if on else 'off'}")


async def test_ready_is_503_naming_the_database_once_it_is_read_only(
    served: Served, app: App, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="hrd_bot.health")
    await app.db.run(lambda conn: _read_only(conn, on=True))
    for _ in range(3):
        status, body = await served.ready()
        assert status == 503
        assert body["failed"] == ["database"]
    await app.db.run(lambda conn: _read_only(conn, on=False))
    assert (await served.ready())[0] == 200
    said = [r.getMessage() for r in caplog.records if r.name == "hrd_bot.health"]
    assert [line.split(";")[0] for line in said] == ["health: not ready (database", "health: ready"]


async def test_ready_is_503_naming_the_scheduler_once_it_stopped(served: Served) -> None:
    served.jobs.stop()
    status, body = await served.ready()
    assert status == 503
    assert body["failed"] == ["scheduler"]


async def test_ready_is_503_naming_a_transport_that_is_not_connected(
    served: Served, transport: FakeTransport
) -> None:
    transport.connected = False
    status, body = await served.ready()
    assert (status, body["failed"]) == (503, ["transport:fake"])
    metrics = await served.metrics()
    assert one(metrics, "hrd_bot_transport_connected", transport="fake") == 0


async def test_a_flood_of_probes_costs_one_database_write(app: App) -> None:
    readiness = Readiness({}, app.db, lambda: True)
    before = app.db.calls
    results = await asyncio.gather(*(readiness.check() for _ in range(50)))
    assert all(r["database"] for r in results)
    assert app.db.calls - before == 1


async def test_messages_drops_and_failed_deliveries_move_the_counters(
    served: Served, app: App, transport: FakeTransport, make_user: object
) -> None:
    before = await served.metrics()
    assert one(before, "hrd_bot_messages_handled_total", platform="fake") == 0
    person: FakeUser = make_user()  # type: ignore[operator]
    await person.say("/start")
    await person.say("/start")
    app.flood = FloodGuard(rate=1e-6, burst=1)
    await person.say("/start")
    await person.say("/start")  # over the burst of one: dropped
    transport.refuse["chat-gone"] = Undelivered(Reason.BLOCKED)
    outcome = await (await app.deliver(ChatRef("fake", "chat-gone"), Reply("hello")))
    assert outcome.reason is Reason.BLOCKED
    after = await served.metrics()
    assert one(after, "hrd_bot_messages_handled_total", platform="fake") == 3
    assert one(after, "hrd_bot_flood_drops_total") == 1
    assert one(after, "hrd_bot_deliveries_failed_total", reason="blocked") == 1
    assert one(after, "hrd_bot_deliveries_failed_total", reason="gone") == 0


class _Held(FakeTransport):
    """Takes a message and answers only once released."""

    released: asyncio.Event | None = None

    async def send(self, chat: ChatRef, reply: Reply, key: str = "") -> tuple[str, ...]:
        assert self.released is not None
        await self.released.wait()
        return await super().send(chat, reply, key)


async def test_outbox_depth_counts_what_waits_to_be_sent(app: App) -> None:
    held = _Held(name="held")
    held.released = asyncio.Event()
    app.attach(held)
    async with serving(app) as served:
        assert one(await served.metrics(), "hrd_bot_outbox_depth") == 0
        waiting = await app.deliver(ChatRef("held", "room"), Reply("notice"))
        assert one(await served.metrics(), "hrd_bot_outbox_depth") == 1
        held.released.set()
        assert (await waiting).delivered
        assert one(await served.metrics(), "hrd_bot_outbox_depth") == 0


async def test_cases_are_counted_by_state(
    team_app: tuple[App, Team], transport: FakeTransport
) -> None:
    app, _ = team_app
    app.attach(transport)
    async with serving(app) as served:
        assert one(await served.metrics(), "hrd_bot_cases", state="new") == 0
        await submit_report(FakeUser(app, transport, "reporter-1"))
        metrics = await served.metrics()
    assert one(metrics, "hrd_bot_cases", state="new") == 1
    assert one(metrics, "hrd_bot_cases", state="draft") == 0


async def test_cases_of_every_state_are_counted_and_unknown_states_as_other(app: App) -> None:
    def add(conn: Connection) -> None:
        for number, state in enumerate(["new", "new", "closed", "draft", "archived"]):
            conn.execute(
                "INSERT INTO cases (id, public_key, created_at, updated_at, state)"
                " VALUES (?, ?, 0, 0, ?)",
                (f"HRD-TEST-{number}", b"k", state),
            )

    await app.db.run(add)
    metrics = samples(await Metrics(Counts(), {}, {}, app.db).render())
    assert one(metrics, "hrd_bot_cases", state="new") == 2
    assert one(metrics, "hrd_bot_cases", state="closed") == 1
    assert one(metrics, "hrd_bot_cases", state="draft") == 1
    assert one(metrics, "hrd_bot_cases", state="other") == 1
    assert one(metrics, "hrd_bot_cases", state="open") == 0
    assert one(metrics, "hrd_bot_outbox_depth") == 0


async def test_only_get_is_answered(served: Served) -> None:
    async with served.http.post("/ready") as answer:
        assert answer.status == 405
    async with served.http.get("/") as answer:
        assert answer.status == 404


async def test_telegram_counts_as_connected_while_it_polls(emu: Emulator, tmp_path: Path) -> None:
    async with running_bot(emu, tmp_path / "x.db") as running:
        await onboard(emu.user())  # a round trip: polling runs
        assert running.transport.connected
        async with serving(running.app) as served:
            status, body = await served.ready()
            assert (status, body["checks"]) == (
                200,
                {"transport:telegram": True, "database": True, "scheduler": True},
            )
            handled = one(
                await served.metrics(), "hrd_bot_messages_handled_total", platform="telegram"
            )
            assert handled == 2
    assert not running.transport.connected


@pytest.mark.parametrize(
    ("text", "public", "expected"),
    [
        ("127.0.0.1:9102", False, Address("127.0.0.1", 9102)),
        ("[::1]:9102", False, Address("::1", 9102)),
        ("localhost:9102", False, Address("localhost", 9102)),
        ("0.0.0.0:9102", True, Address("0.0.0.0", 9102)),
    ],
)
def test_addresses_that_are_taken(text: str, public: bool, expected: Address) -> None:
    assert parse_address(text, public=public) == expected


@pytest.mark.parametrize(
    "text", ["0.0.0.0:9102", "192.0.2.7:9102", "[::]:9102", "monitor.example:9102"]
)
def test_a_non_loopback_address_is_refused_unless_public(text: str) -> None:
    with pytest.raises(ConfigError, match=r"not a loopback address.*HRD_BOT_HEALTH_PUBLIC=1"):
        Settings.from_env({"HRD_BOT_HEALTH_ADDRESS": text})
    public = {"HRD_BOT_HEALTH_ADDRESS": text, "HRD_BOT_HEALTH_PUBLIC": "1"}
    assert Settings.from_env(public).health_address is not None


@pytest.mark.parametrize("text", ["9102", "127.0.0.1", "127.0.0.1:0", "::1:9102", "h:99999"])
def test_a_malformed_address_is_refused(text: str) -> None:
    with pytest.raises(ConfigError, match="HRD_BOT_HEALTH_ADDRESS"):
        Settings.from_env({"HRD_BOT_HEALTH_ADDRESS": text})


def test_the_endpoint_is_off_by_default() -> None:
    assert Settings.from_env({}).health_address is None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read().decode()


def test_hrd_bot_run_serves_the_endpoint_beside_the_console(tmp_path: Path) -> None:
    port = _free_port()
    env = bot_env(
        tmp_path / "data", HRD_BOT_DB_KEY=TEST_KEY.value, HRD_BOT_HEALTH_ADDRESS=f"127.0.0.1:{port}"
    )
    bot = ConsoleBot(env)
    try:
        bot.wait_for("English")
        status, body = _get(port, "/ready")
        assert status == 200, body
        assert json.loads(body)["checks"] == {
            "transport:console": True,
            "database": True,
            "scheduler": True,
        }
        status, text = _get(port, "/metrics")
        assert one(samples(text), "hrd_bot_messages_handled_total", platform="console") == 1
    finally:
        assert bot.terminate() == 0


def test_a_taken_port_stops_the_bot_with_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = int(taken.getsockname()[1])
        env = bot_env(
            tmp_path / "data",
            HRD_BOT_DB_KEY=TEST_KEY.value,
            HRD_BOT_HEALTH_ADDRESS=f"127.0.0.1:{port}",
        )
        ran = run_cli(env, "run", "--console")
    assert ran.returncode == 2
    assert f"error: HRD_BOT_HEALTH_ADDRESS: cannot listen on 127.0.0.1:{port}" in ran.stderr
