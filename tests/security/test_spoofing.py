"""Nobody outside the team can write a line that staff would read as the bot's.

A corpus of hostile inputs (copies of every kind of line the bot shows staff, fake case
ids, every line break a client may honour, bidi controls, zero-width and other format
characters, HTML and Markdown) goes through each path a reporter's words take to staff:
the alert's answers, the thread relay, `hrd-bot cases open`, and the Matrix and Telegram
renderings of those messages (split into events or messages as the transports split
them). A reader-like parser then splits every output at every break a client may show
and checks each line: either it is framed (starts with ">") or it is exactly one of the
bot's own lines for that output. No bidi or other format character survives anywhere,
except ZWNJ/ZWJ inside non-Latin words.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import unicodedata
from collections.abc import Callable, Mapping
from html.parser import HTMLParser
from pathlib import Path
from typing import cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.app import App
from bot.cases.quoting import LINE_CHARS, QUOTE, inline, quoted
from bot.cli.cases import open_command
from bot.config import Settings
from bot.content.library import Library, Translator
from bot.crypto.cases import CaseKey, Recipient, new_case_id, seal_item
from bot.crypto.keys import PrivateKey
from bot.crypto.records import AuditEntry, CaseMeta, SealedItem
from bot.model import ChatRef, Incoming, Reply, UserRef
from bot.transports.matrix.render import contents
from bot.transports.telegram.render import split_text
from handlers.router import input_problem
from tests.fakes import FakeTransport, FakeUser
from tests.logged import logged_bundle
from tests.reporting import STAFF_ROOM, Team, room_messages

FAKE = "HRD-FAKE-0000"
CORPUS: list[str] = [
    # The bot's own staff lines, after a first line of ordinary words.
    f"we are fine\nNew case {FAKE} · urgency: critical · country: CO",
    f"ok\nCase {FAKE}: the reporter answered a check-in with “I need help now”. Urgency is now critical.",
    "see below\nProtection team: this case was reviewed, no action needed",
    f"x\nCase {FAKE}: a check-in was not answered for 30 minutes.",
    "x\nAnswers (sent end-to-end encrypted, not kept readable on the server):\n• How urgent is it?",
    f"x\nNew message on {FAKE} from the reporter.\nReporter's message on {FAKE}, their words quoted:",
    f"x\nReply to the reporter of {FAKE}: delivered.\nEscalated: case {FAKE} is now critical.",
    "x\nFiles: photo (6.2 KB), PDF document (120 KB)",
    # `cases open` headers and audit lines.
    "x\n\n[note #3] 2026-01-01 00:00:00 UTC\nno action needed",
    "x\n\nAudit:\n2026-01-01 00:00:00 UTC  staff:1  case.close",
    f"x\nCase {FAKE} (opened as staff:1)\nstate: closed  country: CO  urgency: normal",
    "x\nattachment 1: photo, 6 KB (use --save-files DIR to save)",
    # Staff commands and fake case ids.
    f"/close {FAKE} nothing to do\n/reply {FAKE} come to the bus station at 18:00",
    "HRD-7KQ4\u200b-M2XP is my case\nHRD-7KQ4-M2XP\u2060",
    # Every line break a client may show.
    f"a\rNew case {FAKE} · urgency: critical · country: CO",
    f"a\r\nProtection team: closed\r\n\r\nNew case {FAKE}",
    f"a\u2028New case {FAKE}\u2029Protection team: done",
    f"a\x85New case {FAKE}\x0bProtection team: done\x0cCase {FAKE}: ok",
    f"a\x1cNew case {FAKE}\x1dAudit:\x1eProtection team: done",
    # Bidi controls, alone and mixed with the fake lines.
    f"\u202eesac weN\u202c\n\u202aNew case {FAKE}\u202c",
    f"\u202b\u202dProtection team: ok\u202c\n\u2066New case {FAKE}\u2069",
    f"\u2067\u2068x\u2069\u2069\n\u200e\u200fNew case {FAKE}\u061c",
    "ok \u202e)lanoitaN( reviewed \u202c done",
    # Zero-width and other format characters.
    f"\u200b\nNew case\u200d {FAKE}\ufeff\u200c",
    "\U000e0041\U000e0042 tags\U000e007f hidden \u00ad soft \u180e \u2061\u2062\u2063\u2064",
    "\ufff9annotated\ufffa\ufffb \U0001d173\U0001d17a \u206a\u206f \u2065",
    # Hangul fillers and padding to a client's wrapped row.
    f"\u3164\u3164\nx{' ' * 300}New case {FAKE} · urgency: critical",
    "x" + "\u00a0" * 200 + "\u3000" * 100 + "\t\t\tProtection team: done",
    # HTML and Markdown.
    f"</blockquote><b>New case {FAKE}</b><br>Protection team: ok",
    "<!-- x -->\n<a href='https://evil.example'>Protection team</a>\n&lt;b&gt;",
    f"**New case {FAKE}**\n# Protection team: done\n---\n| a | b |",
    f"```\nNew case {FAKE}\n```\n[Protection team](https://evil.example)",
    f"> already quoted\n>\n>> New case {FAKE}",
    # Long lines that a transport must split into several parts.
    ("word " * 780) + f"\nNew case {FAKE} · urgency: critical",
    ("x" * 3950) + f"\nProtection team: {FAKE} closed",
    # Combining marks at a line's start, and a legitimate Persian and Arabic answer.
    f"x\n\u0338New case {FAKE}\n\u20dfProtection team",
    "می‌خواهم با تیم صحبت کنم\nتبعوني بعد الاجتماع",
]
BREAKS = re.compile("\r\n|[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
JOINERS = "\u200c\u200d"
FILLERS = "\u115f\u1160\u3164\uffa0"


def reader_lines(text: str) -> list[str]:
    """Lines as some client shows them: split at every break any client honours."""
    return BREAKS.split(text)


def _letter(char: str) -> bool:
    category = unicodedata.category(char)
    return not char.isascii() and (category[0] in "LM" or category in ("So", "Sk"))


def hidden_at(line: str) -> list[str]:
    """Invisible or control characters in `line`, but ZWNJ/ZWJ inside a non-Latin word."""
    found = []
    for i, char in enumerate(line):
        category = unicodedata.category(char)
        if category not in ("Cc", "Cf", "Cn", "Zl", "Zp") and char not in FILLERS:
            continue
        if category == "Cn" and not 0x2060 <= ord(char) <= 0x206F:
            continue
        inside = 0 < i < len(line) - 1 and _letter(line[i - 1]) and _letter(line[i + 1])
        if char in JOINERS and inside:
            continue
        found.append(f"U+{ord(char):04X}")
    return found


def assert_framed(text: str, own: Callable[[str], bool]) -> list[str]:
    """Every line is framed or the bot's own (`own`); nothing hidden. The framed lines."""
    framed = []
    for line in reader_lines(text):
        assert not hidden_at(line), f"hidden characters {hidden_at(line)} in {line!r}"
        if line == QUOTE.rstrip() or line.startswith(QUOTE):
            framed.append(line)
        else:
            assert own(line), f"a line outside the frame is not the bot's: {line!r}"
    return framed


