"""Tampered bundles: `hrd-bot cases open` refuses every kind of change, in one line.

A case is built the way the bot builds one, on a real store (SQLCipher and PostgreSQL): a draft whose
first answer is given again (its log records the replacement), submitted, routed,
acknowledged, noted, escalated, a message from the reporter; then exported. Each test
changes the bundle as a seized or malicious server could and opens it with `hrd-bot
cases open` in this process (`bot.cli.main`, a real key file): exit status 2, one line on
stderr naming the change, nothing on stdout and nothing of the case's content.

Also checked: the untouched bundle opens; reseal keeps working and keeps the case
tamper-evident; a case made before logs opens with a warning; and what a seized server's
log key can do (append after the seizure) and cannot (rewrite anything before it).
"""

from __future__ import annotations

import copy
import json
import logging
import re
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from bot.cases.store import SYSTEM, CasesStore, Reporter
from bot.cli import main
from bot.crypto.bundle import Bundle, reseal_bundle
from bot.crypto.caselog import audit_link, end_of_log, next_key
from bot.crypto.cases import CaseKey, Recipient, seal_audit_detail, seal_item
from bot.crypto.keyfile import read_private_key
from bot.crypto.keys import PrivateKey
from bot.crypto.records import AuditEntry
from bot.logs import NOISY
from bot.storage import Database, DbKey
from bot.storage.database import Connection
from tests.conftest_storage import OpenDatabase
from tests.old_schema import migration_that, old_database

pytestmark = pytest.mark.backends

PASSPHRASE = "tamper test passphrase"
CANARY = "CANARY-tamper-41c9"
STAFF = "matrix:" + "ab" * 16
REPORTER = Reporter("telegram:" + "cd" * 16, "telegram", "chat-1", "en")
Document = dict[str, Any]


class Clock:
    """A clock moved by hand: each reading is one second later."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        self.now += 1
        return self.now


@dataclass
class Member:
    """A staff member's key file on their machine, and the key itself for the test."""

    path: Path
    key: PrivateKey


def _member(folder: Path, name: str) -> Member:
    path = folder / f"{name}.key"
    assert main(["keys", "generate", "--out", str(path)]) == 0
    return Member(path, read_private_key(path, PASSPHRASE))


@pytest.fixture(autouse=True)
def logging_left_as_found() -> Iterator[None]:
    """`main()` sets up the CLI's logging (root handler, levels, record factory); the
    tests after these expect pytest's."""
    factory, root = logging.getLogRecordFactory(), logging.getLogger()
    handlers, level = root.handlers[:], root.level
    levels = {name: logging.getLogger(name).level for name in (*NOISY, "py.warnings")}
    try:
        yield
    finally:
        logging.setLogRecordFactory(factory)
        logging.captureWarnings(False)
        root.handlers[:], root.level = handlers, level
        for name, old in levels.items():
            logging.getLogger(name).setLevel(old)


@pytest.fixture
def machine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A staff machine's environment for `main()`; the folder for key and bundle files."""
    monkeypatch.setenv("HRD_BOT_DATA_DIR", str(tmp_path / "no-server-here"))
    monkeypatch.setenv("HRD_BOT_INSECURE_FAST_KDF", "1")
    monkeypatch.setenv("HRD_BOT_KEY_PASSPHRASE", PASSPHRASE)
    monkeypatch.setenv("HRD_BOT_LOG_LEVEL", "WARNING")
    home = tmp_path / "staff-home"
    home.mkdir()
    return home


@pytest.fixture
def alice(machine: Path, capsys: pytest.CaptureFixture[str]) -> Member:
    member = _member(machine, "alice")
    capsys.readouterr()
    return member


@pytest.fixture
async def db(open_database: OpenDatabase) -> AsyncIterator[Database]:
    database = await open_database(key=DbKey(secrets.token_hex(32)))
    yield database
    await database.close()


@pytest.fixture
async def store(db: Database, alice: Member) -> CasesStore:
    cases = CasesStore(db, clock=Clock())
    await cases.add_staff("Alice", [], alice.key.public)
    await cases.set_recovery(PrivateKey.generate().public)
    return cases


