"""Risk reports end to end: interview, sealing, staff alert, triage, reply, close, refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.app import App
from bot.content.library import Library
from bot.conversation.flood import FloodGuard
from bot.crypto.bundle import open_bundle
from bot.crypto.errors import CryptoError
from bot.crypto.keys import PrivateKey
from bot.model import Attachment, ChatRef
from bot.storage import Database
from tests.conftest import TEST_KEY
from tests.fakes import FakeTransport, FakeUser
from tests.reporting import (
    ONCALL,
    STAFF_ROOM,
    WHAT,
    Team,
    room_messages,
    staff_key,
    staff_says,
    start_report,
    submit_report,
)

pytestmark = pytest.mark.backends


async def test_report_is_sealed_alerted_triaged_and_answered(
    team_app: tuple[App, Team], reporter: FakeUser, transport: FakeTransport
) -> None:
    app, team = team_app
    case = await submit_report(reporter)

    alert, answers = room_messages(transport, STAFF_ROOM)[-2:]
    assert case in alert.text and "critical" in alert.text and "country: Colombia" in alert.text
    assert not alert.sensitive, "the alert itself may go anywhere staff are"
    assert WHAT in answers.text and answers.sensitive, "an encrypted room also gets the answers"

    assert case in await staff_says(app, transport, "staff-alice", "/cases")
    assert "acknowledged" in await staff_says(app, transport, "staff-alice", f"/ack {case}")
    assert "assigned" in await staff_says(app, transport, "staff-alice", f"/assign {case} Bruno")
    assert f"{case} [critical] Colombia assigned → Bruno" in await staff_says(
        app, transport, "staff-alice", "/cases"
    )
    assert "No active staff member" in await staff_says(
        app, transport, "staff-alice", f"/assign {case} Mallory"
    )
    assert "sealed" in await staff_says(
        app, transport, "staff-bruno", f"/note {case} CANARY-NOTE checked"
    )
    await staff_says(app, transport, "staff-bruno", f"/reply {case} CANARY-REPLY we are on it")
    relayed = room_messages(transport, reporter.chat)[-1]
    assert relayed.text == "Protection team: CANARY-REPLY we are on it"
    assert "Bruno" not in relayed.text and relayed.sensitive
    escalated = await staff_says(app, transport, "staff-alice", f"/escalate {case}")
    assert escalated.endswith("escalated to critical; told: on-call chat 1 (fake).")
    assert room_messages(transport, ONCALL), "the on-call list was notified"
    detail = await staff_says(app, transport, "staff-alice", f"/case {case}")
    assert "case.acknowledge (Alice)" in detail and "case.note (Bruno)" in detail
    assert "CANARY" not in detail
    assert "closed" in await staff_says(app, transport, "staff-alice", f"/close {case} relocated")
    assert "cannot be changed" in await staff_says(
        app, transport, "staff-alice", f"/reply {case} again"
    )

    bundle = await app.casework.store.export_bundle(case)
    for key in (team.alice, team.bruno, team.recovery):
        opened = {item.field: item.data for item in open_bundle(bundle, key).items}
        assert opened["answer.what"] == WHAT.encode()
        assert opened["note"] == b"CANARY-NOTE checked"
        assert opened["outcome"] == b"relocated"


async def test_alert_to_an_unencrypted_room_has_no_content(
    tmp_path: Path, library: Library, transport: FakeTransport
) -> None:
    group = ChatRef("fake", "telegram-group", private=False, encrypted=False)
    db = await Database.open(tmp_path / "g.db", TEST_KEY)
    app = await App.open(db, library, staff_rooms=(group,))
    await app.casework.store.set_recovery(PrivateKey.generate().public)
    app.attach(transport)
    case = await submit_report(FakeUser(app, transport, "r-2"))
    (alert,) = room_messages(transport, group)
    assert case in alert.text and WHAT not in alert.text and "yesterday" not in alert.text
    await db.close()


async def test_review_after_restart_says_what_is_answered_not_what(
    team_app: tuple[App, Team], reporter: FakeUser
) -> None:
    app, _ = team_app
    await start_report(reporter)
    await reporter.say(WHAT)
    app.casework._drafts.clear()  # what a restart loses
    resumed = await reporter.say("/menu")
    assert "Report a risk" in resumed.text or reporter.find("Report a risk")
    intro = await reporter.press("Report a risk")
    assert "Answered so far: 1 of 7" in intro.text
    review = await reporter.press("Send the report")
    assert "cannot show them again" in review.text
    assert "✓ What happened" in review.text and WHAT not in review.text


async def test_skip_answer_again_and_cancel_deletes_the_draft(
    team_app: tuple[App, Team], reporter: FakeUser
) -> None:
    app, _ = team_app
    await start_report(reporter)
    assert "Skipped" in (await reporter.press("Skip this question")).text
    assert "Question 1 of 7" in (await reporter.press("Previous question")).text
    await reporter.say("first version")
    await reporter.press("Previous question")
    await reporter.say("second version")
    drafts = await app.db.run(lambda c: c.execute("SELECT count(*) FROM cases").fetchone()[0])
    assert drafts == 1
    stopped = await reporter.say("/cancel")
    assert "report was deleted" in stopped.text
    left = await app.db.run(lambda c: c.execute("SELECT count(*) FROM case_items").fetchone()[0])
    assert left == 0


async def test_removed_member_cannot_open_a_later_case(
    team_app: tuple[App, Team], reporter: FakeUser
) -> None:
    app, team = team_app
    bruno = next(m for m in await app.casework.store.list_staff() if m.label == "Bruno")
    await app.casework.store.remove_staff(bruno.id)
    case = await submit_report(reporter)
    bundle = await app.casework.store.export_bundle(case)
    assert open_bundle(bundle, team.alice).items
    with pytest.raises(CryptoError):
        open_bundle(bundle, team.bruno)


async def test_reporting_without_any_key_is_explained(app: App, make_user: object) -> None:
    person = FakeUser(app, FakeTransport(), "lonely")
    await person.say("/start")
    await person.press("English")
    await person.press("Report a risk")
    reply = await person.press("Start the report")
    assert "not set up on this server" in reply.text


async def test_typed_answers_are_never_taken_for_a_button(
    team_app: tuple[App, Team], reporter: FakeUser
) -> None:
    await start_report(reporter)
    saved = await reporter.say("Stop")
    assert "Saved and locked" in saved.text
    assert "Question 2 of 7" in saved.text


async def test_a_draft_removed_underneath_ends_the_interview_politely(
    team_app: tuple[App, Team], reporter: FakeUser
) -> None:
    app, _ = team_app
    await start_report(reporter)
    await app.db.run(lambda conn: conn.execute("DELETE FROM cases"))
    reply = await reporter.say("an answer to a case that is gone")
    assert "left for too long" in reply.text
    assert "How can I help" in reply.text


async def test_a_file_and_its_caption_are_sealed_with_the_first_answer(
    team_app: tuple[App, Team], reporter: FakeUser
) -> None:
    app, team = team_app
    await start_report(reporter)
    photo = Attachment("evidence.jpg", "image/jpeg", 5, b"\xff\xd8JPG")
    saved = await reporter.deliver(attachment=photo, text="CANARY-CAPTION the van outside")
    assert "saved and locked" in saved.text
    assert "Question 1 of 7" in saved.text, "still the first question"
    huge = Attachment("video.mp4", "video/mp4", 50 * 1024 * 1024)
    assert "too big" in (await reporter.deliver(attachment=huge)).text
    await reporter.say("what happened")
    later = Attachment("late.jpg", "image/jpeg", 3, b"abc")
    assert "only be sent with the first question" in (await reporter.deliver(attachment=later)).text
    case = next(iter(app.casework._drafts))
    opened = {
        i.field: i.data
        for i in open_bundle(await app.casework.store.export_bundle(case), team.alice).items
    }
    assert opened["attachment.0"] == b"image/jpeg\nevidence.jpg\n\xff\xd8JPG"
    assert opened["caption.0"] == b"CANARY-CAPTION the van outside"
    assert "attachment.1" not in opened


async def test_a_flood_of_commands_in_the_staff_room_is_cut_short(
    team_app: tuple[App, Team], transport: FakeTransport
) -> None:
    app, _ = team_app
    app.flood = FloodGuard(rate=0.001, burst=5)
    answers = [await staff_says(app, transport, "infiltrator", "/cases") for _ in range(40)]
    refusals = [a for a in answers if "Only the protection team" in a]
    assert len(refusals) == 5, "the burst, then silence (after one notice)"
    assert sum("very fast" in a for a in answers) == 1


async def test_export_names_the_file_never_the_server_path(
    team_app: tuple[App, Team], reporter: FakeUser, transport: FakeTransport, tmp_path: Path
) -> None:
    app, _ = team_app
    case = await submit_report(reporter)
    said = await staff_says(app, transport, "staff-alice", f"/export {case}")
    assert f"{case}.bundle.json" in said and "exports folder" in said
    assert str(tmp_path) not in said and "/" not in said
    assert (tmp_path / "exports" / f"{case}.bundle.json").exists()


async def test_escalate_without_an_on_call_chat_says_nobody_else_was_told(
    tmp_path: Path, library: Library
) -> None:
    db = await Database.open(tmp_path / "n.db", TEST_KEY)
    try:
        app = await App.open(db, library, staff_rooms=(STAFF_ROOM,))
        await app.casework.store.add_staff(
            "Alice", [staff_key(app, "staff-alice")], PrivateKey.generate().public
        )
        transport = FakeTransport()
        app.attach(transport)
        case = await submit_report(FakeUser(app, transport, "alone"))
        said = await staff_says(app, transport, "staff-alice", f"/escalate {case}")
        assert "escalated" in said and "nobody else was told" in said
        assert "on-call list was notified" not in said
    finally:
        await db.close()


async def test_a_long_team_reply_arrives_in_parts_each_marked(
    team_app: tuple[App, Team], reporter: FakeUser, transport: FakeTransport
) -> None:
    """Reporters are told the team's messages start with "Protection team:": a reply too
    long for one Telegram message (4,096) goes in parts that all do."""
    app, _ = team_app
    case = await submit_report(reporter)
    words = " ".join(f"w{i:04d}" for i in range(660))
    assert 3_900 < len(words) < 4_000
    await staff_says(app, transport, "staff-bruno", f"/reply {case} {words}")
    parts = room_messages(transport, reporter.chat)[-2:]
    assert [p.text[-5:] for p in parts] == ["(1/2)", "(2/2)"]
    for part in parts:
        assert part.text.startswith("Protection team: ") and part.sensitive
        assert len(part.text) < 4_096
    joined = " ".join(p.text.removeprefix("Protection team: ")[:-6] for p in parts)
    assert joined.split() == words.split()
