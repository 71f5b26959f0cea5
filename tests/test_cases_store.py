"""The sealed-case store over a real database (SQLCipher and PostgreSQL): who can open
what, and when."""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator
from dataclasses import astuple
from functools import partial
from pathlib import Path

import psycopg
import pytest
import sqlcipher3

from bot.cases.store import MAX_ITEM_BYTES, CasesStore, CaseStoreError, Reporter
from bot.conversation.sessions import SENT
from bot.crypto.bundle import Bundle, Reseal, open_bundle, reseal_bundle
from bot.crypto.cases import RECOVERY, CaseKey
from bot.crypto.errors import BundleError
from bot.crypto.keys import PrivateKey
from bot.crypto.records import CaseMeta
from bot.storage import Database, DbKey
from bot.storage.database import Connection
from tests.conftest_storage import OpenDatabase
from tests.old_schema import migration_that, old_database

pytestmark = pytest.mark.backends


class Clock:
    """A hand-moved clock, so 'created after removal' is a fact and not a race."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        self.now += 1
        return self.now


@pytest.fixture
async def db(open_database: OpenDatabase) -> AsyncIterator[Database]:
    database = await open_database(key=DbKey(secrets.token_hex(32)))
    yield database
    await database.close()


@pytest.fixture
def store(db: Database) -> CasesStore:
    return CasesStore(db, clock=Clock())


def _execute(statement: str, conn: Connection) -> None:
    conn.execute(statement)


async def _open(store: CasesStore, case_id: str, key: PrivateKey) -> list[bytes]:
    bundle = Bundle.from_json((await store.export_bundle(case_id)).to_json())
    return [item.data for item in open_bundle(bundle, key).items]


async def test_staff_add_list_remove(store: CasesStore) -> None:
    alice, bob = PrivateKey.generate(), PrivateKey.generate()
    first = await store.add_staff(
        "Alice", ["telegram:123", "matrix:@alice:example.org"], alice.public
    )
    second = await store.add_staff("Bob", [], bob.public)
    assert (first.name, second.name) == ("staff:1", "staff:2")
    listed = await store.list_staff()
    assert [m.public_key.fingerprint for m in listed] == [
        alice.public.fingerprint,
        bob.public.fingerprint,
    ]
    assert listed[0].identities == ("telegram:123", "matrix:@alice:example.org")
    removed = await store.remove_staff(first.id)
    assert removed.removed_at is not None
    assert [m.id for m in await store.list_staff()] == [second.id]
    assert [m.active for m in await store.list_staff(include_removed=True)] == [False, True]
    with pytest.raises(CaseStoreError, match="no active staff member 1"):
        await store.remove_staff(first.id)
    assert "Alice" not in repr(removed)
    assert "telegram" not in repr(removed)
    assert alice.public.fingerprint in repr(removed)


async def test_staff_input_is_checked(store: CasesStore) -> None:
    key = PrivateKey.generate().public
    await store.add_staff("Alice", ["telegram:1"], key)
    with pytest.raises(CaseStoreError, match="already has this public key"):
        await store.add_staff("Alice again", [], key)
    with pytest.raises(CaseStoreError, match="platform:id"):
        await store.add_staff("Eve", ["just-a-name"], PrivateKey.generate().public)
    with pytest.raises(CaseStoreError, match="label"):
        await store.add_staff(" \n", [], PrivateKey.generate().public)
    with pytest.raises(CaseStoreError, match="pseudonym"):
        await store.add_staff("Eve", [], PrivateKey.generate().public, actor="telegram:123456")


async def test_a_case_needs_someone_to_seal_to(store: CasesStore) -> None:
    with pytest.raises(CaseStoreError, match="unreadable"):
        await store.create_case()


async def test_case_is_sealed_to_active_staff_and_recovery(store: CasesStore) -> None:
    alice, bob, recovery = (PrivateKey.generate() for _ in range(3))
    await store.add_staff("Alice", [], alice.public)
    await store.add_staff("Bob", [], bob.public)
    await store.set_recovery(recovery.public)
    case = await store.create_case(country="KE", urgency="high")
    assert (case.state, case.country, case.urgency) == ("open", "KE", "high")
    sealed = await store.sealed_keys(case.id)
    assert sorted(s.recipient for s in sealed) == [RECOVERY, "staff:1", "staff:2"]
    assert await store.add_item(case.id, "answer.what", b"they took my phone") == 0
    assert await store.add_item(case.id, "answer.what", b"and my laptop") == 1
    assert await store.add_item(case.id, "note", b"call back tomorrow") == 0
    for key in (alice, bob, recovery):
        assert await _open(store, case.id, key) == [
            b"they took my phone",
            b"and my laptop",
            b"call back tomorrow",
        ]


async def test_removed_member_opens_older_cases_only(store: CasesStore) -> None:
    alice, bob = PrivateKey.generate(), PrivateKey.generate()
    member = await store.add_staff("Alice", [], alice.public)
    await store.add_staff("Bob", [], bob.public)
    older = await store.create_case()
    await store.add_item(older.id, "answer.what", b"older")
    await store.remove_staff(member.id)
    newer = await store.create_case()
    await store.add_item(newer.id, "answer.what", b"newer")
    assert await _open(store, older.id, alice) == [b"older"]
    with pytest.raises(BundleError, match="not sealed to your key"):
        await _open(store, newer.id, alice)
    assert await _open(store, newer.id, bob) == [b"newer"]


async def test_item_moved_in_the_database_does_not_open(store: CasesStore, db: Database) -> None:
    alice = PrivateKey.generate()
    await store.add_staff("Alice", [], alice.public)
    first, second = await store.create_case(), await store.create_case()
    await store.add_item(first.id, "answer.what", b"first")
    await store.add_item(second.id, "answer.what", b"second")
    await store.add_item(second.id, "answer.where", b"second, where")
    await db.run(
        lambda c: c.execute(
            "UPDATE case_items SET sealed = (SELECT sealed FROM case_items WHERE case_id = ?) "
            "WHERE case_id = ?",
            (first.id, second.id),
        )
    )
    with pytest.raises(BundleError, match="altered or moved"):
        await _open(store, second.id, alice)


async def test_items_are_checked(store: CasesStore) -> None:
    await store.add_staff("Alice", [], PrivateKey.generate().public)
    case = await store.create_case()
    with pytest.raises(ValueError, match="field name"):
        await store.add_item(case.id, "Bad Field", b"x")
    with pytest.raises(CaseStoreError, match="at most"):
        await store.add_item(case.id, "attachment", bytes(MAX_ITEM_BYTES + 1))
    with pytest.raises(CaseStoreError, match="no case"):
        await store.add_item("HRD-2345-6789", "note", b"x")


async def test_reseal_moves_an_open_case_to_the_remaining_members(store: CasesStore) -> None:
    alice, bob, carol, recovery = (PrivateKey.generate() for _ in range(4))
    await store.add_staff("Alice", [], alice.public)
    leaving = await store.add_staff("Bob", [], bob.public)
    await store.set_recovery(recovery.public)
    case = await store.create_case()
    await store.add_item(case.id, "answer.what", b"open case")
    await store.add_staff("Carol", [], carol.public)
    await store.remove_staff(leaving.id)
    bundle = Bundle.from_json((await store.export_bundle(case.id)).to_json())
    reseal = Reseal.from_json(reseal_bundle(bundle, alice).to_json())
    assert await store.apply_reseal(reseal) == ["staff:1", "staff:3", RECOVERY]
    assert await _open(store, case.id, carol) == [b"open case"]
    with pytest.raises(BundleError, match="not sealed to your key"):
        await _open(store, case.id, bob)


async def test_reseal_is_refused_for_a_member_removed_since_export(store: CasesStore) -> None:
    alice, bob = PrivateKey.generate(), PrivateKey.generate()
    await store.add_staff("Alice", [], alice.public)
    leaving = await store.add_staff("Bob", [], bob.public)
    case = await store.create_case()
    bundle = await store.export_bundle(case.id)
    await store.remove_staff(leaving.id)
    with pytest.raises(CaseStoreError, match=r"staff:2 .* not a current recipient"):
        await store.apply_reseal(reseal_bundle(bundle, alice))
    assert len(await store.sealed_keys(case.id)) == 2


async def test_reseal_for_another_case_key_is_refused(store: CasesStore) -> None:
    alice = PrivateKey.generate()
    await store.add_staff("Alice", [], alice.public)
    case = await store.create_case()
    impostor = CaseKey.create(case.id)
    forged = Reseal(case.id, impostor.public, impostor.seal_to([]))
    with pytest.raises(CaseStoreError, match="another key"):
        await store.apply_reseal(forged)


async def test_audit_records_actions_and_opens_with_the_case_key(store: CasesStore) -> None:
    alice = PrivateKey.generate()
    await store.add_staff("Alice", [], alice.public)
    case = await store.create_case(actor="telegram:" + "ab" * 16)
    bundle = await store.export_bundle(case.id)
    opened = open_bundle(bundle, alice)
    assert [(e.action, e.actor) for e, _ in opened.audit] == [
        ("case.create", "telegram:" + "ab" * 16),
        ("case.export", "system"),
    ]
    assert opened.audit[0][1] == b'{"sealed_to": ["staff:1"]}'
    assert [e.action for e in await store.audit()] == ["staff.add", "case.create", "case.export"]


async def test_audit_rows_cannot_be_changed_or_deleted(store: CasesStore, db: Database) -> None:
    await store.add_staff("Alice", [], PrivateKey.generate().public)
    for statement in ("UPDATE audit SET actor = 'nobody'", "DELETE FROM audit"):
        refused = (sqlcipher3.IntegrityError, psycopg.errors.RaiseException)
        with pytest.raises(refused, match="append-only"):
            await db.run(partial(_execute, statement))
    assert [e.actor for e in await store.audit()] == ["system"]


REPORTER = Reporter("telegram:" + "cd" * 16, "telegram", "chat-1", "en")


async def _session(db: Database, key: str, state: dict[str, object]) -> None:
    """A session as `SessionStore` saves it: state sealed, the draft's case beside it."""
    report = state.get("report")
    case = report.get("case") if isinstance(report, dict) else None

    def insert(conn: Connection) -> None:
        row = (key, "en", conn.seal("sessions.state", json.dumps(state)), 1, case)
        conn.execute(
            "INSERT INTO sessions (user_key, language, state, updated_at, report_case) "
            "VALUES (?, ?, ?, ?, ?)",
            row,
        )

    await db.transaction(insert)


