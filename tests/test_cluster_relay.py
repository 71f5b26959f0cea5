"""A follower's message for the leader's platform (Matrix): its sensitive content reaches
the live leader sealed to that leader's term, never readable on disk, and the follower
learns the outcome the leader wrote (`bot.cluster.relay`)."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from bot.cluster import relay_rows
from bot.cluster.handover import OutboxHandover
from bot.cluster.relay_rows import info
from bot.content.library import Library
from bot.crypto.hpke import InvalidTag, open_sealed
from bot.crypto.keys import PrivateKey
from bot.delivery.outcome import Outcome, Reason
from bot.model import Reply
from bot.storage.connection import Connection
from bot.storage.fields import UnsealError
from tests.cluster_nodes import ROOM, Node, node, true_when
from tests.keys import TEST_KEY
from tests.postgres_server import PgServer, fresh_schema
from tests.telegram_emulator.harness import eventually

WORDS = "they took my phone at the border"


async def leading(url: str, library: Library, stack: AsyncExitStack, **how: bool) -> Node:
    leader = await stack.enter_async_context(node(url, library, **how))
    await eventually(lambda: true_when(leader.leadership.leading), 10)
    await eventually(lambda: true_when(bool(_raw(url, "SELECT term FROM cluster_leader"))), 10)
    return leader


async def follower(url: str, library: Library, stack: AsyncExitStack) -> Node:
    worker = await stack.enter_async_context(node(url, library))
    assert not worker.leadership.leading
    return worker


def _raw(url: str, sql: str) -> list[tuple[object, ...]]:
    """What someone who seized the server reads, without the bot."""
    with psycopg.connect(url) as conn:
        return list(conn.execute(sql).fetchall())


async def _sealed_for_leader(url: str) -> tuple[int, str, bytes]:
    await eventually(lambda: true_when(bool(_raw(url, "SELECT 1 FROM outbox_handover"))), 10)
    found = _raw(url, "SELECT outbox_id, term, sealed FROM outbox_handover")
    row_id, term, blob = found[0]
    assert isinstance(blob, bytes)
    return int(str(row_id)), str(term), blob


def sensitive() -> Reply:
    return Reply(WORDS, sensitive=True)


async def test_the_leader_sends_a_followers_sensitive_message_and_the_follower_learns_it(
    pg_server: PgServer, library: Library
) -> None:
    url = pg_server.schema_url(fresh_schema(pg_server))
    async with AsyncExitStack() as stack:
        a = await leading(url, library, stack)
        b = await follower(url, library, stack)
        done = await b.app.deliver(ROOM, sensitive(), kind="relay")
        outcome = await asyncio.wait_for(done, 10)
        assert outcome == Outcome(("1",))
        [(chat, reply)] = [sent for t in a.matrix for sent in t.sent]
        assert chat == ROOM and reply.text == WORDS and reply.sensitive
        assert b.matrix == []
        assert _raw(url, "SELECT 1 FROM outbox_handover") == []


async def test_a_refusal_at_the_leader_reaches_the_follower(
    pg_server: PgServer, library: Library
) -> None:
    url = pg_server.schema_url(fresh_schema(pg_server))
    async with AsyncExitStack() as stack:
        await leading(url, library, stack, refuse=True)
        b = await follower(url, library, stack)
        sensitive_one = await b.app.deliver(ROOM, sensitive(), kind="relay")
        plain_one = await b.app.deliver(ROOM, Reply("new case: 7"), kind="alert")
        assert await asyncio.wait_for(sensitive_one, 10) == Outcome(reason=Reason.REFUSED)
        assert await asyncio.wait_for(plain_one, 10) == Outcome(reason=Reason.REFUSED)


async def test_a_follower_that_hears_no_notify_learns_the_outcome_by_polling(
    pg_server: PgServer, library: Library
) -> None:
    url = pg_server.schema_url(fresh_schema(pg_server))
    async with AsyncExitStack() as stack:
        a = await leading(url, library, stack)
        b = await stack.enter_async_context(node(url, library, adopts=False, hears=False))
        done = await b.app.deliver(ROOM, sensitive(), kind="relay")
        assert await asyncio.wait_for(done, 10) == Outcome(("1",))
        assert [reply.text for t in a.matrix for _, reply in t.sent] == [WORDS]


async def test_a_leader_that_dies_before_adopting_takes_the_content_with_it(
    pg_server: PgServer, library: Library
) -> None:
    url = pg_server.schema_url(fresh_schema(pg_server))
    async with AsyncExitStack() as stack:
        async with AsyncExitStack() as dying:
            await leading(url, library, dying, adopts=False)
            b = await follower(url, library, stack)
            done = await b.app.deliver(ROOM, sensitive(), kind="relay")
            await _sealed_for_leader(url)
        c = await follower(url, library, stack)  # the new leader is b or c
        assert await asyncio.wait_for(done, 10) == Outcome(reason=Reason.LOST)
        assert [sent for t in b.matrix + c.matrix for sent in t.sent if sent[1].text == WORDS] == []


async def test_a_seized_database_and_its_key_do_not_open_a_handed_over_message(
    pg_server: PgServer, library: Library
) -> None:
    url = pg_server.schema_url(fresh_schema(pg_server))
    async with AsyncExitStack() as stack:
        a = await leading(url, library, stack, adopts=False)
        b = await follower(url, library, stack)
        done = await b.app.deliver(ROOM, sensitive(), kind="relay")
        row_id, term, blob = await _sealed_for_leader(url)
        assert WORDS.encode() not in _everything(url)
        with pytest.raises(UnsealError):
            await b.app.db.run(lambda conn: _unseal(conn, blob))
        database_key = X25519PrivateKey.from_private_bytes(TEST_KEY.raw_bytes() or b"")
        with pytest.raises(InvalidTag):
            open_sealed(blob, database_key, info(row_id, term))
        assert a.relay is not None  # the live leader's memory does open it
        handover = OutboxHandover(
            a.app.db, a.app.outbox, a.leadership, a.app.casework.lost, relay=a.relay
        )
        await handover.adopt()
        assert await asyncio.wait_for(done, 10) == Outcome(("1",))
        assert [reply.text for t in a.matrix for _, reply in t.sent] == [WORDS]


async def test_a_leader_key_planted_without_the_database_key_is_never_sealed_to(
    pg_server: PgServer, library: Library
) -> None:
    url = pg_server.schema_url(fresh_schema(pg_server))
    async with AsyncExitStack() as stack:
        a = await leading(url, library, stack, adopts=False)
        planted = PrivateKey.generate().public.text
        with psycopg.connect(url) as conn:
            conn.execute("UPDATE cluster_leader SET public_key = %s", (planted,))
        with pytest.raises(UnsealError):
            await a.app.db.run(relay_rows.store(1, sensitive()))
        assert _raw(url, "SELECT 1 FROM outbox_handover") == []


def _unseal(conn: Connection, blob: bytes) -> bytes:
    return conn.unseal("outbox_handover.sealed", blob)


def _everything(url: str) -> bytes:
    """Every text and bytea value in the schema, as one byte string."""
    columns = _raw(
        url,
        "SELECT table_name, column_name FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND data_type IN ('text', 'bytea')",
    )
    values = [v for t, c in columns for (v,) in _raw(url, f"SELECT {c} FROM {t}")]
    return b"\0".join(v if isinstance(v, bytes) else str(v).encode() for v in values if v)
