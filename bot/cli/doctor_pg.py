"""What `hrd-bot doctor` says of a PostgreSQL deployment (`HRD_BOT_DATABASE_URL`).

The URL is judged without connecting: TLS is required once the server is not on this
host (the values are sealed, but the password, the queries and who talks when are not,
and without TLS anyone on the path may alter them), and the password belongs in a
password file or a credential, not in a setting that sits in the environment file and
the process list. The team's keys are counted read-only (the doctor never creates the
schema), after a key check that needs no write. Only counts and settings are printed:
never the URL, a host name or a password.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

import psycopg
from psycopg.conninfo import conninfo_to_dict

from bot.cli.doctor import Finding
from bot.storage.dbkey import DbKey
from bot.storage.fields import SealedFields, UnsealError, field_key
from bot.storage.postgres import KEY_CHECK

__all__ = ["TLS_MODES", "connection", "team_counts"]

TLS_MODES = frozenset({"require", "verify-ca", "verify-full"})
TIMEOUT_S = 10
_SETTING = "HRD_BOT_DATABASE_URL"
_ONE_DEVICE = ("MATRIX_ACCESS_TOKEN", "MATRIX_DEVICE_ID")


def _local(host: str) -> bool:
    """A Unix socket (a path, or libpq's default when no host is given) or loopback."""
    if not host or host.startswith(("/", "@")) or host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name: it may resolve anywhere


def _hosts(info: Mapping[str, object], env: Mapping[str, str]) -> list[str]:
    chosen = info.get("hostaddr") or info.get("host") or env.get("PGHOST", "")
    return [host.strip() for host in str(chosen).split(",")]


def connection(url: str, env: Mapping[str, str]) -> list[Finding]:
    """TLS on the way to a server elsewhere; no password inline; a Matrix device per
    worker; Telegram through its webhook."""
    try:
        info = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        todo = "write it as postgresql://USER@HOST/DB?sslmode=verify-full"
        return [Finding("unsafe", f"{_SETTING} cannot be read", todo)]
    found: list[Finding] = []
    mode = str(info.get("sslmode") or env.get("PGSSLMODE") or "prefer")
    if all(_local(host) for host in _hosts(info, env)):
        found.append(Finding("ok", "PostgreSQL on this host (loopback or Unix socket)"))
    elif mode in TLS_MODES:
        found.append(Finding("ok", f"PostgreSQL is reached over TLS (sslmode={mode})"))
    else:
        found.append(
            Finding(
                "unsafe",
                f"PostgreSQL is reached over the network without TLS (sslmode={mode})",
                f"add sslmode=verify-full (and sslrootcert) to {_SETTING}: without it the "
                "password and the queries cross the network readable and alterable",
            )
        )
    found += _one_device_each(env) + _webhook(env)
    if info.get("password"):
        found.append(
            Finding(
                "unsafe",
                f"{_SETTING} carries the database password",
                "it sits in the environment file and the process: drop it from the URL and "
                "keep it in a password file (PGPASSFILE, mode 0600) or a systemd credential",
            )
        )
    return found


def _one_device_each(env: Mapping[str, str]) -> list[Finding]:
    """Every worker that leads logs in to Matrix as a device of its own (its keys in its
    own data folder); a fixed token or device id would put them all on one device, whose
    keys only the first worker holds: the others could decrypt nothing."""
    fixed = [n for n in _ONE_DEVICE if env.get(n) or env.get(f"{n}_FILE")]
    if not fixed:
        return []
    todo = f"with several workers set MATRIX_PASSWORD and unset {' and '.join(fixed)}"
    return [Finding("unsafe", "Matrix is tied to one device for every worker", todo)]


def _webhook(env: Mapping[str, str]) -> list[Finding]:
    """Telegram lets one poller in: a second worker polling would be refused (409) and
    its half of the people's updates would wait, so several workers take the webhook."""
    token = env.get("TELEGRAM_BOT_TOKEN") or env.get("TELEGRAM_BOT_TOKEN_FILE")
    if not token or env.get("TELEGRAM_WEBHOOK_URL"):
        return []
    todo = "set TELEGRAM_WEBHOOK_URL (and its secret) on every worker, behind one balancer"
    return [Finding("unsafe", "Telegram is polled, which only one worker may do", todo)]


def _opens(key: DbKey, salt: bytes, check: bytes) -> bool:
    try:
        return (
            SealedFields(field_key(key, salt)).unseal("hrd_bot_meta.keycheck", check) == KEY_CHECK
        )
    except UnsealError:
        return False


def team_counts(url: str, key: DbKey) -> tuple[int, int] | Finding:
    """Active staff keys and recovery keys, or the finding that says why not counted."""
    try:
        with psycopg.connect(url, connect_timeout=TIMEOUT_S) as conn:
            conn.read_only = True
            made = conn.execute("SELECT to_regclass('hrd_bot_meta') IS NOT NULL").fetchone()
            if made is None or not made[0]:
                todo = "start the bot once, then: hrd-bot staff add, hrd-bot recovery set"
                return Finding("unsafe", "no database yet, so no staff or recovery key", todo)
            meta = conn.execute("SELECT salt, keycheck FROM hrd_bot_meta").fetchone()
            if meta is None or not _opens(key, bytes(meta[0]), bytes(meta[1])):
                why = "not checked: the database key does not open the PostgreSQL database"
                return Finding("unknown", "staff and recovery keys", why)
            staff = conn.execute("SELECT count(*) FROM staff WHERE removed_at IS NULL")
            recovery = conn.execute("SELECT count(*) FROM org_keys")
            return int(staff.fetchone()[0]), int(recovery.fetchone()[0])  # type: ignore[index]
    except psycopg.Error as exc:
        why = f"not checked: PostgreSQL cannot be reached ({type(exc).__name__})"
        return Finding("unknown", "staff and recovery keys", why)