async def _case(store: CasesStore) -> str:
    """Positions in its log: 0 create, 1 draft, 2 first answer (replaced at 4), 3 answer,
    4 answer, 5 submit, 6 route, 7 acknowledge, 8-9 note, 10 escalate, 11-12 message;
    its export takes 13."""
    case = (await store.open_draft(REPORTER)).id
    await store.add_item(case, "answer.what", f"{CANARY} first telling".encode(), replace=True)
    await store.add_item(case, "answer.where", f"{CANARY} Nairobi".encode(), replace=True)
    await store.add_item(case, "answer.what", f"{CANARY} second telling".encode(), replace=True)
    await store.submit(case)
    await store.record_action(
        case, SYSTEM, "case.route", changes={"country": "KE", "urgency": "high"}
    )
    await store.record_action(case, STAFF, "case.acknowledge", changes={"state": "acknowledged"})
    await store.record_action(case, STAFF, "case.note", item=("note", f"{CANARY} note".encode()))
    await store.record_action(case, STAFF, "case.escalate", changes={"urgency": "critical"})
    message = ("message", f"{CANARY} still followed".encode())
    await store.record_action(case, SYSTEM, "reporter.message", item=message)
    return case


async def _exported(store: CasesStore) -> Document:
    bundle = await store.export_bundle(await _case(store))
    document: Document = json.loads(bundle.to_json())
    return document


def _open(
    capsys: pytest.CaptureFixture[str], folder: Path, key: Member, document: Document
) -> tuple[int, str, str]:
    """`hrd-bot cases open` on the document; exit status, stdout, stderr."""
    path = folder / f"case-{secrets.token_hex(4)}.json"
    path.write_text(json.dumps(document))
    status = main(["cases", "open", str(path), "--key", str(key.path)])
    out, err = capsys.readouterr()
    return status, out, err


def _refused(opened: tuple[int, str, str], match: str) -> None:
    status, out, err = opened
    assert status == 2, (status, err)
    assert out == "", "nothing of a tampered case is shown"
    (line,) = err.splitlines()
    assert re.match(r"error: HRD-\w{4}-\w{4}: tampered bundle, nothing is shown: ", line), line
    assert re.search(match, line), line
    assert CANARY not in err


def _swap(listed: list[Any], first: int, second: int) -> None:
    listed[first], listed[second] = listed[second], listed[first]


def _duplicate(listed: list[Any], index: int) -> None:
    listed.insert(index + 1, copy.deepcopy(listed[index]))


def _strip_links(document: Document) -> None:
    for entry in (*document["items"], *document["audit"]):
        entry["log"] = None


REMOVED = r"items or audit entries were removed"
ALTERED = r"does not open as part of this case: altered or moved"
CHANGES: dict[str, tuple[Callable[[Document], object], str]] = {
    "an item removed": (lambda d: d["items"].pop(1), REMOVED),
    "an item duplicated": (lambda d: _duplicate(d["items"], 1), r"repeats items\[1\].*duplicated"),
    "items reordered": (lambda d: _swap(d["items"], 1, 2), r"items are out of order.*reordered"),
    "an audit entry removed": (lambda d: d["audit"].pop(3), REMOVED),
    "an audit entry duplicated": (lambda d: _duplicate(d["audit"], 3), r"repeats audit\[3\]"),
    "audit entries reordered": (
        lambda d: _swap(d["audit"], 3, 4),
        r"audit entries are out of order at audit\[4\]: reordered",
    ),
    "the state changed": (
        lambda d: d["case"].update(state="closed"),
        r"the case's state does not match its log: metadata was changed",
    ),
    "a critical case shown closed and normal": (
        lambda d: d["case"].update(state="closed", urgency="normal"),
        r"the case's state and urgency do not match its log: metadata was changed",
    ),
    "the urgency changed": (
        lambda d: d["case"].update(urgency="normal"),
        r"case's urgency does not match",
    ),
    "the country changed": (
        lambda d: d["case"].update(country="CO"),
        r"case's country does not match",
    ),
    "the country removed": (
        lambda d: d["case"].update(country=None),
        r"case's country does not match",
    ),
    "the update time changed": (
        lambda d: d["case"].update(updated_at=d["case"]["updated_at"] - 3600),
        r"case's update time does not match",
    ),
    "an item's time changed": (
        lambda d: d["items"][0].update(created_at=d["items"][0]["created_at"] - 86_400),
        r"items\[0\] \(answer\.where#0\) " + ALTERED,
    ),
    "an item's content swapped with another's": (
        lambda d: _swap_sealed(d["items"], 0, 2),
        r"items\[0\] \(answer\.where#0\) " + ALTERED,
    ),
    "an item renumbered": (
        lambda d: d["items"][2].update(seq=7),
        r"items\[2\] \(note#7\) " + ALTERED,
    ),
    "an audit entry's time changed": (
        lambda d: d["audit"][4].update(at=d["audit"][4]["at"] + 60),
        r"audit\[4\] " + ALTERED,
    ),
    "an audit entry's actor changed": (
        lambda d: d["audit"][4].update(actor="system"),
        r"audit\[4\] " + ALTERED,
    ),
    "an audit entry's action changed": (
        lambda d: d["audit"][4].update(action="case.close"),
        r"audit\[4\] " + ALTERED,
    ),
    "an audit entry's detail removed": (
        lambda d: d["audit"][0].update(detail=None),
        r"audit\[0\] " + ALTERED,
    ),
    "the state changed with the last entry's record of it": (
        lambda d: (
            d["case"].update(state="closed"),
            d["audit"][-1]["log"]["case"].update(state="closed"),
        ),
        r"audit\[8\] " + ALTERED,
    ),
    "the last entries truncated": (lambda d: d["audit"].__delitem__(slice(-2, None)), REMOVED),
    "the count raised": (lambda d: d["log"].update(count=d["log"]["count"] + 1), REMOVED),
    "the export time changed": (
        lambda d: d.update(exported_at=d["exported_at"] + 1),
        r"the end of the case's log does not match",
    ),
    "the log's end removed": (lambda d: d.update(log=None), r"tamper-evident log was removed"),
    "every link removed": (
        _strip_links,
        r"items\[0\] \(answer\.where#0\) does not open: it has no place",
    ),
    "an item placed after the end": (
        lambda d: d["items"][0]["log"].update(pos=99),
        r"items\[0\] \(answer\.where#0\) lies beyond the end of the case's log",
    ),
}


