"""`hrd-bot cases …`: take a sealed case off the server, open or reseal it elsewhere.

    server         cases export CASE --out FILE         sealed bundle (no plaintext)
    staff machine  cases open BUNDLE --key FILE         decrypt and print every item
                   [--save-files DIR]                   and save the files sent with it
    staff machine  cases reseal BUNDLE --key FILE --out FILE
    server         cases apply-reseal FILE

`open` checks the case's tamper-evident log before it prints or saves anything: a bundle
with an item or audit entry removed, added, duplicated, reordered or changed, or other
metadata, is refused with one line (`error: HRD-…: tampered bundle, nothing is shown:
…`, exit status 2). A case created before cases kept a log opens with a warning on
stderr that none of this could be checked.

Reseal, kept simple: the bundle lists who the server would seal a new case to at
export time (active staff and the recovery key). `reseal` opens the case key with
the member's own key and seals it to exactly that list, printing each recipient's
fingerprint for the member to check. `apply-reseal` replaces the case's sealed
copies with those, after checking each is still a current recipient, so members
removed since the case opened lose their server copy and new members gain one. A
removed member who kept an earlier bundle can still read what it held; rotating
the case key itself is not done.

Item text is printed framed by `bot.cases.quoting` (every line quoted, control and invisible
characters shown), so a reporter's message can neither drive the staff member's terminal
nor pass for a header or an audit line; binary items are counted, not printed. Values
the bundle puts inside the tool's own lines (state, fields, audit entries) are shown on
that one line, their line breaks as "⏎".
A file sent with the report is listed by kind and size; `--save-files DIR` writes each
under a generated name (`HRD-…-attachment-1.jpg`, never the sender's file name, which
may identify them), mode 0600 in a folder only its owner can open. It refuses to replace
any file, and saves all or nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import stat
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bot.cases.attachments import ENGLISH as KIND_NAMES
from bot.cases.attachments import english_size, file_kind, file_name, parse
from bot.cases.quoting import inline, quoted
from bot.cases.store import CasesStore
from bot.cli.access import open_store, private_key
from bot.config import Settings
from bot.content.countries import country_name
from bot.crypto.bundle import Bundle, OpenedCase, OpenedItem, Reseal, open_bundle, reseal_bundle
from bot.crypto.files import write_new_private_file

__all__ = ["dispatch_cases", "register_cases", "save_files"]

ATTACHMENT = re.compile(r"^attachment\.(0|[1-9]\d{0,5})$")
NOT_TAMPER_EVIDENT = (
    "{case} is not tamper-evident: it was created before cases kept a log (database "
    "schema 10); a removed, reordered or changed item, audit entry or metadata would not show"
)


class SaveError(Exception):
    """Files could not be saved; nothing was left behind. The message is one line."""


@dataclass(frozen=True, slots=True)
class SentFile:
    """A file of the case, named for saving; `item` is its sealed record."""

    item: OpenedItem
    number: str
    name: str
    media_type: str
    data: bytes = field(repr=False)

    @property
    def key(self) -> tuple[str, int]:
        return self.item.field, self.item.seq


def _when(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def safe_text(data: bytes) -> str:
    """An item's words framed by `bot.cases.quoting` (every line quoted, controls and invisible
    characters shown), so they can fake neither a header, an audit line nor the terminal."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return f"<{len(data)} bytes of binary data, not shown>"
    return quoted(text)


def _field(value: str | None) -> str:
    """A bundle's value inside one of our lines: one line, nothing hidden."""
    return "-" if not value else inline(value)


def sent_files(opened: OpenedCase) -> list[SentFile]:
    """The case's `attachment.<n>` items, each with its generated name (unique in the case)."""
    found = []
    for item in opened.items:
        match = ATTACHMENT.match(item.field)
        if match is None or (parsed := parse(item.data)) is None:
            continue
        number = f"{int(match.group(1)) + 1}" + (f"-{item.seq + 1}" if item.seq else "")
        media_type, data = parsed
        name = file_name(opened.case.id, number, media_type)
        found.append(SentFile(item, number, name, media_type, data))
    return found


def _file_line(sent: SentFile, saved: Path | None) -> str:
    kind = KIND_NAMES[file_kind(sent.media_type)]
    where = "use --save-files DIR to save" if saved is None else f"saved as {saved}"
    return f"attachment {sent.number}: {kind}, {english_size(len(sent.data))} ({where})"


def _print_case(opened: OpenedCase, saved: Mapping[tuple[str, int], Path]) -> None:
    """`saved` maps each saved file's (field, seq) to where it was saved."""
    case = opened.case
    print(f"Case {_field(case.id)} (opened as {_field(opened.opened_as)})")
    state, urgency = _field(case.state), _field(case.urgency)
    country = _field(case.country)
    if case.country and (name := country_name(case.country, "en")) != case.country:
        country += f" ({name})"
    print(f"state: {state}  country: {country}  urgency: {urgency}")
    print(f"created: {_when(case.created_at)}  updated: {_when(case.updated_at)}")
    files = {sent.key: sent for sent in sent_files(opened)}
    for item in opened.items:
        print(f"\n[{_field(item.field)} #{item.seq}] {_when(item.created_at)}")
        sent = files.get((item.field, item.seq))
        print(safe_text(item.data) if sent is None else _file_line(sent, saved.get(sent.key)))
    print("\nAudit:")
    for entry, detail in opened.audit:
        shown = "" if detail is None else " " + _field(detail.decode("utf-8", "replace"))
        print(f"{_when(entry.at)}  {_field(entry.actor)}  {_field(entry.action)}{shown}")


