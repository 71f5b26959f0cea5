"""Kill the bot at its N-th page write, for every N of a scripted report and staff session.

`strace` injects SIGKILL at the N-th `pwrite64` to the database or its WAL (counted per
thread: the database thread, or the background checkpointer while it writes). After
each kill the files are checked as they were left, then the script runs again to the
end, as the people in it would go on; then the end state is checked. Nothing told as
saved may be lost, no item may be stored twice, no case submitted (or alerted) twice,
and staff must never see a case nobody submitted. The session's SOS (on the sent case,
with a message) is sealed and alerted once, and each message the reporter sent is
stored at most once per sending, with its audit entry and one notice to the room.

With K page writes in a clean run, every N in 1..K is tried when `HRD_CRASH_STRIDE=1`;
by default a stride keeps the test near 60 s on two cores, with an offset that moves
each day so that successive runs cover every write (`HRD_CRASH_OFFSET` replays one).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytest

from bot.app import App
from bot.cases.rows import log_end
from bot.cases.store import CasesStore, CaseStoreError
from bot.content.library import Library
from bot.crypto.bundle import Bundle, open_bundle
from bot.crypto.keys import PrivateKey
from bot.model import ChatRef
from bot.safety.retention import Cutoffs, Retention
from bot.storage import Database
from tests.conftest import ROOT
from tests.crash_session import (
    KEY,
    PHOTO,
    PLATFORM,
    SOS_WORDS,
    STAFF_ITEMS,
    STAFF_STEPS,
    STORED,
    Memory,
)
from tests.fakes import FakeTransport, FakeUser
from tests.processes import bot_env
from tests.reporting import STAFF_ROOM, WHAT, Team, room_messages, start_report

STRACE = shutil.which("strace")
POINTS = 48  # kill points per run by default: under 60 s on two cores
WORKERS = 2
DB = "hrd-bot.db"
CLOSING_WRITES = 40
"""The last writes of a run are the checkpoint at close: fewer when the background
checkpointer copied pages first, so a kill point among them may come after the end."""
RECOVERY = PrivateKey.generate()


@dataclass(frozen=True)
class Case:
    id: str
    state: str
    submitted_at: int | None
    fields: list[str]
    data: dict[str, bytes]
    actions: list[str]


@dataclass(frozen=True)
class Observed:
    cases: dict[str, Case]
    listed: list[str]
    draft_in_session: str | None


async def _observe(data: Path, library: Library) -> Observed:
    db = await Database.open(data / DB, KEY)
    try:
        store = CasesStore(db)
        rows = await db.run(lambda c: c.execute("SELECT id, submitted_at FROM cases").fetchall())
        cases = {}
        for case_id, submitted in rows:
            meta = await store.case(case_id)
            bundle = Bundle(
                0,
                meta,
                await store.sealed_keys(case_id),
                [],
                await store.items(case_id),
                await store.audit(case_id),
                await db.run(partial(log_end, case_id=case_id, exported_at=0)),
            )
            opened = open_bundle(bundle, RECOVERY)
            fields = [item.field for item in opened.items]
            data_ = {item.field: item.data for item in opened.items}
            actions = [entry.action for entry, _ in opened.audit]
            cases[case_id] = Case(case_id, meta.state, submitted, fields, data_, actions)
        desk = (await App.open(db, library)).casework
        listed = [view.id for view in await desk.open_cases()]
        session = await db.run(
            lambda c: c.execute(
                "SELECT json_extract(state, '$.report.case') FROM sessions WHERE user_key LIKE ?",
                (f"{PLATFORM}:%",),
            ).fetchall()
        )
        drafts = [str(r[0]) for r in session if r[0] is not None]
        return Observed(cases, listed, drafts[0] if drafts else None)
    finally:
        await db.close()


def _check(seen: Observed, memory: Memory, where: str) -> None:
    """What must hold after any kill, and at the end."""
    submitted = [c for c in seen.cases.values() if c.state != "draft"]
    assert len(submitted) <= 1, f"{where}: a report became {len(submitted)} cases"
    assert memory.alerts <= 1, f"{where}: staff were alerted {memory.alerts} times"
    assert memory.relays <= 1, f"{where}: the team's reply reached the reporter twice"
    for case in seen.cases.values():
        assert case.state != "open", f"{where}: a phantom open case"
        twice = [f for f, n in Counter(case.fields).items() if n > 1 and f != "sos.message"]
        assert not twice, f"{where}: items stored twice: {twice}"
        assert case.actions.count("case.submit") <= 1, f"{where}: submitted twice"
        assert (case.state == "draft") == (case.submitted_at is None), where
        for action, field in STAFF_ITEMS.items():
            assert case.actions.count(action) == case.fields.count(field), (
                f"{where}: {action} and its {field} item were not one transaction"
            )
        for action, _ in STAFF_STEPS:
            assert case.actions.count(action) <= 1, f"{where}: {action} done twice"
        _check_sos(case, memory if case.id == memory.case else None, where)
    assert set(seen.listed) <= {c.id for c in submitted}, f"{where}: staff list a phantom"
    for case_id in seen.listed:
        assert seen.cases[case_id].fields, f"{where}: staff list an empty case"
    live_id = seen.draft_in_session or (submitted[0].id if submitted else None)
    acked_answers = {a for a in memory.acked if a.startswith("answer.")}
    if acked_answers or "attachment" in memory.acked:
        assert live_id is not None, f"{where}: acknowledged answers, but no case holds them"
        live = seen.cases[live_id]
        for field in acked_answers:
            assert live.data.get(field) == STORED[field], f"{where}: {field} lost"
        if "attachment" in memory.acked:
            assert live.data["attachment.0"].endswith(PHOTO.data or b""), where
            assert live.data["caption.0"] == b"CRASH-CAPTION", where
    if memory.case is not None:
        assert memory.case in seen.cases and seen.cases[memory.case].state != "draft", where
        for action, _ in STAFF_STEPS:
            if action in memory.acked:
                assert action in seen.cases[memory.case].actions, f"{where}: {action} lost"
        if "sos" in memory.acked:
            assert "case.sos" in seen.cases[memory.case].actions, f"{where}: the SOS lost"
        if "sos.message" in memory.acked:
            got = seen.cases[memory.case].data.get("sos.message")
            assert got == SOS_WORDS.encode(), f"{where}: the SOS message lost"


def _check_sos(case: Case, memory: Memory | None, where: str) -> None:
    """One SOS: sealed once and alerted once; a message stored at most once per sending
    (typing it again after a kill is the person's repeat, not the bot's), each with its
    audit entry; the room told once per stored message. `memory`: for the reported case."""
    raised = case.fields.count("sos")
    assert raised <= 1, f"{where}: the SOS was sealed {raised} times"
    assert case.actions.count("case.sos") == raised, f"{where}: SOS and its audit split"
    said = case.fields.count("sos.message")
    assert said == case.actions.count("sos.message"), f"{where}: message and audit split"
    sent = memory.sent["sos.message"] if memory is not None else 0
    assert said <= sent, f"{where}: an SOS message stored twice"
    if memory is not None:
        assert memory.sos_alerts <= raised, f"{where}: {memory.sos_alerts} SOS alerts"
        assert memory.sos_notices <= said, f"{where}: the room told of a message twice"


def _check_end(seen: Observed, memory: Memory, where: str) -> None:
    _check(seen, memory, where)
    assert memory.case is not None, f"{where}: the report was never sent"
    case = seen.cases[memory.case]
    assert case.state == "closed", where
    expected = {**STORED, "note": b"CRASH-NOTE", "reply": b"CRASH-REPLY"}
    expected["outcome"] = b"CRASH-OUTCOME"
    for field, value in expected.items():
        assert case.data.get(field) == value, f"{where}: {field} missing at the end"
    assert "attachment.0" in case.data, where
    for action, _ in STAFF_STEPS:
        assert case.actions.count(action) == 1, f"{where}: {action} not done exactly once"
    assert case.actions.count("case.submit") == 1, where
    assert memory.sos_alerts == 1 and case.fields.count("sos") == 1, f"{where}: SOS not once"
    assert case.data["sos.message"] == SOS_WORDS.encode(), where
    assert memory.sos_notices == case.fields.count("sos.message") >= 1, where


def _env() -> dict[str, str]:
    env = bot_env(Path("/nonexistent"))
    env.pop("HRD_BOT_DATA_DIR")
    return env


def _script(data: Path, transcript: Path, kill_at: int | None = None) -> int:
    command = [sys.executable, "-m", "tests.crash_session", str(data), str(transcript)]
    if kill_at is not None:
        assert STRACE is not None
        injection = f"inject=pwrite64:signal=KILL:when={kill_at}"
        trace = ["-P", str(data / DB), "-P", str(data / f"{DB}-wal")]
        command = [STRACE, "-f", "-qq", "-o", "/dev/null", "-e", injection, *trace, *command]
    run = subprocess.run(
        command, env=_env(), cwd=ROOT, capture_output=True, timeout=120, check=False
    )
    if kill_at is None and run.returncode != 0:
        raise AssertionError(run.stderr.decode(errors="replace")[-3000:])
    return run.returncode


def _writes_per_thread(data: Path, transcript: Path, trace: Path) -> int:
    """A clean run under strace: the most page writes any one thread made."""
    assert STRACE is not None
    command = [
        STRACE,
        "-f",
        "-qq",
        "-o",
        str(trace),
        "-e",
        "trace=pwrite64",
        "-P",
        str(data / DB),
        "-P",
        str(data / f"{DB}-wal"),
        sys.executable,
        "-m",
        "tests.crash_session",
        str(data),
        str(transcript),
    ]
    subprocess.run(command, env=_env(), cwd=ROOT, capture_output=True, timeout=120, check=True)
    threads = Counter(line.split()[0] for line in trace.read_text().splitlines())
    return max(threads.values())


async def _template(folder: Path, library: Library) -> None:
    db = await Database.open(folder / DB, KEY)
    try:
        app = await App.open(db, library)
        store = app.casework.store
        staff = app.pseudonyms.user(PLATFORM, "staff").key
        await store.add_staff("Alice", [staff], PrivateKey.generate().public)
        await store.set_recovery(RECOVERY.public)
    finally:
        await db.close()


def _kill_and_resume(template: Path, work: Path, library: Library, n: int) -> bool:
    """One kill point; True when the kill happened (N was within the run's writes)."""
    data, transcript = work / f"kill-{n}", work / f"kill-{n}.jsonl"
    shutil.copytree(template, data)
    code = _script(data, transcript, kill_at=n)
    killed = code != 0
    left = work / f"kill-{n}-as-left"
    shutil.copytree(data, left)
    where = f"killed at page write {n}"
    _check(asyncio.run(_observe(left, library)), Memory.read(transcript), where)
    if killed:
        _script(data, transcript)
        memory = Memory.read(transcript)
        _check_end(asyncio.run(_observe(data, library)), memory, where + ", then resumed")
    shutil.rmtree(data)
    shutil.rmtree(left)
    return killed


def _points(total: int) -> list[int]:
    stride = int(os.environ.get("HRD_CRASH_STRIDE", "0")) or max(1, -(-total // POINTS))
    offset = int(os.environ.get("HRD_CRASH_OFFSET", str(int(time.time() // 86400) % stride)))
    return list(range(1 + offset % stride, total + 1, stride))


@pytest.mark.skipif(STRACE is None and not os.environ.get("CI"), reason="needs strace")
def test_a_kill_at_any_page_write_loses_nothing_and_doubles_nothing(
    tmp_path: Path, library: Library
) -> None:
    assert STRACE is not None, "CI must install strace (see .ci/run)"
    template = tmp_path / "template"
    template.mkdir(mode=0o700)
    asyncio.run(_template(template, library))

    clean, clean_log = tmp_path / "clean", tmp_path / "clean.jsonl"
    shutil.copytree(template, clean)
    total = _writes_per_thread(clean, clean_log, tmp_path / "trace.txt")
    memory = Memory.read(clean_log)
    _check_end(asyncio.run(_observe(clean, library)), memory, "a clean run")
    assert memory.alerts == 1, "a clean run alerts staff once"
    assert total > 50, f"only {total} page writes: is strace counting?"

    points = _points(total)
    with ThreadPoolExecutor(WORKERS) as pool:
        runs = list(pool.map(lambda n: _kill_and_resume(template, tmp_path, library, n), points))
    missed = [n for n, killed in zip(points, runs, strict=True) if not killed]
    print(f"{total} page writes; killed at {len(points) - len(missed)} of them: {points}")
    assert all(n > total - CLOSING_WRITES for n in missed), f"no kill at {missed}"


async def _to_review(person: FakeUser) -> str:
    await start_report(person)
    await person.say(WHAT)
    for _ in range(5):
        await person.press("Skip this question")
    review = await person.press("Skip this question")
    assert "Before you send" in review.text
    case = await person.app.db.run(
        lambda c: c.execute("SELECT id FROM cases WHERE state = 'draft'").fetchone()[0]
    )
    return str(case)


async def test_a_report_sent_before_the_reply_was_lost_is_told_at_the_next_message(
    team_app: tuple[App, Team], library: Library, transport: FakeTransport
) -> None:
    """Killed after the submission committed, before its reply and session save: after the
    restart the reporter is told it was sent (and its reference), never "not sent yet"."""
    app, _ = team_app
    app.attach(transport)
    case = await _to_review(FakeUser(app, transport, "reporter-9"))
    assert (await app.casework.store.submit(case)).first  # the reply never left
    restarted = await App.open(app.db, library, staff_rooms=(STAFF_ROOM,))
    restarted.attach(transport)
    person = FakeUser(restarted, transport, "reporter-9")
    back = await person.say("/start")
    assert f"case reference is {case}" in back.text and "not sent yet" not in back.text
    assert person.find("Report a risk"), "on the main menu"
    assert "case reference" not in (await person.say("/menu")).text, "told once"


async def test_send_pressed_again_on_a_stale_screen_alerts_once(
    team_app: tuple[App, Team], transport: FakeTransport
) -> None:
    app, _ = team_app
    app.attach(transport)
    person = FakeUser(app, transport, "reporter-8")
    case = await _to_review(person)
    send = person.find("Send the report").id
    assert f"case reference is {case}" in (await person.press_id(send)).text
    alerts = len(room_messages(transport, STAFF_ROOM))
    await app.casework.submit(case)
    assert len(room_messages(transport, STAFF_ROOM)) == alerts, "no second alert"
    audit = [e.action for e in await app.casework.store.audit(case)]
    assert audit.count("case.submit") == 1


async def test_a_draft_whose_reply_never_left_is_never_listed_and_is_purged(
    team_app: tuple[App, Team], transport: FakeTransport
) -> None:
    """Killed after the draft was opened, before the session pointed at it: staff never
    see it, and retention deletes it with the other old drafts."""
    app, _ = team_app
    reporter = app.pseudonyms.user("fake", "reporter-7")
    orphan = await app.casework.open_draft(reporter, ChatRef("fake", "chat-7"), "en")
    assert orphan is not None
    assert orphan not in [view.id for view in await app.casework.open_cases()]
    later = int(time.time()) + 10
    report = await Retention(app.db).purge(Cutoffs(0, drafts_before=later, idle_before=0))
    assert report.removed == 1
    with pytest.raises(CaseStoreError):
        await app.casework.store.case(orphan)


async def test_sos_pressed_again_after_its_answer_was_lost_alerts_once(
    team_app: tuple[App, Team], transport: FakeTransport
) -> None:
    """Killed after the SOS committed, before its answer and session save: the person
    presses "Yes" again on the confirmation still on screen. The team has one alert and
    the case one SOS; the person is told where their alert stands. A later SOS, from a
    new confirmation, alerts again."""
    app, _ = team_app
    app.attach(transport)
    person = FakeUser(app, transport, "reporter-6")
    await person.say("/start")
    await person.press("English")
    confirm = (await person.say("/sos")).choices[0].id
    user = app.pseudonyms.user(transport.name, person.platform_id)
    raised = await app.casework.sos.raise_alert(user, person.chat, "en")
    assert raised is not None  # the answer never left; the session is still on the screen
    await app.outbox.drain()
    alerts = len(room_messages(transport, STAFF_ROOM))
    again = await person.press_id(confirm)
    assert f"has your alert now (case {raised.case})" in again.text
    await app.outbox.drain()
    assert len(room_messages(transport, STAFF_ROOM)) == alerts, "no second alert"
    audit = [e.action for e in await app.casework.store.audit(raised.case)]
    assert audit.count("case.sos") == 1
    await person.say("/sos")
    await person.press("Yes, alert the team now")
    await app.outbox.drain()
    assert len(room_messages(transport, STAFF_ROOM)) == alerts + 1, "a new SOS alerts"