def _swap_sealed(items: list[Document], first: int, second: int) -> None:
    items[first]["sealed"], items[second]["sealed"] = (
        items[second]["sealed"],
        items[first]["sealed"],
    )


async def test_the_untouched_bundle_opens(
    store: CasesStore, alice: Member, machine: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = _open(capsys, machine, alice, await _exported(store))
    assert (status, err) == (0, "")
    assert "state: acknowledged  country: KE (Kenya)  urgency: critical" in out
    assert f"{CANARY} second telling" in out
    assert f"{CANARY} first telling" not in out, "the replaced draft answer is gone"
    assert out.index("case.acknowledge") < out.index("reporter.message") < out.index("case.export")


@pytest.mark.parametrize("change", list(CHANGES), ids=list(CHANGES))
async def test_a_changed_bundle_is_refused(
    change: str,
    store: CasesStore,
    alice: Member,
    machine: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    document = await _exported(store)
    assert _open(capsys, machine, alice, document)[0] == 0
    tamper, match = CHANGES[change]
    tamper(document)
    _refused(_open(capsys, machine, alice, document), match)


async def test_the_last_entries_cut_with_the_count_and_metadata_made_to_fit(
    store: CasesStore, alice: Member, machine: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The reporter's message and the export cut off, the count lowered and the case set
    to what the escalation left: a consistent-looking older case. The end tag betrays it."""
    document = await _exported(store)
    document["items"].pop()  # the message (11)
    del document["audit"][-2:]  # reporter.message (12), case.export (13)
    last = document["audit"][-1]["log"]
    assert last["pos"] == 10
    document["log"]["count"] = 11
    document["case"].update(last["case"])
    _refused(
        _open(capsys, machine, alice, document),
        r"the end of the case's log does not match: entries were removed from its end",
    )


async def test_an_item_from_another_case_is_refused(
    store: CasesStore, alice: Member, machine: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document, other = await _exported(store), await _exported(store)
    assert document["items"][0]["log"]["pos"] == other["items"][0]["log"]["pos"]
    with_its_link = copy.deepcopy(document)
    with_its_link["items"][0] = other["items"][0]
    _refused(_open(capsys, machine, alice, with_its_link), r"items\[0\] .*" + ALTERED)
    with_our_link = copy.deepcopy(document)
    with_our_link["items"][0]["sealed"] = other["items"][0]["sealed"]
    _refused(_open(capsys, machine, alice, with_our_link), r"items\[0\] .*" + ALTERED)


async def test_a_replaced_draft_answer_put_back_is_refused(
    store: CasesStore, alice: Member, machine: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An export of the draft still held the first answer, with a genuine tag: put into
    the later bundle, the later answer's link shows it was replaced."""
    case = (await store.open_draft(REPORTER)).id
    await store.add_item(case, "answer.what", f"{CANARY} first".encode(), replace=True)
    early = json.loads((await store.export_bundle(case)).to_json())
    await store.add_item(case, "answer.what", f"{CANARY} second".encode(), replace=True)
    await store.submit(case)
    later = json.loads((await store.export_bundle(case)).to_json())
    assert _open(capsys, machine, alice, later)[0] == 0
    later["items"].insert(0, early["items"][0])
    _refused(
        _open(capsys, machine, alice, later),
        r"items\[1\] \(answer\.what#1\) replaced a draft item that is in the bundle again",
    )


async def test_reseal_still_works_and_the_case_stays_tamper_evident(
    store: CasesStore, alice: Member, machine: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    case = await _case(store)
    carol = _member(machine, "carol")
    await store.add_staff("Carol", [], carol.key.public)
    bundle = await store.export_bundle(case)
    names = await store.apply_reseal(reseal_bundle(bundle, alice.key))
    assert names == ["staff:1", "staff:2", "recovery"]
    capsys.readouterr()
    again: Document = json.loads((await store.export_bundle(case)).to_json())
    status, out, err = _open(capsys, machine, carol, again)
    assert (status, err) == (0, "")
    assert f"{CANARY} second telling" in out
    assert "case.reseal" in out
    again["case"]["state"] = "closed"
    _refused(_open(capsys, machine, carol, again), r"state does not match")
    _strip_links(again)
    again["log"] = None
    _refused(_open(capsys, machine, carol, again), r"tamper-evident log was removed")


def _legacy_case(alice: PrivateKey, case_id: str) -> Callable[[Connection], None]:
    """Rows as the program before logs wrote them: the case key sealed without the
    `logged` mark, an item and an audit entry with no place in any log."""
    key = CaseKey(case_id, PrivateKey.generate(), logged=False)
    (sealed,) = key.seal_to([Recipient("staff:1", alice.public)])
    item = seal_item(key.public, case_id, "answer.what", 0, f"{CANARY} old answer".encode())
    detail = seal_audit_detail(key.public, case_id, "case.create", 10, b'{"sealed_to": []}')

    def fill(conn: Connection) -> None:
        conn.execute(
            "INSERT INTO staff (label, identities, public_key, fingerprint, added_at) "
            "VALUES ('Alice', '[]', ?, ?, 1)",
            (alice.public.text, alice.public.fingerprint),
        )
        conn.execute(
            "INSERT INTO cases (id, public_key, created_at, updated_at, state, submitted_at) "
            "VALUES (?, ?, 10, 11, 'open', 11)",
            (case_id, key.public.raw),
        )
        conn.execute(
            "INSERT INTO case_recipients VALUES (?, 'staff:1', ?, ?)",
            (case_id, sealed.fingerprint, sealed.blob),
        )
        conn.execute(
            "INSERT INTO case_items (case_id, field, seq, sealed, created_at) "
            "VALUES (?, 'answer.what', 0, ?, 11)",
            (case_id, item),
        )
        conn.execute(
            "INSERT INTO audit (at, actor, action, case_id, detail) "
            "VALUES (10, 'system', 'case.create', ?, ?)",
            (case_id, detail),
        )

    return fill


async def test_a_case_made_before_logs_opens_with_a_warning(
    tmp_path: Path, alice: Member, machine: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """SQLCipher only: PostgreSQL starts at a schema whose cases all have logs."""
    path, key, case = tmp_path / "old.db", DbKey(secrets.token_hex(32)), "HRD-2222-3333"
    old_database(path, key, migration_that("log_key"), _legacy_case(alice.key, case))
    database = await Database.open(path, key)
    try:
        store = CasesStore(database, clock=Clock())
        await store.record_action(case, SYSTEM, "reporter.message", item=("message", b"later"))
        document = json.loads((await store.export_bundle(case)).to_json())
    finally:
        await database.close()
    status, out, err = _open(capsys, machine, alice, document)
    assert status == 0
    (warning,) = err.splitlines()
    assert warning.startswith(f"warning: {case} is not tamper-evident: it was created before")
    assert f"{CANARY} old answer" in out
    assert "later" in out


async def test_a_seized_log_key_appends_but_cannot_rewrite(
    store: CasesStore,
    db: Database,
    alice: Member,
    machine: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """What the database holds is the key of the log's next position. With it, an entry
    at an earlier position cannot be made again; a new one can be appended, as the
    running server could, and shows in the audit trail."""
    document = await _exported(store)
    case = document["case"]["id"]

    def read(conn: Connection) -> tuple[int, bytes]:
        row = conn.execute("SELECT log_next, log_key FROM cases WHERE id = ?", (case,)).fetchone()
        return int(row[0]), conn.unseal("cases.log_key", bytes(row[1]))

    count, seized = await db.run(read)
    assert count == document["log"]["count"] == 14
    bundle = Bundle.from_json(json.dumps(document))
    closed = replace(bundle.case, state="closed")

    last = bundle.audit[-1]
    assert last.log is not None
    rewritten = replace(last, log=audit_link(seized, case, last.log.pos, last, closed))
    forged = replace(bundle, case=closed, audit=[*bundle.audit[:-1], rewritten])
    _refused(_open(capsys, machine, alice, json.loads(forged.to_json())), r"audit\[8\] " + ALTERED)

    close = AuditEntry(bundle.exported_at + 5, "system", "case.close", case, None)
    appended = replace(close, log=audit_link(seized, case, count, close, closed))
    later = bundle.exported_at + 5
    end = end_of_log(next_key(seized), case, count + 1, later)
    after = replace(
        bundle, case=closed, audit=[*bundle.audit, appended], log=end, exported_at=later
    )
    status, out, _ = _open(capsys, machine, alice, json.loads(after.to_json()))
    assert status == 0
    assert "state: closed" in out
    assert "case.close" in out.rstrip().splitlines()[-1]


async def test_the_store_keeps_only_the_next_link_key(
    store: CasesStore, db: Database, alice: Member
) -> None:
    """No earlier link key is anywhere in the database: each was replaced as it was used."""
    document = await _exported(store)
    bundle = Bundle.from_json(json.dumps(document))
    (sealed,) = [s for s in bundle.sealed_keys if s.recipient == "staff:1"]
    case_key = CaseKey.open(bundle.case.id, bundle.case.public_key, sealed.blob, alice.key)
    keys = [case_key.log_key()]
    for _ in range(document["log"]["count"]):
        keys.append(next_key(keys[-1]))

    def every_value(conn: Connection) -> tuple[list[bytes], list[bytes]]:
        """Every value of every table, and the keys as that engine stores them (sealed
        on PostgreSQL: there the plain keys must be nowhere)."""
        found: list[bytes] = []
        for table in _tables(conn):
            for row in conn.execute(f"SELECT * FROM {table}"):
                found.extend(v if isinstance(v, bytes) else str(v).encode() for v in row)
        return found, [conn.seal("cases.log_key", k) for k in keys]

    values, stored = await db.run(every_value)
    assert sum(stored[-1] in v for v in values) == 1, "the next position's key, once"
    assert not [k for k in (*keys[:-1], *stored[:-1]) if any(k in v for v in values)]
    if stored != keys:
        assert not [k for k in keys if any(k in v for v in values)], "no key in clear"


def _tables(conn: Connection) -> list[str]:
    if conn.sqlite:
        query = "SELECT name FROM sqlite_master WHERE type = 'table'"
    else:
        query = (
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
        )
    return [str(r[0]) for r in conn.execute(query)]


async def test_a_deleted_case_leaves_no_metadata_in_its_log(
    store: CasesStore, db: Database
) -> None:
    """Audit rows are append-only and outlive their case; the metadata each entry's tag
    covers goes with the case, so a purged case's country or urgency does not stay."""
    case = (await store.open_draft(REPORTER)).id
    await store.record_action(case, SYSTEM, "case.route", changes={"country": "KE"})
    assert await store.delete_draft(case)

    def left(conn: Connection) -> tuple[int, list[tuple[Any, ...]]]:
        states = conn.execute("SELECT count(*) FROM case_log_states").fetchone()[0]
        rows = conn.execute("SELECT * FROM audit WHERE case_id = ?", (case,)).fetchall()
        return int(states), [tuple(r) for r in rows]

    states, rows = await db.run(left)
    assert states == 0
    assert len(rows) == 3, "case.create, case.draft, case.route remain"
    texts = [v for r in rows for v in r if isinstance(v, str) and v != case]
    assert texts and not [t for t in texts if "KE" in t], "no text of the audit names it"


async def test_nothing_of_a_tampered_case_is_saved(
    store: CasesStore, alice: Member, machine: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The check comes before `--save-files` too: no folder, no file."""
    case = (await store.open_draft(REPORTER)).id
    photo = b"image/jpeg\nme.jpg\n\xff\xd8" + CANARY.encode()
    await store.add_item(case, "attachment.0", photo, replace=True)
    await store.submit(case)
    document = json.loads((await store.export_bundle(case)).to_json())
    document["case"]["state"] = "closed"
    path, folder = machine / "case.json", machine / "evidence"
    path.write_text(json.dumps(document))
    status = main(
        ["cases", "open", str(path), "--key", str(alice.path), "--save-files", str(folder)]
    )
    _refused((status, *capsys.readouterr()), r"state does not match")
    assert not folder.exists()
