"""Files sent with a report: the alert's kind-and-size summary, the relay to encrypted staff
rooms only, and `hrd-bot cases open --save-files` on a staff machine."""

from __future__ import annotations

import asyncio
import io
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from nio import UploadError, UploadResponse
from nio.crypto.attachments import decrypt_attachment

from bot.app import App
from bot.cases.attachments import HeldFiles, file_name, parse, scaled_size
from bot.cases.store import CasesStore
from bot.cli import main
from bot.content.library import Library
from bot.conversation.pseudonym import Pseudonymizer
from bot.crypto.keys import PrivateKey, PublicKey
from bot.model import Attachment, ChatRef, Reply
from bot.storage import Database
from bot.transports.console import ConsoleTransport
from bot.transports.matrix.media import upload_encrypted
from bot.transports.matrix.render import file_content
from handlers.staff_text import alert_lines
from tests.conftest import TEST_KEY
from tests.conftest_storage import OpenDatabase
from tests.fakes import FakeTransport, FakeUser
from tests.reporting import STAFF_ROOM, Team, room_messages, start_report

pytestmark = pytest.mark.backends

PHOTO = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 24 + b"\x00" * 105  # 6,253 bytes
PDF = b"%PDF-1.7 " + b"0" * (120 * 1024 - 9)
NAMES = ("Ana Pérez at the border.jpg", "Ana Pérez summons.pdf")
CAPTION = "CANARY-CAPTION the van outside"
PASSPHRASE = "a long passphrase for the staff key"


def held(case_bytes: int = 1 << 30) -> HeldFiles:
    files = HeldFiles(case_bytes=case_bytes)
    files.note("HRD-AAAA-BBBB", "attachment.0", b"image/jpeg\nme.jpg\n" + PHOTO)
    files.note("HRD-AAAA-BBBB", "caption.0", CAPTION.encode())
    files.note("HRD-AAAA-BBBB", "answer.what", b"ignored")
    files.note("HRD-AAAA-BBBB", "attachment.1", b"application/pdf\nsummons.pdf\n" + PDF)
    return files


@pytest.mark.parametrize(
    ("size", "mark", "shown"),
    [
        (0, ".", ("0", "bytes")),
        (1023, ".", ("1023", "bytes")),
        (6345, ".", ("6.2", "kb")),
        (6345, ",", ("6,2", "kb")),
        (120 * 1024, ".", ("120", "kb")),
        (1536 * 1024, ".", ("1.5", "mb")),
        (10 * 1024 * 1024, ".", ("10", "mb")),
    ],
)
def test_sizes_are_short_and_rounded(size: int, mark: str, shown: tuple[str, str]) -> None:
    assert scaled_size(size, mark) == shown


def test_the_summary_names_kind_and_size_in_the_staff_language(library: Library) -> None:
    files = held().pop("HRD-AAAA-BBBB")
    english = alert_lines(library.translator("en"), files)
    assert english == "\nFiles: photo (6.1 KB), PDF document (120 KB)"
    french = alert_lines(library.translator("fr"), files)
    assert french == "\nFichiers\u202f: photo (6,1 Ko), document PDF (120 Ko)"
    for code in ("es", "ar"):
        translated = library.translator(code)
        assert "PDF" in alert_lines(translated, files) and not translated.fell_back
    assert alert_lines(library.translator("en"), []) == ""
    restarted = alert_lines(library.translator("en"), files[:1], unknown=2)
    assert restarted.endswith("Files sent before the bot restarted: 2 " + _RESTART_TAIL)


_RESTART_TAIL = "(their kind and size are only in the sealed case: hrd-bot cases open)"


def test_generated_names_never_hold_the_senders_name_and_know_few_extensions() -> None:
    assert file_name("HRD-AAAA-BBBB", 1, "image/jpeg") == "HRD-AAAA-BBBB-attachment-1.jpg"
    assert file_name("HRD-AAAA-BBBB", 2, "application/pdf") == "HRD-AAAA-BBBB-attachment-2.pdf"
    for hostile in ("application/x-sh", "text/html", "application/x-msdownload", "image/svg+xml"):
        assert file_name("HRD-AAAA-BBBB", 3, hostile).endswith("-attachment-3.bin")


