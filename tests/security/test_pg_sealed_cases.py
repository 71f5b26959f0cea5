"""A copy of the PostgreSQL database (what `pg_dump` or a seized server yields) names no
staff member, no platform identity, no reporter's chat, and no case's country, urgency or
audit detail: the case tables hold them only sealed, read here with plain psycopg as an
intruder without the key would. PostgreSQL only: SQLCipher encrypts every page instead
(tests/security/test_retention.py reads its pages)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from bot.cases.store import CasesStore, Reporter
from bot.crypto.caselog import next_key
from bot.crypto.cases import CaseKey
from bot.crypto.keys import PrivateKey
from bot.storage import Database
from bot.storage.database import Connection
from tests.conftest_storage import OpenDatabase

pytestmark = pytest.mark.parametrize("backend", ["postgres"], indirect=True)

LABEL = "Amina Canarylabel"
IDENTITIES = ("telegram:98765432101", "matrix:@canary-amina:example.org")
CHAT = "55501234567"
COUNTRY, URGENCY = "KE", "canary_urgent"
ACTOR = "telegram:" + "ab" * 16
REPORTER = Reporter("telegram:" + "cd" * 16, "telegram", CHAT, "en")
ANSWER = "CANARY-ANSWER followed home"
CLEAR = (LABEL, "Canarylabel", "98765432101", "canary-amina", CHAT, URGENCY, ANSWER)
TABLES = ("staff", "cases", "case_reporters", "case_log_states", "audit", "case_items")
SEALED_TEXT = (
    ("staff", "label"),
    ("staff", "identities"),
    ("cases", "country"),
    ("cases", "urgency"),
    ("cases", "assignee"),
    ("case_log_states", "after"),
    ("case_reporters", "chat"),
)


def _rows(url: str, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(query).fetchall()
    assert rows, f"{query}: no rows, the test would prove nothing"
    return [tuple(row) for row in rows]


def _values(url: str) -> Iterator[object]:
    for table in TABLES:
        for row in _rows(url, f"SELECT * FROM {table}"):
            yield from row


async def _fill(db: Database, staff: PrivateKey) -> str:
    """Staff with a label and identities, a sent case routed with country and urgency
    and claimed, audit entries with details (sealed to the case and recovery keys)."""
    store = CasesStore(db)
    await store.set_recovery(PrivateKey.generate().public)
    await store.add_staff(LABEL, IDENTITIES, staff.public, actor=ACTOR)
    case = (await store.open_draft(REPORTER)).id
    await store.add_item(case, "answer.what", ANSWER.encode(), replace=True)
    await store.submit(case)
    changes = {"country": COUNTRY, "urgency": URGENCY}
    await store.record_action(case, ACTOR, "case.route", changes=changes, detail=changes)
    claimed = await store.claim(lambda _: case, ACTOR, LABEL)
    assert claimed is not None and claimed.won
    view = await store.case(case)
    assert (view.country, view.urgency) == (COUNTRY, URGENCY), "read back unsealed"
    return case


async def test_case_rows_hold_no_name_identity_chat_country_urgency_or_detail_in_clear(
    open_database: OpenDatabase, database_url: str | None
) -> None:
    assert database_url is not None
    db = await open_database()
    staff = PrivateKey.generate()
    try:
        case = await _fill(db, staff)
        bundle = await CasesStore(db).export_bundle(case)
        details = [e.detail for e in await CasesStore(db).audit() if e.detail is not None]
        for table, column in SEALED_TEXT:
            await _sealed_text(db, database_url, table, column)
    finally:
        await db.close()
    assert len(details) >= 4, "staff, recovery, case and route details"

    for value in _values(database_url):
        if isinstance(value, str):
            assert not [c for c in CLEAR if c.casefold() in value.casefold()], value
            assert value != COUNTRY and f'"{COUNTRY}"' not in value, value
        if isinstance(value, bytes):
            assert not [d for d in details if d in value], "an audit detail as it was given"
            assert not [c for c in CLEAR if c.encode() in value]

    raw = [
        bytes(r[0])
        for r in _rows(database_url, "SELECT detail FROM audit WHERE detail IS NOT NULL")
    ]
    assert not set(raw) & set(details), "every audit detail is sealed again"
    ((log_next, log_key),) = _rows(database_url, "SELECT log_next, log_key FROM cases")
    (sealed,) = [s for s in bundle.sealed_keys if s.recipient == "staff:1"]
    key = CaseKey.open(case, bundle.case.public_key, sealed.blob, staff).log_key()
    for _ in range(int(str(log_next))):
        key = next_key(key)
    assert isinstance(log_key, bytes) and log_key != key and key not in log_key


async def _sealed_text(db: Database, url: str, table: str, column: str) -> None:
    """Every value of the column is sealed text, and opens with the key to what it was."""
    query = f"SELECT {column} FROM {table} WHERE {column} IS NOT NULL AND {column} != ''"
    values = [str(r[0]) for r in _rows(url, query)]
    assert all(v.startswith("~") for v in values), (table, column)

    def unseal(conn: Connection) -> list[str]:
        return [conn.unseal(f"{table}.{column}", v) for v in values]

    opened = await db.run(unseal)
    assert not [v for v in opened if v.startswith("~")], (table, column)