async def _state(db: Database, key: str) -> dict[str, object]:
    def read(conn: Connection) -> str:
        row = conn.execute("SELECT state FROM sessions WHERE user_key = ?", (key,)).fetchone()
        return str(conn.unseal("sessions.state", row[0]))

    loaded: dict[str, object] = json.loads(await db.run(read))
    return loaded


async def test_a_draft_is_born_a_draft_with_its_reporter(store: CasesStore, db: Database) -> None:
    with pytest.raises(CaseStoreError, match="unreadable"):
        await store.open_draft(REPORTER)
    assert await db.run(lambda c: c.execute("SELECT count(*) FROM cases").fetchone()[0]) == 0
    recovery = PrivateKey.generate()
    await store.set_recovery(recovery.public)
    case = await store.open_draft(REPORTER)
    assert case.state == "draft" and (await store.case(case.id)).state == "draft"
    linked = await db.run(
        lambda c: [
            (*r[:3], c.unseal("case_reporters.chat", r[3]), r[4])
            for r in c.execute("SELECT * FROM case_reporters WHERE case_id = ?", (case.id,))
        ]
    )
    assert linked == [(case.id, *astuple(REPORTER))]
    assert [e.action for e in await store.audit(case.id)] == ["case.create", "case.draft"]


async def test_a_drafts_field_keeps_the_last_item_and_a_sent_case_appends(
    store: CasesStore,
) -> None:
    recovery = PrivateKey.generate()
    await store.set_recovery(recovery.public)
    case = (await store.open_draft(REPORTER)).id
    assert await store.add_item(case, "answer.what", b"first", replace=True) == 0
    assert await store.add_item(case, "answer.what", b"again", replace=True) == 1
    await store.add_item(case, "attachment.0", b"photo one", replace=True)
    await store.add_item(case, "caption.0", b"caption of photo one", replace=True)
    await store.add_item(case, "attachment.0", b"photo resent", replace=True)
    await store.add_item(case, "answer.when", b"today")
    await store.add_item(case, "answer.when", b"today, again")
    assert await _open(store, case, recovery) == [
        b"again",
        b"photo resent",
        b"today",
        b"today, again",
    ], "replace: one item per field, a file's old caption goes with it; without: appended"
    assert (await store.submit(case)).first
    await store.add_item(case, "answer.what", b"after sending", replace=True)
    assert (await _open(store, case, recovery))[-1] == b"after sending"
    assert len(await store.items(case)) == 5, "nothing is replaced once the case is sent"