def test_held_files_keep_order_and_captions_and_stay_within_the_budget() -> None:
    files = held().pop("HRD-AAAA-BBBB")
    assert [(f.number, f.media_type, f.size) for f in files] == [
        (1, "image/jpeg", len(PHOTO)),
        (2, "application/pdf", len(PDF)),
    ]
    assert files[0].data == PHOTO and files[0].caption == CAPTION and files[1].caption == ""

    tight = held(case_bytes=len(PHOTO) + 10)
    photo, pdf = tight.pop("HRD-AAAA-BBBB")
    assert photo.data == PHOTO and pdf.data is None and pdf.size == len(PDF), "counted, not held"
    assert tight.pop("HRD-AAAA-BBBB") == [], "popped means forgotten"

    shared = HeldFiles(total_bytes=len(PHOTO))
    shared.note("HRD-1111-1111", "attachment.0", b"image/jpeg\nx\n" + PHOTO)
    shared.note("HRD-2222-2222", "attachment.0", b"image/jpeg\nx\n" + PHOTO)
    assert shared.pop("HRD-2222-2222")[0].data is None, "the total budget is full"
    shared.drop("HRD-1111-1111")
    shared.note("HRD-3333-3333", "attachment.0", b"image/jpeg\nx\n" + PHOTO)
    assert shared.pop("HRD-3333-3333")[0].data == PHOTO, "a dropped draft frees its share"


async def _report_with_files(reporter: FakeUser) -> str:
    await start_report(reporter)
    photo = Attachment(NAMES[0], "image/jpeg", len(PHOTO), PHOTO)
    assert "saved and locked" in (await reporter.deliver(attachment=photo, text=CAPTION)).text
    pdf = Attachment(NAMES[1], "application/pdf", len(PDF), PDF)
    assert "saved and locked" in (await reporter.deliver(attachment=pdf)).text
    for answer in ("CANARY-WHAT followed", "yesterday", "Colombia", "me"):
        await reporter.say(answer)
    await reporter.press("Danger now")
    await reporter.say("here")
    await reporter.press("Yes, if it helps")
    sent = await reporter.press("Send the report")
    return next(word for word in sent.text.split() if word.startswith("HRD-")).rstrip(".")


async def test_an_encrypted_staff_room_gets_the_files_and_a_group_their_kind_and_size(
    open_database: OpenDatabase, library: Library, transport: FakeTransport
) -> None:
    group = ChatRef("fake", "telegram-group", private=False, encrypted=False)
    db = await open_database("f")
    try:
        app = await App.open(db, library, staff_rooms=(STAFF_ROOM, group))
        await app.casework.store.set_recovery(PrivateKey.generate().public)
        app.attach(transport)
        case = await _report_with_files(FakeUser(app, transport, "r-files"))

        (group_alert,) = room_messages(transport, group)
        alert, answers, files = room_messages(transport, STAFF_ROOM)
        for text in (group_alert.text, alert.text):
            assert case in text and "Files: photo (6.1 KB), PDF document (120 KB)" in text
            assert "Pérez" not in text and ".jpg" not in text and "CANARY" not in text
        assert group_alert.files == () and not group_alert.sensitive
        assert "CANARY-WHAT" in answers.text
        assert files.sensitive and [f.data for f in files.files] == [PHOTO, PDF]
        assert [f.name for f in files.files] == [
            f"{case}-attachment-1.jpg",
            f"{case}-attachment-2.pdf",
        ]
        assert CAPTION in files.text and "Pérez" not in files.text
        assert app.casework._files.pop(case) == [], "relayed from memory, then dropped"
    finally:
        await db.close()


async def test_files_sealed_before_a_restart_are_counted_in_the_alert(
    team_app: tuple[App, Team], reporter: FakeUser, transport: FakeTransport
) -> None:
    app, _ = team_app
    await start_report(reporter)
    photo = Attachment(NAMES[0], "image/jpeg", len(PHOTO), PHOTO)
    await reporter.deliver(attachment=photo)
    case = next(iter(app.casework._drafts))
    app.casework._files.drop(case)  # what a restart loses
    app.casework.forget_drafts([case])
    await reporter.say("what happened")
    await reporter.say("/menu")
    await reporter.press("Report a risk")
    review = await reporter.press("Send the report")
    assert "Before you send" in review.text
    assert "HRD-" in (await reporter.press("Send the report")).text
    alert = next(r for r in room_messages(transport, STAFF_ROOM) if r.text.startswith("New case"))
    assert "Files sent before the bot restarted: 1" in alert.text
    assert all(not reply.files for _, reply in transport.sent)


