"""Run a command under the sandbox deploy/hrd-bot.service asks systemd for, without systemd.

This machine (and CI) has no systemd as PID 1, so `systemd-run -p ...` cannot start the
bot. This launcher applies, from the unit's own lines, what decides whether the bot can
run at all: the system-call allow-list (groups expanded by `systemd-analyze
syscall-filter`, errors as `SystemCallErrorNumber=`), the address families of socket(),
`MemoryDenyWriteExecute=` (the kernel's PR_SET_MDWE, what newer systemd uses), an empty
capability bounding set, `NoNewPrivileges=`, `LimitCORE=`, `UMask=`, and in a private
mount namespace `ProtectSystem=strict` (a read-only root: only the data folder
writable), `PrivateTmp=` and `ProcSubset=pid`/`ProtectProc=invisible`. It does not
emulate the user switch (`DynamicUser=`) or `ProtectHome=` (this machine's Python lives
under /root). Root only: `python -m tests.unit_sandbox UNIT DATA CREDENTIALS -- CMD ...`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import resource
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

__all__ = ["Unit", "read_unit", "syscall_groups", "unavailable"]

Unit = dict[str, list[tuple[str, str]]]

PR_SET_NO_NEW_PRIVS = 38
PR_CAPBSET_DROP = 24
PR_SET_MDWE, PR_GET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 65, 66, 1
SCMP_ACT_ALLOW = 0x7FFF0000
SCMP_CMP_EQ = 4
CLONE_NEWNS = 0x00020000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18


def read_unit(path: Path) -> Unit:
    """Sections to their (key, value) lines in order; keys repeat, as systemd allows."""
    unit: Unit = {}
    section = ""
    pending = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = pending + raw.strip()
        pending = ""
        if not line or line.startswith(("#", ";")):
            continue
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            unit.setdefault(section, [])
            continue
        key, sep, value = line.partition("=")
        if not sep or not section:
            raise ValueError(f"{path}: not a unit line: {line!r}")
        unit[section].append((key.strip(), value.strip()))
    return unit


def syscall_groups() -> dict[str, list[str]]:
    """systemd's named groups (`@system-service`, ...) as this systemd defines them."""
    out = subprocess.run(
        ["systemd-analyze", "syscall-filter"], capture_output=True, text=True, check=True
    ).stdout
    groups: dict[str, list[str]] = {}
    current: list[str] = []
    for line in out.splitlines():
        if line.startswith("@"):
            current = groups.setdefault(line.strip(), [])
        elif line.strip() and not line.strip().startswith("#") and line.startswith(" "):
            current.append(line.strip())
    return groups


def _expand(names: Iterable[str], groups: dict[str, list[str]]) -> set[str]:
    found: set[str] = set()
    for name in names:
        found |= _expand(groups[name], groups) if name.startswith("@") else {name}
    return found


def allowed_syscalls(lines: list[str], groups: dict[str, list[str]]) -> set[str]:
    """systemd's rule: the first line makes an allow-list; later lines add, or remove (~)."""
    allowed: set[str] = set()
    for line in lines:
        negate = line.startswith("~")
        names = _expand(line.removeprefix("~").split(), groups)
        allowed = allowed - names if negate else allowed | names
    return allowed


def unavailable() -> str | None:
    """Why this machine cannot run the sandbox, or None."""
    if os.geteuid() != 0:
        return "needs root (mount namespace, capability bounding set)"
    if not ctypes.util.find_library("seccomp"):
        return "libseccomp is not installed"
    if not shutil.which("systemd-analyze"):
        return "systemd-analyze is not installed"
    if ctypes.CDLL(None, use_errno=True).prctl(PR_GET_MDWE, 0, 0, 0, 0) < 0:
        return "the kernel has no PR_SET_MDWE (Linux 6.3 or later)"
    return None


def _values(unit: Unit, key: str) -> list[str]:
    return [value for k, value in unit.get("Service", []) if k == key]


def _check(result: int, what: str) -> None:
    if result != 0:
        code = ctypes.get_errno() or (-result if result < 0 else errno.EINVAL)
        raise OSError(code, f"{what}: {os.strerror(code)}")


def _encoded(text: str | None) -> bytes | None:
    return None if text is None else text.encode()


def _mount(
    libc: ctypes.CDLL,
    source: str | None,
    target: str,
    kind: str | None,
    flags: int,
    data: str | None = None,
) -> None:
    result = libc.mount(_encoded(source), target.encode(), _encoded(kind), flags, _encoded(data))
    _check(result, f"mount {target}")


