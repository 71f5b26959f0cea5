"""`hrd-bot doctor`: what in this deployment would help someone who seizes or watches it.

It reads the configuration `hrd-bot run` reads, the data folder, the key files and
(with the database key, read-only, beside a running bot) the staff and recovery keys;
and where the host lets it tell, swap and the clock. Each finding is one line with
what to do. It never prints a secret, an id, a name or a file name from the data folder
(a Matrix store's file names hold account and device ids): counts and settings only.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import stat
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from bot.cli.demo import DEMO_FOLDER
from bot.config import Settings, credential_path
from bot.storage import DbKey, DbKeyError, WrongKeyError, resolve_db_key
from bot.storage.backup import BackupError, open_existing

__all__ = ["Finding", "clock", "database", "examine", "report", "swap"]

Verdict = Literal["unsafe", "ok", "unknown"]
_HEX_KEY = re.compile(rb"^\s*[0-9a-fA-F]{64}\s*$")
_PRIVATE_KEY_MARK = b'"hrd-bot-private-key"'
_SMALL = 64 * 1024
_OTHERS = stat.S_IRWXG | stat.S_IRWXO
TIME_ERROR = 5  # adjtimex(2): the kernel's clock is not synchronised (STA_UNSYNC)


@dataclass(frozen=True, slots=True)
class Finding:
    verdict: Verdict
    what: str
    todo: str = ""

    def line(self) -> str:
        mark = {"unsafe": "UNSAFE ", "ok": "ok     ", "unknown": "unknown"}[self.verdict]
        return f"{mark} {self.what}" + (f": {self.todo}" if self.todo else "")


def _files(folder: Path) -> Iterator[tuple[Path, os.stat_result]]:
    for root, dirs, names in os.walk(folder):
        dirs[:] = [d for d in dirs if not Path(root, d).is_symlink()]
        for name in names:
            path = Path(root, name)
            info = path.lstat()
            if stat.S_ISREG(info.st_mode):
                yield path, info


def _looks_like_key(path: Path, info: os.stat_result) -> str | None:
    if info.st_size > _SMALL:
        return None
    try:
        head = path.read_bytes()
    except OSError:
        return None
    if _PRIVATE_KEY_MARK in head:
        return "private"
    return "database" if _HEX_KEY.match(head) else None


def data_folder(settings: Settings) -> list[Finding]:
    """The folder's mode, files others may read, and keys lying in it."""
    folder = settings.data_dir
    if not folder.is_dir():
        return [Finding("unknown", "data folder", f"{folder} does not exist yet")]
    found: list[Finding] = []
    if folder.stat().st_mode & _OTHERS:
        found.append(
            Finding("unsafe", "the data folder is open to other users", f"chmod 700 {folder}")
        )
    readable, keys = 0, {"private": 0, "database": 0}
    for path, info in _files(folder):
        readable += bool(info.st_mode & (stat.S_IROTH | stat.S_IWOTH))
        if kind := _looks_like_key(path, info):
            keys[kind] += 1
    if readable:
        todo = f"chmod -R go-rwx {folder}"
        found.append(
            Finding("unsafe", f"{readable} file(s) in the data folder are world-readable", todo)
        )
    if keys["database"]:
        found.append(
            Finding(
                "unsafe",
                f"{keys['database']} database key file(s) inside the data folder",
                "a seized disk must not hold its own key: move the key to a systemd credential "
                "or another medium (HRD_BOT_DB_KEY_FILE), then shred the copy here",
            )
        )
    if keys["private"]:
        found.append(
            Finding(
                "unsafe",
                f"{keys['private']} private key file(s) inside the data folder",
                "staff and recovery private keys belong on staff machines only: move them "
                "off this server and shred the copies",
            )
        )
    if leftovers := _interrupted(settings):
        found.append(Finding("unsafe", "a restore or rekey was interrupted", leftovers))
    if (folder / DEMO_FOLDER).exists():
        todo = "it is for trying the bot only: start a real deployment from an empty data folder"
        found.append(
            Finding("unsafe", "this data folder holds a demo team (a throw-away key pair)", todo)
        )
    if not found:
        found.append(Finding("ok", "data folder: private, no key inside"))
    return found


def _interrupted(settings: Settings) -> str:
    """What to run again when `data restore` or `data rekey` was killed part-way."""
    database = settings.database_path
    if any(database.with_name(database.name + end).exists() for end in (".replaced", ".restoring")):
        return "run the same hrd-bot data restore again (bot stopped) to finish it"
    if database.with_name(database.name + ".rekeying").exists():
        return "run the same hrd-bot data rekey --new-key-file … again (bot stopped)"
    return ""


