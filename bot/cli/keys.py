"""`hrd-bot keys|staff|recovery|cases …`: key pairs, the staff list, sealed case bundles.

Two places run these commands. On a staff machine (no database needed):
`keys generate`, `keys show-public`, `cases open`, `cases reseal`. On the server
(they open the encrypted database): `staff add|list|remove`, `recovery set`,
`cases export`, `cases apply-reseal`. `bot/cli/commands.py` only registers and dispatches.

Passphrases and the database are reached through `bot.cli.access`. A refusal
prints one line, `error: …`, and exits with status 2.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from bot.cases.staff_languages import StaffLanguages
from bot.cases.store import CasesStore, CaseStoreError
from bot.cli.access import open_store, passphrase, private_key
from bot.cli.cases import dispatch_cases, register_cases
from bot.config import Settings
from bot.content.languages import is_tag
from bot.conversation.pseudonym import PSEUDONYM_SECRET, Pseudonymizer
from bot.crypto.errors import CryptoError, KeyFormatError
from bot.crypto.keyfile import FAST_KDF_ENV, KdfParams, write_private_key
from bot.crypto.keys import PrivateKey, PublicKey

__all__ = ["COMMANDS", "dispatch", "register"]

COMMANDS = frozenset({"keys", "staff", "recovery", "cases"})


def _public_key(text: str) -> PublicKey:
    try:
        return PublicKey.from_text(text)
    except KeyFormatError as exc:
        raise KeyFormatError(f"--public-key: {exc}") from None


def _print_public(key: PublicKey) -> None:
    print(key.text)
    print(f"fingerprint: {key.fingerprint}")


def generate(settings: Settings, args: argparse.Namespace) -> int:
    params = KdfParams.for_env(settings.env)
    if params != KdfParams():
        print(f"warning: {FAST_KDF_ENV}=1, weak key file (tests only)", file=sys.stderr)
    key = PrivateKey.generate()
    secret = passphrase(settings.env, confirm=True)
    write_private_key(args.out, key, secret, forbidden=[settings.data_dir], params=params)
    _print_public(key.public)
    print(
        f"Private key written to {args.out} (mode 0600). Keep it on this machine; give the "
        "operator the public key and read them the fingerprint over another channel.",
        file=sys.stderr,
    )
    return 0


def show_public(settings: Settings, args: argparse.Namespace) -> int:
    """Opens the file (passphrase) so the key shown is proven to match the secret."""
    _print_public(private_key(settings, args.file).public)
    return 0


async def _staff_add(store: CasesStore, args: argparse.Namespace) -> int:
    """Identities are stored as the same keyed pseudonyms the bot computes for every sender."""
    pseudonyms = Pseudonymizer(await store.database.secret(PSEUDONYM_SECRET))
    identities = []
    for identity in args.identity:
        platform, _, platform_id = identity.partition(":")
        if not platform or not platform_id:
            raise CaseStoreError(f"--identity {identity!r} is not platform:id")
        identities.append(pseudonyms.user(platform, platform_id).key)
    member = await store.add_staff(args.label, identities, _public_key(args.public_key))
    print(f"added {member.name}: {member.label}")
    print(f"fingerprint: {member.public_key.fingerprint}")
    print("Check this fingerprint with the member before relying on it.", file=sys.stderr)
    return 0


async def _staff_list(store: CasesStore, args: argparse.Namespace) -> int:
    members = await store.list_staff(include_removed=args.all)
    for m in members:
        state = "active" if m.active else "removed"
        identities = ", ".join(m.identities) or "-"
        print(f"{m.id:>4}  {state:<7}  {m.public_key.fingerprint}  {m.label}  [{identities}]")
    if not members:
        print("no staff: cases cannot be created until staff or a recovery key is set")
    return 0


async def _staff_remove(store: CasesStore, args: argparse.Namespace) -> int:
    member = await store.remove_staff(args.id)
    print(f"removed {member.name}: cases created from now on are not sealed to them")
    print("Open cases keep their copy until resealed (hrd-bot cases reseal).", file=sys.stderr)
    return 0


async def _staff_language(store: CasesStore, args: argparse.Namespace) -> int:
    if not is_tag(args.language):
        raise CaseStoreError(f"{args.language!r} is not a language code such as 'fr' or 'zh-Hant'")
    if args.id not in {m.id for m in await store.list_staff()}:
        raise CaseStoreError(f"no active staff member {args.id}")
    await StaffLanguages(store.database).choose(args.id, args.language)
    print(f"staff:{args.id} now gets answers to their commands in {args.language}")
    return 0


async def _recovery_set(store: CasesStore, args: argparse.Namespace) -> int:
    key = _public_key(args.public_key)
    await store.set_recovery(key)
    print(f"recovery key set; fingerprint: {key.fingerprint}")
    return 0


_SERVER = {
    ("staff", "add"): _staff_add,
    ("staff", "list"): _staff_list,
    ("staff", "remove"): _staff_remove,
    ("staff", "language"): _staff_language,
    ("recovery", "set"): _recovery_set,
}


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the keys, staff, recovery and cases commands to the top-level parser."""
    keys = commands.add_parser("keys", help="key pairs, on a staff machine")
    key_commands = keys.add_subparsers(dest="action", required=True)
    gen = key_commands.add_parser("generate", help="new key pair; private key in a file")
    gen.add_argument("--out", type=Path, required=True, help="new private key file (0600)")
    show = key_commands.add_parser("show-public", help="print a key file's public key")
    show.add_argument("file", type=Path)

    staff = commands.add_parser("staff", help="the protection team's public keys (server)")
    staff_commands = staff.add_subparsers(dest="action", required=True)
    add = staff_commands.add_parser("add", help="add a member and their public key")
    add.add_argument("--label", required=True)
    add.add_argument("--identity", action="append", default=[], help="e.g. telegram:123")
    add.add_argument("--public-key", required=True)
    listing = staff_commands.add_parser("list", help="members with fingerprints")
    listing.add_argument("--all", action="store_true", help="include removed members")
    remove = staff_commands.add_parser("remove", help="no new case is sealed to them")
    remove.add_argument("id", type=int)
    language = staff_commands.add_parser("language", help="the language of answers to them")
    language.add_argument("id", type=int)
    language.add_argument("language", help="e.g. fr, ar, zh-Hant")

    recovery = commands.add_parser("recovery", help="the organisation recovery key (server)")
    recovery_commands = recovery.add_subparsers(dest="action", required=True)
    recovery_set = recovery_commands.add_parser("set", help="set the recovery public key")
    recovery_set.add_argument("--public-key", required=True)

    register_cases(commands)


def dispatch(settings: Settings, args: argparse.Namespace) -> int:
    """Run one of this module's commands; a refusal prints one line and exits 2."""
    try:
        if args.command == "keys":
            return (generate if args.action == "generate" else show_public)(settings, args)
        if args.command == "cases":
            return dispatch_cases(settings, args)
        server = _SERVER[(args.command, args.action)]
        return asyncio.run(open_store(settings, lambda store: server(store, args)))
    except (CryptoError, CaseStoreError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