CHECKOUT = Path(__file__).resolve().parents[1]


def _under_tmp(path: Path) -> bool:
    """A checkout (CI's clone, say) under /tmp would vanish behind the private /tmp."""
    return path == Path("/tmp") or Path("/tmp") in path.parents


def _mounts(libc: ctypes.CDLL, data: Path, credentials: Path) -> None:
    """ProtectSystem=strict, PrivateTmp=, ProcSubset=pid: a private view of the files."""
    _check(libc.unshare(CLONE_NEWNS), "unshare")
    _mount(libc, None, "/", None, MS_REC | MS_PRIVATE)
    places = {CHECKOUT, Path(sys.prefix).resolve()}
    program = [p for p in places if _under_tmp(p) and not any(q in p.parents for q in places)]
    kept = {path: os.open(path, os.O_PATH) for path in (data, credentials, *program)}
    _mount(libc, "tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777")
    for path, fd in kept.items():
        path.mkdir(parents=True, exist_ok=True)
        _mount(libc, f"/proc/self/fd/{fd}", str(path), None, MS_BIND)
    for read_only in (credentials, *program):  # the program: /opt/hrd-bot under the unit
        _mount(libc, None, str(read_only), None, MS_REMOUNT | MS_BIND | MS_RDONLY)
    _mount(libc, None, "/", None, MS_REMOUNT | MS_BIND | MS_RDONLY)
    proc_flags = MS_NOSUID | MS_NODEV | MS_NOEXEC
    _mount(libc, "proc", "/proc", "proc", proc_flags, "hidepid=invisible,subset=pid")
    for fd in kept.values():
        os.close(fd)


class _ArgCmp(ctypes.Structure):
    _fields_ = (
        ("arg", ctypes.c_uint),
        ("op", ctypes.c_int),
        ("datum_a", ctypes.c_uint64),
        ("datum_b", ctypes.c_uint64),
    )


def _seccomp(unit: Unit) -> None:
    """The allow-list, socket()'s families, then load (which also sets no_new_privs)."""
    lib = ctypes.CDLL(ctypes.util.find_library("seccomp"), use_errno=True)
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int]
    lib.seccomp_rule_add_array.argtypes += [ctypes.c_uint, ctypes.c_void_p]
    lib.seccomp_load.argtypes = [ctypes.c_void_p]
    error = getattr(errno, _values(unit, "SystemCallErrorNumber")[-1])
    ctx = lib.seccomp_init(0x00050000 | error)  # SCMP_ACT_ERRNO(error)
    allowed = allowed_syscalls(_values(unit, "SystemCallFilter"), syscall_groups())
    families = [
        getattr(socket, name)
        for v in _values(unit, "RestrictAddressFamilies")
        for name in v.split()
    ]
    for name in sorted(allowed):
        number = lib.seccomp_syscall_resolve_name(name.encode())
        if number < 0:
            continue  # another architecture's call
        if name == "socket" and families:
            for family in families:
                rule = ctypes.byref(_ArgCmp(0, SCMP_CMP_EQ, family, 0))
                _check(lib.seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, number, 1, rule), "socket")
            continue
        _check(lib.seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, number, 0, None), name)
    _check(lib.seccomp_load(ctx), "seccomp_load")


def enter(unit: Unit, data: Path, credentials: Path) -> None:
    """Apply the unit's sandbox to this process; an exec'd program keeps all of it."""
    libc = ctypes.CDLL(None, use_errno=True)
    last_cap = int(Path("/proc/sys/kernel/cap_last_cap").read_text())  # hidden once mounted
    _mounts(libc, data, credentials)
    if _values(unit, "LimitCORE") == ["0"]:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if umask := _values(unit, "UMask"):
        os.umask(int(umask[-1], 8))
    if _values(unit, "CapabilityBoundingSet") == [""]:
        for cap in range(last_cap + 1):
            _check(libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0), "drop capability")
    if _values(unit, "NoNewPrivileges") == ["yes"]:
        _check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    if _values(unit, "MemoryDenyWriteExecute") == ["yes"]:
        _check(libc.prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0), "PR_SET_MDWE")
    _seccomp(unit)


def main(argv: list[str]) -> None:
    unit_path, data, credentials, dashes, *command = argv
    if dashes != "--" or not command:
        raise SystemExit("usage: python -m tests.unit_sandbox UNIT DATA CREDENTIALS -- CMD ...")
    unit = read_unit(Path(unit_path))
    enter(unit, Path(data).resolve(), Path(credentials).resolve())
    os.execv(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])
