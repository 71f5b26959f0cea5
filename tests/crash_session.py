"""A scripted report and staff session against the real bot, that a crash test can kill.

`python -m tests.crash_session DATA TRANSCRIPT` runs the app on the database in DATA with
a reporter in a private chat and a staff member in the staff room, both typing as a
person would: they read the bot's last reply and answer what it asks. Everything they
are told is appended to TRANSCRIPT (JSON lines) as it arrives, so what a killed run
acknowledged is known to the test, and a person's memory survives the kill: a new run
reads the transcript and goes on from there, like someone who saw the bot stop. Staff
who got no reply to a command look at `/case` before sending it again.

Once the report is sent, the reporter raises an SOS on it and types a message for the
team (no location: like the console, this platform has none to share). A press that got
no answer is pressed again on the screen still showing; a message that got none is typed
again. Each sending is in the transcript (`sent`), so a check can tell the person's own
repeats from the bot's.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.app import App
from bot.content.loader import load_library
from bot.conversation.flood import FloodGuard
from bot.model import Attachment, ChatRef, Incoming, Reply
from bot.storage import Database, DbKey
from tests.conftest import CONTENT

KEY = DbKey("3c" * 32)
PLATFORM = "crash"
STAFF_ROOM = ChatRef(PLATFORM, "staff-room", private=False)
REPORTER_CHAT = ChatRef(PLATFORM, "reporter-chat")
TYPED = {
    "what": "CRASH-WHAT",
    "when": "CRASH-WHEN",
    "where": "Kenya",
    "who": "CRASH-WHO",
    "contact": "CRASH-CONTACT",
}
PRESSED = {"urgency": "Danger now", "consent": "No, only the team"}
STORED = {
    **{f"answer.{q}": v.encode() for q, v in TYPED.items()},
    "answer.where": b"KE",
    "answer.urgency": b"critical",
    "answer.consent": b"no",
}
QUESTIONS = ("what", "when", "where", "who", "urgency", "contact", "consent")
PHOTO = Attachment("evidence.jpg", "image/jpeg", 2048, b"\xff\xd8" + b"\x5a" * 2046)
ATTACHMENT_SAVED = "file is saved and locked"
STAFF_STEPS = (
    ("case.acknowledge", "/ack {case}"),
    ("case.note", "/note {case} CRASH-NOTE"),
    ("case.assign", "/assign {case} Alice"),
    ("case.reply.queued", "/reply {case} CRASH-REPLY"),
    ("case.close", "/close {case} CRASH-OUTCOME"),
)
STAFF_ITEMS = {"case.note": "note", "case.reply.queued": "reply", "case.close": "outcome"}
FAILED = ("went wrong", "storage fault", "could not")
ALERT = "New case HRD-"
SOS_ALERT = "🆘 SOS on case HRD-"
SOS_NOTICE = "the reporter added a message"
SOS_WORDS = "CRASH-SOS they are at the door"
SOS_TOLD = ("has your alert now", "Your alert is saved", "What happens now:")
SOS_CONFIRM = "sos:confirm"


@dataclass
class Memory:
    """What the people in the script were told, across runs."""

    acked: set[str]
    case: str | None
    alerts: int
    keys: set[str]
    relays: int
    """How many times the team's reply reached the reporter."""
    sos_alerts: int
    sos_notices: int
    sent: Counter[str]
    """How many times the reporter sent each SOS step ("sos", "sos.message")."""

    @classmethod
    def read(cls, transcript: Path) -> Memory:
        lines = transcript.read_text().splitlines() if transcript.exists() else []
        events = [json.loads(line) for line in lines if line.endswith("}")]
        acked = {e["ack"] for e in events if "ack" in e}
        cases = [e["case"] for e in events if "case" in e]
        alerts = sum(1 for e in events if e.get("to") == "room" and ALERT in e["text"])
        keys = {e["key"] for e in events if "key" in e}
        relays = sum(1 for e in events if e.get("to") == "reporter" and "CRASH-REPLY" in e["text"])
        room = [e["text"] for e in events if e.get("to") == "room"]
        sos_alerts = sum(1 for text in room if SOS_ALERT in text)
        sos_notices = sum(1 for text in room if SOS_NOTICE in text)
        sent = Counter(e["sent"] for e in events if "sent" in e)
        case = cases[-1] if cases else None
        return cls(acked, case, alerts, keys, relays, sos_alerts, sos_notices, sent)


class Recorder:
    """The transport: replies to chats other than the sender's (alerts, team replies).

    Like a Matrix homeserver with transaction ids, it keeps one message per key, across
    restarts too (the keys are in the transcript)."""

    name = PLATFORM
    idempotent = True
    connected = True

    def __init__(self, log: Transcript, keys: set[str]) -> None:
        self._log = log
        self._keys = keys
        self.room: list[str] = []

    async def run(self, handle: Any) -> None:
        return None

    async def send(self, chat: ChatRef, reply: Reply, key: str = "") -> tuple[str, ...]:
        if key in self._keys:
            return (key,)
        self._keys.add(key)
        to = "room" if chat == STAFF_ROOM else "reporter"
        self._log.write({"to": to, "text": reply.text, "key": key})
        if to == "room":
            self.room.append(reply.text)
        return (key,)

    async def stop(self) -> None:
        return None