def key_source(settings: Settings) -> list[Finding]:
    """Where the database key comes from, and whether that place is safe."""
    env = settings.env
    if env.get("HRD_BOT_DB_KEY", "").strip():
        return [
            Finding(
                "unsafe",
                "the database key is set in the environment (HRD_BOT_DB_KEY)",
                "it sits in clear in the environment file and the process: use the systemd "
                "credential HRD_BOT_DB_KEY or HRD_BOT_DB_KEY_FILE on another medium",
            )
        ]
    if file := env.get("HRD_BOT_DB_KEY_FILE", "").strip():
        return _key_file(Path(file), settings.data_dir)
    if credential_path(env, "HRD_BOT_DB_KEY"):
        return [Finding("ok", "database key: a systemd credential")]
    if (settings.data_dir / "db.key").exists():
        return []  # the console's key file: `data_folder` names it as a key inside the folder
    return [
        Finding(
            "unsafe",
            "no database key is configured",
            "set the systemd credential HRD_BOT_DB_KEY or HRD_BOT_DB_KEY_FILE",
        )
    ]


def _key_file(path: Path, folder: Path) -> list[Finding]:
    try:
        info = path.stat()
    except OSError:
        return [Finding("unsafe", "HRD_BOT_DB_KEY_FILE cannot be read", f"check {path}")]
    found: list[Finding] = []
    if path.resolve().is_relative_to(folder.resolve()):
        todo = "move it off the data disk and point HRD_BOT_DB_KEY_FILE there"
        found.append(Finding("unsafe", "the database key file is inside the data folder", todo))
    if info.st_mode & _OTHERS:
        found.append(
            Finding("unsafe", "the database key file is open to other users", f"chmod 600 {path}")
        )
    elif folder.exists() and info.st_dev == folder.stat().st_dev:
        found.append(
            Finding(
                "unsafe",
                "the database key file is on the same file system as the data folder",
                "a seized disk holds both: use a systemd credential (TPM) or a separate medium",
            )
        )
    return found or [Finding("ok", "database key: a private file off the data disk")]


def team(settings: Settings) -> list[Finding]:
    """Active staff keys and the recovery key, read from the database (never created)."""
    try:
        key: DbKey = resolve_db_key(settings.env, settings.data_dir, may_create=False)
    except DbKeyError:
        return [Finding("unknown", "staff and recovery keys", "not checked: no database key")]
    counted = _team_counts(settings, key)
    if isinstance(counted, Finding):
        return [counted]
    staff, recovery = counted
    found = []
    if staff:
        found.append(Finding("ok", f"{staff} active staff key(s)"))
    else:
        todo = "nobody can read new reports: hrd-bot staff add (see README, keys)"
        found.append(Finding("unsafe", "no staff key", todo))
    if recovery:
        found.append(Finding("ok", "a recovery key is set"))
    else:
        todo = "cases are lost if every staff key is: hrd-bot recovery set"
        found.append(Finding("unsafe", "no recovery key", todo))
    return found


def _team_counts(settings: Settings, key: DbKey) -> tuple[int, int] | Finding:
    if url := settings.database_url:
        from bot.cli.doctor_pg import team_counts  # it builds on this module's Finding

        return team_counts(url, key)
    if not settings.database_path.exists():
        todo = "start the bot once, then: hrd-bot staff add, hrd-bot recovery set"
        return Finding("unsafe", "no database yet, so no staff or recovery key", todo)
    try:
        conn = open_existing(settings.database_path, key, "the database")
    except (WrongKeyError, BackupError) as exc:
        return Finding("unknown", "staff and recovery keys", f"not checked: {exc}")
    try:
        staff = conn.execute("SELECT count(*) FROM staff WHERE removed_at IS NULL").fetchone()[0]
        recovery = conn.execute("SELECT count(*) FROM org_keys").fetchone()[0]
    finally:
        conn.close()
    return int(staff), int(recovery)


def database(settings: Settings) -> list[Finding]:
    """On PostgreSQL: TLS on the way to it, and no password in its URL."""
    if url := settings.database_url:
        from bot.cli.doctor_pg import connection

        return connection(url, settings.env)
    return []