class HtmlReader(HTMLParser):
    """Reads a Matrix formatted body as a client draws it: rows, each inside a quote or not."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.depth = 0
        self.rows: list[tuple[bool, str]] = [(False, "")]
        self.tags: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.depth += tag == "blockquote"
        self.rows.append((self.depth > 0, ""))

    def handle_endtag(self, tag: str) -> None:
        self.tags.add(tag)
        self.depth -= tag == "blockquote"
        self.rows.append((self.depth > 0, ""))

    def handle_data(self, data: str) -> None:
        inside, text = self.rows[-1]
        self.rows[-1] = (inside, text + data)


def assert_html_framed(formatted: str, own: Callable[[str], bool]) -> None:
    """Only `<blockquote>` and `<br>` are markup; every row outside a quote is the bot's."""
    reader = HtmlReader()
    reader.feed(formatted)
    reader.close()
    assert reader.tags <= {"blockquote", "br"}, reader.tags
    assert reader.depth == 0
    for inside, row in reader.rows:
        for line in reader_lines(row):
            assert not hidden_at(line), f"hidden characters {hidden_at(line)} in {line!r}"
            assert inside or not line or own(line), f"outside the quote: {line!r}"


def assert_transports(reply: Reply, own: Callable[[str], bool]) -> None:
    """Each Matrix event (plain and HTML bodies) and each Telegram message the reply
    becomes: a reader sees each on its own, so each must hold up alone."""
    for content in contents(reply):
        framed = assert_framed(content["body"], own)
        assert bool(framed) == ("formatted_body" in content)
        if framed:
            assert content["format"] == "org.matrix.custom.html"
            assert_html_framed(content["formatted_body"], own)
    for piece in split_text(reply.text):
        assert_framed(piece, own)


