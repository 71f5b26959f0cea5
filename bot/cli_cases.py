"""`hrd-bot cases …`: take a sealed case off the server, open or reseal it elsewhere.

    server         cases export CASE --out FILE         sealed bundle (no plaintext)
    staff machine  cases open BUNDLE --key FILE         decrypt and print every item
    staff machine  cases reseal BUNDLE --key FILE --out FILE
    server         cases apply-reseal FILE

Reseal, kept simple: the bundle lists who the server would seal a new case to at
export time (active staff and the recovery key). `reseal` opens the case key with
the member's own key and seals it to exactly that list, printing each recipient's
fingerprint for the member to check. `apply-reseal` replaces the case's sealed
copies with those, after checking each is still a current recipient, so members
removed since the case opened lose their server copy and new members gain one. A
removed member who kept an earlier bundle can still read what it held; rotating
the case key itself is not done.

Item text is printed with control characters escaped, so a reporter's message
cannot drive the staff member's terminal; binary items are counted, not printed.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import unicodedata
from datetime import UTC, datetime
from pathlib import Path

from bot.cases_store import CasesStore
from bot.cli_access import open_store, private_key
from bot.config import Settings
from bot.crypto.bundle import Bundle, OpenedCase, Reseal, open_bundle, reseal_bundle
from bot.crypto.files import write_new_private_file

__all__ = ["dispatch_cases", "register_cases"]


def _when(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def safe_text(data: bytes) -> str:
    """UTF-8 text with control characters (escape sequences, bells) shown as `\\xNN`."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return f"<{len(data)} bytes of binary data, not shown>"
    return "".join(
        f"\\x{ord(c):02x}" if unicodedata.category(c) == "Cc" and c not in "\n\t" else c
        for c in text
    )


def _print_case(opened: OpenedCase) -> None:
    case = opened.case
    print(f"Case {case.id} (opened as {opened.opened_as})")
    print(f"state: {case.state}  country: {case.country or '-'}  urgency: {case.urgency or '-'}")
    print(f"created: {_when(case.created_at)}  updated: {_when(case.updated_at)}")
    for item in opened.items:
        print(f"\n[{item.field} #{item.seq}] {_when(item.created_at)}")
        print(safe_text(item.data))
    print("\nAudit:")
    for entry, detail in opened.audit:
        shown = "" if detail is None else " " + safe_text(detail)
        print(f"{_when(entry.at)}  {safe_text(entry.actor.encode())}  {entry.action}{shown}")


def open_command(settings: Settings, args: argparse.Namespace) -> int:
    bundle = Bundle.read(args.bundle)
    _print_case(open_bundle(bundle, private_key(settings, args.key)))
    return 0


def reseal_command(settings: Settings, args: argparse.Namespace) -> int:
    bundle = Bundle.read(args.bundle)
    reseal = reseal_bundle(bundle, private_key(settings, args.key))
    write_new_private_file(args.out, reseal.to_json())
    print(f"{bundle.case.id} resealed to:", file=sys.stderr)
    for sealed in reseal.sealed_keys:
        print(f"  {sealed.recipient:<10} {sealed.fingerprint}", file=sys.stderr)
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