async def test_a_discarded_draft_drops_its_files(
    team_app: tuple[App, Team], reporter: FakeUser
) -> None:
    app, _ = team_app
    await start_report(reporter)
    photo = Attachment(NAMES[0], "image/jpeg", len(PHOTO), PHOTO)
    await reporter.deliver(attachment=photo)
    case = next(iter(app.casework._drafts))
    await app.casework.discard(case)
    assert app.casework._files.pop(case) == []


# hrd-bot cases open --save-files -----------------------------------------------------------


@pytest.fixture
def staff_machine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("HRD_BOT_DATA_DIR", str(tmp_path / "no-server-here"))
    monkeypatch.setenv("HRD_BOT_INSECURE_FAST_KDF", "1")
    monkeypatch.setenv("HRD_BOT_KEY_PASSPHRASE", PASSPHRASE)
    monkeypatch.delenv("HRD_BOT_KEY_PASSPHRASE_FILE", raising=False)
    return tmp_path


async def _bundle(tmp_path: Path, public: str) -> tuple[str, Path]:
    """A case with a photo (captioned), an unknown kind of file and an answer, exported."""
    db = await Database.open(tmp_path / "server.db", TEST_KEY)
    try:
        store = CasesStore(db)
        await store.add_staff("Alice", ["fake:alice"], PublicKey.from_text(public))
        case = await store.create_case(country="MX", urgency="high")
        await store.add_item(
            case.id, "attachment.0", b"image/jpeg\n" + NAMES[0].encode() + b"\n" + PHOTO
        )
        await store.add_item(case.id, "caption.0", CAPTION.encode())
        await store.add_item(case.id, "attachment.1", b"application/x-sh\n../../.bashrc\n#!/bin/sh")
        await store.add_item(case.id, "answer.what", b"CANARY-WHAT followed")
        bundle = tmp_path / "case.json"
        bundle.write_text((await store.export_bundle(case.id)).to_json())
        return case.id, bundle
    finally:
        await db.close()


@pytest.fixture
def opened_case(staff_machine: Path, capsys: pytest.CaptureFixture[str]) -> tuple[str, Path, Path]:
    key = staff_machine / "alice.key"
    assert main(["keys", "generate", "--out", str(key)]) == 0
    public = capsys.readouterr().out.splitlines()[0]
    case, bundle = asyncio.run(_bundle(staff_machine, public))
    return case, bundle, key