def chats(settings: Settings) -> list[Finding]:
    """Staff rooms and on-call from the configuration; Matrix rooms from the homeserver."""
    rooms = settings.chats("HRD_BOT_STAFF_ROOMS")
    found: list[Finding] = []
    if not rooms:
        todo = "set HRD_BOT_STAFF_ROOMS to an end-to-end encrypted Matrix room"
        found.append(Finding("unsafe", "no staff room", todo))
    plain = sum(not room.encrypted for room in rooms)
    if plain:
        found.append(
            Finding(
                "unsafe",
                f"{plain} staff room(s) are not end-to-end encrypted (Telegram groups)",
                "the platform reads every alert there: use an encrypted Matrix staff room",
            )
        )
    if plain and plain < len(rooms):
        found.append(
            Finding(
                "unsafe",
                "staff rooms are mixed: encrypted and not",
                "staff in the unencrypted one see less and may ask for content there: use one kind",
            )
        )
    from bot.cli.doctor_matrix import matrix_rooms  # it builds on this module's Finding

    found += matrix_rooms(settings, rooms)
    if not settings.chats("HRD_BOT_ONCALL"):
        todo = "set HRD_BOT_ONCALL: critical cases then reach a person, not only a room"
        found.append(Finding("unsafe", "no on-call chat", todo))
    else:
        found.append(Finding("ok", "an on-call chat is set"))
    return found


def swap(swaps: Path = Path("/proc/swaps"), block: Path = Path("/sys/block")) -> Finding:
    """Swap is safe when absent, in memory (zram) or on dm-crypt (`CRYPT-…` uuid)."""
    try:
        lines = swaps.read_text().splitlines()[1:]
    except OSError:
        return Finding("unknown", "swap", f"could not tell ({swaps} cannot be read)")
    devices = [line.split()[0] for line in lines if line.strip()]
    if not devices:
        return Finding("ok", "no swap")
    unsafe = [d for d in devices if not _swap_safe(d, block)]
    if not unsafe:
        return Finding("ok", "swap is encrypted or in memory")
    return Finding(
        "unsafe",
        f"{len(unsafe)} swap area(s) not encrypted",
        "decrypted reports can be paged to disk: use encrypted swap (crypttab, random key) or none",
    )


def _swap_safe(device: str, block: Path) -> bool:
    name = Path(os.path.realpath(device)).name
    if name.startswith("zram"):
        return True
    try:
        uuid = (block / name / "dm" / "uuid").read_text().strip()
    except OSError:
        return False  # a swap file, or a plain partition
    return uuid.startswith("CRYPT-")


def _timedatectl() -> str | None:
    program = shutil.which("timedatectl")
    if program is None:
        return None
    try:
        done = subprocess.run(  # noqa: S603  (fixed arguments, no shell)
            [program, "show", "-p", "NTPSynchronized", "--value"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _adjtimex() -> int | None:
    """The kernel's clock state (read only: modes 0), or None where it cannot be read."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        timex = ctypes.create_string_buffer(512)  # larger than struct timex; modes = 0
        state = int(libc.adjtimex(timex))
    except (OSError, AttributeError):
        return None
    return None if state < 0 else state


def clock(
    timedatectl: Callable[[], str | None] = _timedatectl,
    adjtimex: Callable[[], int | None] = _adjtimex,
) -> Finding:
    synced = timedatectl()
    if synced == "yes":
        return Finding("ok", "the clock is synchronised (timedatectl)")
    if synced == "no":
        return Finding("unsafe", "the clock is not synchronised (timedatectl)", _CLOCK_TODO)
    state = adjtimex()
    if state is None:
        return Finding("unknown", "clock", "could not tell (no timedatectl, adjtimex refused)")
    if state == TIME_ERROR:
        return Finding("unsafe", "the kernel's clock is not synchronised (adjtimex)", _CLOCK_TODO)
    return Finding("ok", "the kernel's clock is synchronised (adjtimex)")


_CLOCK_TODO = "expiring messages and check-ins depend on it: enable NTP (timedatectl set-ntp true)"


def examine(settings: Settings) -> list[Finding]:
    return [
        *data_folder(settings),
        *key_source(settings),
        *database(settings),
        *team(settings),
        *chats(settings),
        swap(),
        clock(),
    ]


def report(settings: Settings) -> int:
    """Print every finding; 1 when anything is unsafe."""
    findings = examine(settings)
    for finding in findings:
        print(finding.line())
    unsafe = sum(f.verdict == "unsafe" for f in findings)
    print(f"{unsafe} unsafe, {sum(f.verdict == 'unknown' for f in findings)} not checked")
    return 1 if unsafe else 0
