"""`hrd-bot run --demo-team`: the whole loop (report, alert, reply, answer, close) on one
terminal, for someone trying the bot.

It makes a throw-away staff key pair under `DATA/demo-team/` (the private key sits on
the server, which a real deployment never allows), adds it as a staff member whose
identity is this terminal, and shows the demo staff room's messages in the same
terminal. The folder marks the data folder as a demo one: `hrd-bot doctor` reports it,
and the bot refuses to serve Telegram or Matrix from it.
"""

from __future__ import annotations

from pathlib import Path

from bot.app import App
from bot.config import Settings
from bot.crypto.keyfile import KdfParams, write_private_key
from bot.crypto.keys import PrivateKey
from bot.model import ChatRef
from bot.transports.console import DemoStaff

__all__ = ["DEMO_FOLDER", "DEMO_ROOM", "HOW", "prepare", "present", "refusal", "rooms"]

DEMO_FOLDER = "demo-team"
DEMO_ROOM = ChatRef("console", "demo-staff-room", private=False, encrypted=True)
_STAFF_ID = "demo-staff"
_PASSPHRASE = "demo"  # noqa: S105  (a throw-away key, said so in the folder)
_THROWAWAY = KdfParams(time_cost=1, memory_kib=8, parallelism=1)  # guards nothing anyway
_NOTE = (
    "DEMO TEAM: a throw-away staff key pair made by `hrd-bot run --demo-team` (key file\n"
    f"passphrase: {_PASSPHRASE}). Anyone with this folder reads every case. Never let real\n"
    "people use this data folder: start a real deployment from an empty one.\n"
)

HOW = (
    "Demo team: you are also the protection team. Staff-room messages start with "
    "[staff room]; type staff commands as 'staff: /cases', 'staff: /reply HRD-… text', "
    "'staff: /close HRD-… reason'. Never use this data folder for real people."
)


def present(data_dir: Path) -> bool:
    return (data_dir / DEMO_FOLDER).exists()


def rooms(demo: bool) -> tuple[ChatRef, ...]:
    return (DEMO_ROOM,) if demo else ()


def non_console(settings: Settings) -> bool:
    """Whether `hrd-bot run` would start Telegram or Matrix (as `bot.cli.commands._transports`)."""
    return bool(settings.secret("TELEGRAM_BOT_TOKEN")) or bool(
        settings.env.get("MATRIX_HOMESERVER", "").strip()
    )


def refusal(settings: Settings, wanted: bool) -> str | None:
    """Why the bot must not start, or None."""
    if wanted and non_console(settings):
        return "--demo-team runs on the console only; unset the Telegram and Matrix settings"
    if non_console(settings) and present(settings.data_dir):
        return (
            f"{settings.data_dir} holds a demo team's throw-away staff key pair "
            f"({DEMO_FOLDER}/): Telegram and Matrix are never served from it; "
            "use an empty data folder for a real deployment"
        )
    return None


async def prepare(app: App, data_dir: Path) -> DemoStaff:
    """The demo staff member, made on first use (key pair, staff entry)."""
    staff = DemoStaff(app.pseudonyms.user("console", _STAFF_ID), DEMO_ROOM)
    store = app.casework.store
    if any(staff.user.key in m.identities for m in await store.list_staff()):
        return staff
    folder = data_dir / DEMO_FOLDER
    folder.mkdir(mode=0o700, exist_ok=True)
    (folder / "DEMO").write_text(_NOTE, encoding="utf-8")
    key_file = folder / "staff.key"
    key_file.unlink(missing_ok=True)  # from a run stopped before the staff entry was made
    key = PrivateKey.generate()
    write_private_key(key_file, key, _PASSPHRASE, forbidden=[], params=_THROWAWAY)
    await store.add_staff("Demo staff (throw-away)", [staff.user.key], key.public)
    return staff