async def test_submitting_happens_once_and_tells_the_reporters_session(
    store: CasesStore, db: Database
) -> None:
    await store.set_recovery(PrivateKey.generate().public)
    case = (await store.open_draft(REPORTER)).id
    other = "telegram:" + "ef" * 16
    await _session(db, REPORTER.user_key, {"at": ["report_review", {}], "report": {"case": case}})
    await _session(db, other, {"at": ["menu", {}], "report": {"case": "HRD-AAAA-AAAA"}})
    ran: list[str] = []

    def then(conn: Connection, meta: CaseMeta) -> None:
        ran.append(meta.state)

    first = await store.submit(case, then=then)
    assert first.first and first.case.state == "new" and ran == ["new"]
    again = await store.submit(case, then=then)
    assert not again.first and again.case.state == "new" and ran == ["new"]
    assert [e.action for e in await store.audit(case)].count("case.submit") == 1
    assert await _state(db, REPORTER.user_key) == {"at": ["report_review", {}], SENT: case}
    assert (await _state(db, other))["report"] == {"case": "HRD-AAAA-AAAA"}


async def test_a_submission_whose_follow_up_fails_did_not_happen(store: CasesStore) -> None:
    await store.set_recovery(PrivateKey.generate().public)
    case = (await store.open_draft(REPORTER)).id

    def fails(conn: Connection, meta: CaseMeta) -> None:
        raise RuntimeError("the outbox is full")

    with pytest.raises(RuntimeError):
        await store.submit(case, then=fails)
    assert (await store.case(case)).state == "draft"
    assert "case.submit" not in [e.action for e in await store.audit(case)]
    assert (await store.submit(case)).first


