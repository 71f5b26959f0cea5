"""Spoofing on a real Synapse: hostile answers and thread messages, typed by an activist in
their encrypted DM, as the staff member's own client decrypts them in the encrypted staff
room, plain and HTML bodies, read by the parser of tests/security/test_spoofing.py."""

from __future__ import annotations

import asyncio

from nio import MatrixRoom, RoomMessageNotice

from tests.matrix.activist import Activist
from tests.matrix.fixtures import Bot
from tests.matrix.staff import Desk
from tests.security.test_spoofing import (
    FAKE,
    assert_framed,
    assert_html_framed,
)

ANSWERS = [
    f"we are fine\nNew case {FAKE} · urgency: critical · country: CO\u202e",
    f"a\u2028Protection team: this case was reviewed, no action needed\u2029Case {FAKE}: ok",
    f"</blockquote><b>New case {FAKE}</b>\n\u2066Audit:\u2069\n\u200b[note #3] 2026-01-01",
    ("word " * 700) + f"\nNew case {FAKE} · urgency: critical",
]
MESSAGE = f"thanks\r\nProtection team: closed\n\nNew message on {FAKE} from the reporter.\u202c"


async def test_hostile_words_reach_the_staff_client_only_inside_the_quote(
    bot: Bot, desk: Desk, activist: Activist
) -> None:
    seen: list[tuple[str, str | None]] = []
    relayed = asyncio.Event()

    async def on_notice(room: MatrixRoom, event: RoomMessageNotice) -> None:
        if room.room_id == desk.room.room_id and event.sender == bot.account.user_id:
            seen.append((event.body, event.formatted_body))
            if "> thanks" in event.body:
                relayed.set()

    desk.staff.client.add_event_callback(on_notice, RoomMessageNotice)
    dm = await activist.open_dm()
    await dm.pick("English")
    await dm.pick("Report a risk")
    await dm.pick("Start the report")
    await dm.say(ANSWERS[0])
    await dm.say(ANSWERS[1])
    await dm.say("Colombia")
    await dm.say(ANSWERS[2])
    await dm.pick("Danger now")
    await dm.say(ANSWERS[3])
    await dm.pick("Yes, if it helps")
    sent = await dm.pick("Send the report")
    case = next(word for word in sent.split() if word.startswith("HRD-")).rstrip(".")
    await dm.say("/menu")
    await dm.pick("Message the protection team")
    assert (await dm.say(MESSAGE)).startswith("Delivered to the team, locked.")
    await asyncio.wait_for(relayed.wait(), 30)

    assert bot.app is not None
    t = bot.app.casework.staff_translator()
    own = {t("staff.alert_answers")} | {
        f"• {q.text.splitlines()[0]}" for q in t.interview().questions
    }
    own |= {t("staff.thread_new", case=case), t("staff.thread_marker", case=case)}
    framed: list[str] = []
    for body, formatted in seen:
        if body.startswith(("New case HRD-", "Files")):
            continue  # the alert itself: the bot's line alone, checked below
        framed += assert_framed(body, own.__contains__)
        if formatted is not None:
            assert_html_framed(formatted, own.__contains__)
    alerts = [body for body, _ in seen if body.startswith("New case HRD-")]
    hint = t("staff.claim_hint")  # how to claim it: the bot's own line too
    assert alerts == [f"New case {case} · urgency: critical · country: Colombia\n{hint}"]
    assert f"> New case {FAKE} · urgency: critical · country: CO⟨U+202E⟩" in framed
    assert "> Protection team: closed" in framed
    with_html = [formatted for _, formatted in seen if formatted is not None]
    assert len(with_html) >= 2, "the answers and the relay carry a <blockquote> body"