class Transcript:
    """Appended and flushed line by line: a line written is a line the person saw."""

    def __init__(self, path: Path) -> None:
        self._file = path.open("a", encoding="utf-8")

    def write(self, event: dict[str, Any]) -> None:
        self._file.write(json.dumps(event) + "\n")
        self._file.flush()


class Script:
    def __init__(self, app: App, log: Transcript, memory: Memory, recorder: Recorder) -> None:
        self.app, self.log, self.memory, self.recorder = app, log, memory, recorder
        self.reporter = app.pseudonyms.user(PLATFORM, "reporter")
        self.staff = app.pseudonyms.user(PLATFORM, "staff")
        self.last = Reply("")

    def ack(self, what: str) -> None:
        self.memory.acked.add(what)
        self.log.write({"ack": what})

    async def _send(self, **fields: Any) -> Reply:
        msg = Incoming(self.reporter, REPORTER_CHAT, language_hint="en", **fields)
        replies: Sequence[Reply] = await self.app.handle(msg)
        for reply in replies:
            self.log.write({"to": "reporter-reply", "text": reply.text})
        self.last = replies[-1]
        return self.last

    async def say(self, text: str) -> Reply:
        return await self._send(text=text, raw_size=len(text.encode()))

    async def press(self, label: str) -> Reply:
        choice = next(c for c in self.last.choices if label in c.label)
        return await self._send(choice=choice.id)

    def offers(self, label: str) -> bool:
        return any(label in c.label for c in self.last.choices)

    async def report(self) -> None:
        await self.say("/start")
        for _ in range(60):
            text = self.last.text
            if "case reference is" in text:
                case = text.split("case reference is ")[1].split(".")[0]
                self.memory.case = case
                self.log.write({"case": case})
                return
            if "Question " in text and " of 7" in text:
                await self._answer(int(text.split("Question ")[1].split(" of")[0]) - 1)
            elif self.offers("English"):
                await self.press("English")
            else:
                for label in (
                    "Continue the report",
                    "Send the report",
                    "Start the report",
                    "Report a risk",
                ):
                    if self.offers(label):
                        await self.press(label)
                        break
                else:
                    await self.say("/menu")
        raise AssertionError(f"the report never ended; last screen: {self.last.text!r}")

    async def _answer(self, index: int) -> None:
        question = QUESTIONS[index]
        if question == "what" and "attachment" not in self.memory.acked:
            said = await self._send(attachment=PHOTO, text="CRASH-CAPTION")
            if ATTACHMENT_SAVED in said.text:
                self.ack("attachment")
            return
        if question in PRESSED:
            said = await self.press(PRESSED[question])
        else:
            said = await self.say(TYPED[question])
        if "Saved and locked" in said.text:
            self.ack(f"answer.{question}")

    async def sos(self) -> None:
        """An SOS on the sent report, then a message for the team. A press that got no
        answer is pressed again on the confirmation still on screen; the bot answers with
        where the person is now (the raised SOS, if it was)."""
        if "sos" not in self.memory.acked:
            if not self.memory.sent["sos"]:
                await self.say("/sos")
            said = await self._sos_step("sos", choice=SOS_CONFIRM)
            assert any(told in said.text for told in SOS_TOLD), said.text
            self.ack("sos")
        if "sos.message" not in self.memory.acked:
            said = await self._sos_step("sos.message", text=SOS_WORDS)
            assert "Your message is sealed" in said.text, said.text
            self.ack("sos.message")

    async def _sos_step(self, step: str, **fields: Any) -> Reply:
        self.memory.sent[step] += 1
        self.log.write({"sent": step})
        if "text" in fields:
            fields["raw_size"] = len(fields["text"].encode())
        return await self._send(**fields)

    async def staff_session(self, case: str) -> None:
        for action, command in STAFF_STEPS:
            if action in self.memory.acked:
                continue
            history = await self._staff(f"/case {case}")
            if action not in history:
                said = await self._staff(command.format(case=case))
                if said and not any(word in said for word in FAILED):
                    self.ack(action)

    async def _staff(self, text: str) -> str:
        """The command's answer, and what the engine told the room meanwhile (`/reply`
        answers through the outbox, "queued" then the outcome)."""
        msg = Incoming(
            self.staff, STAFF_ROOM, text=text, raw_size=len(text.encode()), verified_device=True
        )
        before = len(self.recorder.room)
        replies = await self.app.handle(msg)
        await self.app.outbox.drain()
        said = "\n".join([r.text for r in replies] + self.recorder.room[before:])
        self.log.write({"to": "staff-reply", "text": said})
        return said


async def main(data: Path, transcript: Path) -> None:
    library, problems = load_library(CONTENT)
    assert library is not None, problems
    db = await Database.open(data / "hrd-bot.db", KEY)
    try:
        app = await App.open(db, library, staff_rooms=(STAFF_ROOM,))
        app.flood = FloodGuard(burst=10_000)
        log = Transcript(transcript)
        memory = Memory.read(transcript)
        recorder = Recorder(log, memory.keys)
        app.attach(recorder)
        await app.start_delivery()
        script = Script(app, log, memory, recorder)
        if script.memory.case is None:
            await script.report()
        assert script.memory.case is not None
        await script.sos()
        await script.staff_session(script.memory.case)
        await app.outbox.drain()
        log.write({"done": True})
    finally:
        await app.outbox.close()
        await db.close()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), Path(sys.argv[2])))