def test_open_lists_files_by_kind_and_size(
    opened_case: tuple[str, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _, bundle, key = opened_case
    assert main(["cases", "open", str(bundle), "--key", str(key)]) == 0
    out = capsys.readouterr().out
    assert "attachment 1: photo, 6.1 KB (use --save-files DIR to save)" in out
    assert "attachment 2: file, 9 bytes (use --save-files DIR to save)" in out
    assert CAPTION in out and "CANARY-WHAT followed" in out
    assert "Pérez" not in out and "bashrc" not in out and "binary data" not in out


def test_save_files_writes_private_files_under_generated_names(
    opened_case: tuple[str, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    case, bundle, key = opened_case
    folder = bundle.parent / "evidence" / case
    assert main(["cases", "open", str(bundle), "--key", str(key), "--save-files", str(folder)]) == 0
    out = capsys.readouterr().out
    photo, script = folder / f"{case}-attachment-1.jpg", folder / f"{case}-attachment-2.bin"
    assert sorted(folder.iterdir()) == [photo, script]
    assert photo.read_bytes() == PHOTO and script.read_bytes() == b"#!/bin/sh"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for path in (photo, script):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert f"attachment 1: photo, 6.1 KB (saved as {photo})" in out
    assert not (bundle.parent / ".bashrc").exists()


def test_save_files_never_overwrites_and_writes_nothing_then(
    opened_case: tuple[str, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    case, bundle, key = opened_case
    folder = bundle.parent / "evidence"
    folder.mkdir(mode=0o700)
    taken = folder / f"{case}-attachment-2.bin"
    taken.write_bytes(b"kept")
    argv = ["cases", "open", str(bundle), "--key", str(key), "--save-files", str(folder)]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and "already exists; nothing was saved" in captured.err
    assert captured.out == ""
    assert sorted(folder.iterdir()) == [taken] and taken.read_bytes() == b"kept"

    taken.unlink()
    taken.symlink_to(bundle.parent / "elsewhere")
    assert main(argv) == 2, "a dangling link is not followed"
    assert sorted(folder.iterdir()) == [taken] and not (bundle.parent / "elsewhere").exists()


def test_save_files_refuses_a_folder_others_can_open(
    opened_case: tuple[str, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _, bundle, key = opened_case
    shared = bundle.parent / "shared"
    shared.mkdir()
    shared.chmod(0o755)
    argv = ["cases", "open", str(bundle), "--key", str(key), "--save-files", str(shared)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "can be opened by other users (mode 755)" in err and err.count("\n") == 1
    assert list(shared.iterdir()) == []
    a_file = bundle.parent / "a-file"
    a_file.write_bytes(b"")
    argv[-1] = str(a_file)
    assert main(argv) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_a_failed_write_takes_back_the_files_already_written(
    opened_case: tuple[str, Path, Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, bundle, key = opened_case
    folder = bundle.parent / "evidence"
    real_fsync, calls = os.fsync, []

    def full_disk_on_the_second(fd: int) -> None:
        calls.append(fd)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr("bot.cli.cases.os.fsync", full_disk_on_the_second)
    argv = ["cases", "open", str(bundle), "--key", str(key), "--save-files", str(folder)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "No space left on device; nothing was saved" in err and err.count("\n") == 1
    assert list(folder.iterdir()) == []


def test_a_record_not_in_the_attachment_form_is_not_taken_for_a_file() -> None:
    assert parse(b"image/jpeg\nme.jpg\n" + PHOTO) == ("image/jpeg", PHOTO)
    assert parse(b"IMAGE/PNG\n\n\x89PNG") == ("image/png", b"\x89PNG")
    for odd in (b"", b"image/jpeg", b"image/jpeg\nno second line", b"<script>\nx\ny", PHOTO):
        assert parse(odd) is None, odd
    files = HeldFiles()
    files.note("HRD-AAAA-BBBB", "attachment.0", PHOTO)
    assert files.pop("HRD-AAAA-BBBB") == []


async def test_the_console_shows_a_files_kind_and_size_never_its_bytes_or_name() -> None:
    out = io.StringIO()
    console = ConsoleTransport(Pseudonymizer(b"p" * 32), stdin=io.BytesIO(), stdout=out)
    photo = Attachment(NAMES[0], "image/jpeg", len(PHOTO), PHOTO)
    await console.send(ChatRef("console", "local"), Reply("Files:", files=(photo,)))
    assert out.getvalue() == "Files:\n[photo, 6.1 KB: not shown on the console]\n\n"


class UploadingClient:
    """What `upload_encrypted` needs of nio's client: `upload`, answered as told."""

    def __init__(self, answer: object) -> None:
        self.answer = answer
        self.uploaded: list[bytes] = []

    async def upload(self, provider: Any, **options: object) -> tuple[object, None]:
        assert "filename" not in options, "no name goes to the homeserver"
        self.uploaded.append(provider(0, 0))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer, None


async def test_a_file_is_uploaded_as_ciphertext_that_its_keys_open() -> None:
    client = UploadingClient(UploadResponse("mxc://example.org/abc"))
    uploaded = await upload_encrypted(client, PHOTO)
    assert uploaded is not None
    url, keys = uploaded
    (body,) = client.uploaded
    assert url == "mxc://example.org/abc" and body != PHOTO and PHOTO[8:64] not in body
    assert decrypt_attachment(body, keys["key"]["k"], keys["hashes"]["sha256"], keys["iv"]) == PHOTO
    content = file_content(Attachment("HRD-A-attachment-1.jpg", "image/jpeg", 5, PHOTO), url, keys)
    assert content["msgtype"] == "m.image" and content["file"]["url"] == url
    assert {"key", "iv", "hashes", "v"} <= set(content["file"])


@pytest.mark.parametrize("answer", [UploadError("too large", "M_TOO_LARGE"), TimeoutError()])
async def test_a_refused_or_lost_upload_is_none(answer: object) -> None:
    assert await upload_encrypted(UploadingClient(answer), PHOTO) is None