def open_command(settings: Settings, args: argparse.Namespace) -> int:
    bundle = Bundle.read(args.bundle)
    opened = open_bundle(bundle, private_key(settings, args.key))
    if not opened.tamper_evident:
        print(f"warning: {NOT_TAMPER_EVIDENT.format(case=opened.case.id)}", file=sys.stderr)
    saved: dict[tuple[str, int], Path] = {}
    files, folder = sent_files(opened), getattr(args, "save_files", None)
    if folder is not None and not files:
        print(f"{_field(opened.case.id)} has no files; nothing was saved.", file=sys.stderr)
    elif folder is not None:
        try:
            paths = save_files(folder, [(f.name, f.data) for f in files])
        except SaveError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        saved = {f.key: path for f, path in zip(files, paths, strict=True)}
    _print_case(opened, saved)
    return 0


def save_files(folder: Path, files: Sequence[tuple[str, bytes]]) -> list[Path]:
    """Write each (name, bytes) as a new 0600 file in `folder`: all of them, or none.

    The folder is created 0700, or must already be one only its owner can open. Any
    name already taken stops everything before a byte is written."""
    _private_folder(folder)
    targets = [folder / name for name, _ in files]
    for target in targets:
        if os.path.lexists(target):
            raise SaveError(f"{target} already exists; nothing was saved (use an empty folder)")
    written: list[Path] = []
    try:
        for target, (_, data) in zip(targets, files, strict=True):
            _write_new(target, data)
            written.append(target)
    except BaseException:  # an error or an interrupt: take back what was written
        for path in written:
            path.unlink(missing_ok=True)
        raise
    return targets


def _private_folder(folder: Path) -> None:
    try:
        if not os.path.lexists(folder):
            folder.mkdir(mode=0o700, parents=True)
            os.chmod(folder, 0o700)
        info = os.lstat(folder)
    except OSError as exc:
        raise SaveError(f"cannot create {folder}: {exc.strerror}") from None
    if not stat.S_ISDIR(info.st_mode):
        raise SaveError(f"{folder} is not a folder (or is a link); nothing was saved")
    if info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise SaveError(
            f"{folder} can be opened by other users (mode {stat.S_IMODE(info.st_mode):o}); "
            f"nothing was saved (use a folder only you can open: chmod 700 {folder})"
        )


def _write_new(path: Path, data: bytes) -> None:
    """A new file only its owner can read, never replacing one or following a link."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        raise SaveError(f"{path} already exists; nothing was saved (use an empty folder)") from None
    except OSError as exc:
        raise SaveError(f"cannot create {path}: {exc.strerror}; nothing was saved") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), 0o600)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException as exc:
        path.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise SaveError(f"cannot write {path}: {exc.strerror}; nothing was saved") from None
        raise


def reseal_command(settings: Settings, args: argparse.Namespace) -> int:
    bundle = Bundle.read(args.bundle)
    reseal = reseal_bundle(bundle, private_key(settings, args.key))
    write_new_private_file(args.out, reseal.to_json())
    print(f"{_field(bundle.case.id)} resealed to:", file=sys.stderr)
    for sealed in reseal.sealed_keys:
        print(f"  {_field(sealed.recipient):<10} {_field(sealed.fingerprint)}", file=sys.stderr)
    print(
        f"Check these fingerprints, then give {args.out} to the operator for "
        "`hrd-bot cases apply-reseal`.",
        file=sys.stderr,
    )
    return 0


async def _export(store: CasesStore, args: argparse.Namespace) -> int:
    bundle = await store.export_bundle(args.case)
    write_new_private_file(args.out, bundle.to_json())
    print(f"{bundle.case.id}: {len(bundle.items)} sealed items written to {args.out}")
    return 0


async def _apply(store: CasesStore, args: argparse.Namespace) -> int:
    reseal = Reseal.read(args.file)
    names = await store.apply_reseal(reseal)
    print(f"{reseal.case_id} is now sealed to: {', '.join(names)}")
    return 0


def register_cases(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cases = commands.add_parser("cases", help="export, open and reseal sealed cases")
    actions = cases.add_subparsers(dest="action", required=True)
    export = actions.add_parser("export", help="(server) write a case as a sealed bundle")
    export.add_argument("case", help="case reference, e.g. HRD-7KQ4-M2XP")
    export.add_argument("--out", type=Path, required=True)
    opening = actions.add_parser("open", help="(staff machine) decrypt and print a bundle")
    opening.add_argument("bundle", type=Path)
    opening.add_argument("--key", type=Path, required=True, help="your private key file")
    opening.add_argument(
        "--save-files", type=Path, metavar="DIR", help="save the files sent with the report here"
    )
    reseal = actions.add_parser("reseal", help="(staff machine) seal a case to current staff")
    reseal.add_argument("bundle", type=Path)
    reseal.add_argument("--key", type=Path, required=True, help="your private key file")
    reseal.add_argument("--out", type=Path, required=True, help="reseal file for the operator")
    apply = actions.add_parser("apply-reseal", help="(server) store a reseal file")
    apply.add_argument("file", type=Path)


def dispatch_cases(settings: Settings, args: argparse.Namespace) -> int:
    if args.action == "open":
        return open_command(settings, args)
    if args.action == "reseal":
        return reseal_command(settings, args)
    work = _export if args.action == "export" else _apply
    return asyncio.run(open_store(settings, lambda store: work(store, args)))