def _tagged(number: int, text: str) -> str:
    return f"{text} TAG{number:02d}"


# The paths, driven through the engine (what the handlers call) ---------------------------


async def _report(app: App, user: UserRef, answers: Mapping[str, str]) -> str:
    chat = ChatRef("fake", "chat-reporter-1")
    case_id = await app.casework.open_draft(user, chat, "en")
    assert case_id is not None
    for field, value in answers.items():
        await app.casework.record(case_id, field, value.encode())
    await app.casework.route(case_id, country="CO", urgency="critical")
    await app.casework.submit(case_id)
    await app.outbox.drain()
    return case_id


def _answer_lines(t: Translator) -> set[str]:
    return {t("staff.alert_answers")} | {
        f"• {q.text.split(chr(10))[0]}" for q in t.interview().questions
    }


def _thread_line(t: Translator, case_id: str) -> Callable[[str], bool]:
    marker = re.escape(t("staff.thread_marker", case=case_id))
    head = re.compile(rf"{marker}( \(\d+/\d+\))?")
    plain = {t("staff.thread_new", case=case_id), t("staff.thread_closed", case=case_id)}
    return lambda line: bool(head.fullmatch(line)) or line in plain


def _cases_open_line(case_id: str) -> Callable[[str], bool]:
    when = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC"
    shapes = [
        rf"Case {case_id} \(opened as staff:\d+\)",
        r"state: new  country: CO \(Colombia\)  urgency: critical",
        rf"created: {when}  updated: {when}",
        r"",
        rf"\[(answer\.(what|when|who|contact)|message) #\d+\] {when}",
        r"Audit:",
        rf"{when}  (system|fake:[0-9a-f]+)  [a-z.]+( \{{[^\n]*\}})?",
    ]
    pattern = re.compile("|".join(f"(?:{shape})" for shape in shapes))
    return lambda line: bool(pattern.fullmatch(line))


CHUNKS = [CORPUS[i : i + 4] for i in range(0, len(CORPUS), 4)]


def test_the_corpus_is_large_and_the_bot_never_starts_a_line_with_the_frame(
    library: Library,
) -> None:
    """The frame works only if no line of the bot's own starts with ">" (any language)."""
    assert len(CORPUS) >= 30
    for pack in library.packs.values():
        t = library.translator(pack.code)
        texts = [
            text
            for k, v in pack.strings.items()
            if k.startswith(("staff.", "delivery."))
            for text in ([v] if isinstance(v, str) else v.forms().values())
        ]
        texts += [q.text for q in t.interview().questions]
        for text in texts:
            for line in reader_lines(text):
                assert not line.lstrip("\u200f").startswith(">"), (pack.code, line)