async def test_discarding_a_draft_lets_the_session_go(store: CasesStore, db: Database) -> None:
    await store.set_recovery(PrivateKey.generate().public)
    case = (await store.open_draft(REPORTER)).id
    await _session(
        db, REPORTER.user_key, {"at": ["report_question", {"i": 2}], "report": {"case": case}}
    )
    assert await store.delete_draft(case)
    assert await _state(db, REPORTER.user_key) == {"at": ["report_question", {"i": 2}]}
    with pytest.raises(CaseStoreError):
        await store.case(case)


async def test_old_phantom_open_cases_become_drafts(tmp_path: Path) -> None:
    """Before one transaction opened a draft, a kill could leave an `open` case with no
    items that staff saw in /cases; the migration makes those drafts (retention's).
    SQLCipher only: PostgreSQL starts at a schema that never held such cases."""
    path, key = tmp_path / "old.db", DbKey(secrets.token_hex(32))
    phantom, sent = "HRD-2222-2222", "HRD-3333-3333"

    def fill(conn: Connection) -> None:
        for case_id, submitted in ((phantom, None), (sent, 5)):
            conn.execute(
                "INSERT INTO cases (id, public_key, created_at, updated_at, state, submitted_at) "
                "VALUES (?, ?, 1, 1, 'open', ?)",
                (case_id, PrivateKey.generate().public.raw, submitted),
            )

    old_database(path, key, migration_that("SET state = 'draft'"), fill)
    database = await Database.open(path, key)
    store = CasesStore(database)
    try:
        assert (await store.case(phantom)).state == "draft"
        assert (await store.case(sent)).state == "open"
    finally:
        await database.close()


async def test_case_writes_are_synced_before_they_return(
    store: CasesStore, db: Database, backend: str
) -> None:
    """What a person is told is saved commits with synchronous = FULL (the WAL is synced
    before COMMIT returns); other commits keep NORMAL, also after a failed case write."""
    if backend == "postgres":
        pytest.skip("PRAGMA synchronous is SQLCipher's; PostgreSQL commits are durable")

    def synchronous(conn: Connection) -> int:
        return int(conn.execute("PRAGMA synchronous").fetchone()[0])

    await store.set_recovery(PrivateKey.generate().public)
    case = (await store.open_draft(REPORTER)).id
    during: list[int] = []

    def then(conn: Connection, meta: CaseMeta) -> None:
        during.append(synchronous(conn))
        raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        await store.submit(case, then=then)
    assert during == [2], "FULL while the case write commits"
    assert await db.run(synchronous) == 1, "NORMAL again afterwards"
    assert (await store.submit(case)).first and await db.run(synchronous) == 1