@pytest.mark.parametrize("chunk", range(len(CHUNKS)))
async def test_hostile_answers_and_messages_stay_framed_everywhere(
    chunk: int,
    team_app: tuple[App, Team],
    reporter: FakeUser,
    transport: FakeTransport,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app, team = team_app
    t = app.casework.staff_translator()
    entries = [_tagged(chunk * 4 + n, text) for n, text in enumerate(CHUNKS[chunk])]
    fields = ("answer.what", "answer.when", "answer.who", "answer.contact")
    user = app.pseudonyms.user("fake", "reporter-1")
    case_id = await _report(app, user, dict(zip(fields, entries, strict=False)))

    answers = room_messages(transport, STAFF_ROOM)[-1]
    assert answers.sensitive
    own_answers = _answer_lines(t)
    seen = assert_framed(answers.text, own_answers.__contains__)
    assert_transports(answers, own_answers.__contains__)

    before = len(room_messages(transport, STAFF_ROOM))
    for entry in entries:
        assert await app.casework.thread.write(user, case_id, entry) is not None
    await app.outbox.drain()
    own_thread = _thread_line(t, case_id)
    for relay in room_messages(transport, STAFF_ROOM)[before:]:
        seen += assert_framed(relay.text, own_thread)
        assert_transports(relay, own_thread)

    bundle = tmp_path / "case.json"
    bundle.write_text((await app.casework.store.export_bundle(case_id)).to_json())
    monkeypatch.setattr("bot.cli.cases.private_key", lambda settings, path: team.alice)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        args = argparse.Namespace(bundle=bundle, key=Path("alice.key"))
        assert open_command(cast(Settings, None), args) == 0
    seen += assert_framed(printed.getvalue(), _cases_open_line(case_id))

    for n in range(len(entries)):
        tag = f"TAG{chunk * 4 + n:02d}"
        assert sum(tag in line for line in seen) == 4, f"{tag}: alert, relay, cases open (both)"


async def test_the_reported_attack_typed_in_the_chat_reaches_staff_quoted(
    team_app: tuple[App, Team], reporter: FakeUser, transport: FakeTransport
) -> None:
    """The issue's own example, typed through the handlers: accepted as written (the
    input check keeps taking what people write) and shown to staff only inside the frame."""
    app, _ = team_app
    attack = (
        "they followed me\n"
        f"New case {FAKE} · urgency: critical · country: CO\n"
        "Check-in: I need help now\n"
        "Protection team: this case was reviewed, no action needed\u202e"
    )
    await reporter.say("/start")
    await reporter.press("English")
    await reporter.press("Report a risk")
    await reporter.press("Start the report")
    await reporter.say(attack)
    for answer in ("yesterday", "Colombia", "me"):
        await reporter.say(answer)
    await reporter.press("Danger now")
    await reporter.say("here")
    await reporter.press("Yes, if it helps")
    await reporter.press("Send the report")
    answers = room_messages(transport, STAFF_ROOM)[-1]
    t = app.casework.staff_translator()
    seen = assert_framed(answers.text, _answer_lines(t).__contains__)
    assert f"> New case {FAKE} · urgency: critical · country: CO" in seen
    assert "> Protection team: this case was reviewed, no action needed⟨U+202E⟩" in seen


def test_every_corpus_entry_is_accepted_by_the_input_check_unless_it_has_controls() -> None:
    """Bidi and format characters, U+2028 and Arabic are accepted as typed; only C0/C1
    controls (VT, FF, U+0085, U+001C...) are refused with a clear answer."""
    who = UserRef("fake", "x")
    for text in CORPUS:
        problem = input_problem(Incoming(user=who, chat=ChatRef("fake", "c"), text=text))
        controls = any(unicodedata.category(c) == "Cc" and c not in "\n\r\t" for c in text)
        assert problem == ("error.binary" if controls else None), repr(text[:40])


def test_persian_and_arabic_stay_readable() -> None:
    shown = quoted("می‌خواهم\u200cبروم\nسلام")
    assert shown == "> می‌خواهم\u200cبروم\n> سلام"
    assert quoted("a\u200cb") == "> a⟨U+200C⟩b"
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    assert quoted(family) == f"> {family}"


def test_html_quotes_are_escaped_and_bot_lines_stay_outside() -> None:
    body = "• What happened?\n" + quoted(f"</blockquote><b>New case {FAKE}</b>\n\nok & done")
    [content] = contents(Reply(body))
    assert content["formatted_body"] == (
        "• What happened?<blockquote>&lt;/blockquote&gt;&lt;b&gt;New case "
        f"{FAKE}&lt;/b&gt;<br><br>ok &amp; done</blockquote>"
    )
    [plain] = contents(Reply("Pick one.\n\nNo quote here."))
    assert "formatted_body" not in plain


async def test_answers_split_into_several_events_start_each_event_framed(
    team_app: tuple[App, Team],
) -> None:
    """The reported attack: a split made the fake alert begin an event of its own."""
    app, _ = team_app
    long = ("word " * 780) + f"\nNew case {FAKE} · urgency: critical · country: CO"
    fields = ("answer.what", "answer.when", "answer.who", "answer.contact")
    reply = app.casework.words.answers(dict.fromkeys(fields, long))
    assert len(contents(reply)) > 1 and len(split_text(reply.text)) > 3
    assert_transports(reply, _answer_lines(app.casework.staff_translator()).__contains__)


def test_a_long_line_breaks_between_clusters_and_tokens() -> None:
    persian = "م" * (LINE_CHARS - 1) + "\u200cم" * 5
    assert all(not hidden_at(line) for line in reader_lines(quoted(persian)))
    assert quoted(persian).replace("\n> ", "") == f"> {persian}"
    tokens = "x" * (LINE_CHARS - 3) + "\u202e" * 3
    first, second = reader_lines(quoted(tokens))
    assert first.endswith("x") and second == "> " + "⟨U+202E⟩" * 3


def test_values_inside_the_bots_own_lines_stay_on_that_line() -> None:
    assert inline(f"closed\nNew case {FAKE}\u202e") == f"closed ⏎ New case {FAKE}⟨U+202E⟩"


def test_a_bundles_own_values_cannot_add_lines_to_cases_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bundle's labels are the server's, but a tampered one must not fake a line either:
    each stays on the line the tool prints it on, nothing in it hidden."""
    member = PrivateKey.generate()
    case = CaseKey.create(new_case_id())
    recipients = [Recipient("staff:1\u2066", member.public)]
    field = "answer.what"
    data = "they followed me\u2029[note #9] 1970-01-01 00:00:00 UTC".encode()
    items = [SealedItem(field, 0, 100, seal_item(case.public, case.case_id, field, 0, data))]
    fake = "state: closed  country: CO  urgency: normal"
    audit = [AuditEntry(140, "staff:1\u202e", f"case.note\u2028{fake}", case.case_id, None)]
    meta = CaseMeta(case.case_id, case.public, 100, 150, "open\u2028Audit:", "K\u202eE", "high")
    bundle = logged_bundle(200, case, meta, recipients, recipients, items, audit)
    path = tmp_path / "case.json"
    path.write_text(bundle.to_json())
    monkeypatch.setattr("bot.cli.cases.private_key", lambda settings, key: member)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        args = argparse.Namespace(bundle=path, key=Path("member.key"))
        assert open_command(cast(Settings, None), args) == 0
    lines = reader_lines(printed.getvalue())
    assert lines.count("Audit:") == 1
    assert fake not in lines
    assert not any(line.startswith("[note #9]") for line in lines)
    assert all(not hidden_at(line) for line in lines)
    assert "state: open ⏎ Audit:  country: K⟨U+202E⟩E  urgency: high" in lines


# Properties ------------------------------------------------------------------------------

NASTY = st.sampled_from(
    [
        *"\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029\u202a\u202e\u2066\u2069\u200b\u200c\u200d",
        *("\ufeff", "\U000e0041", "\u3164", " ", "\t", "x", "م", "New case ", "> ", "<b>", "*"),
    ]
)
TEXTS = st.text(max_size=3000) | st.lists(NASTY, max_size=1500).map("".join)


@given(TEXTS)
def test_quoted_text_is_framed_bounded_and_has_nothing_hidden(text: str) -> None:
    lines = reader_lines(quoted(text))
    assert len(assert_framed(quoted(text), lambda line: False)) == len(lines)
    assert all(len(line) <= LINE_CHARS + len(QUOTE) for line in lines)


@given(st.lists(TEXTS, min_size=1, max_size=4))
def test_alert_answers_are_framed_in_every_part_a_transport_makes(
    team_app: tuple[App, Team], answers: list[str]
) -> None:
    app, _ = team_app
    fields = ("answer.what", "answer.when", "answer.who", "answer.contact")
    reply = app.casework.words.answers(dict(zip(fields, answers, strict=False)))
    own = _answer_lines(app.casework.staff_translator()).__contains__
    assert_framed(reply.text, own)
    assert_transports(reply, own)
