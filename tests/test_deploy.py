"""deploy/: the systemd unit, the container image and the compose file, read as files, and
the bot started from the example settings and run under the unit's sandbox."""

from __future__ import annotations

import asyncio
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bot.config import KNOWN, SECRETS
from tests.conftest import CONTENT, ROOT
from tests.processes import bot_env
from tests.telegram_emulator import Emulator
from tests.telegram_emulator.harness import onboard
from tests.unit_sandbox import Unit, read_unit, unavailable

DEPLOY = ROOT / "deploy"
UNIT = DEPLOY / "hrd-bot.service"
ENV_EXAMPLE = DEPLOY / "hrd-bot.env.example"
STAFF_MACHINE_ONLY = {"HRD_BOT_KEY_PASSPHRASE"}  # unlocks a staff private key: never on a server
SERVER_SECRETS = sorted(set(SECRETS) - STAFF_MACHINE_ONLY)
REQUIRED = {"HRD_BOT_DB_KEY"}
SECRET_WORDS = re.compile(r"(PASSWORD|PASSPHRASE|TOKEN|SECRET|_KEY)$")
KEY = "ab" * 32


def service(unit: Unit, key: str) -> list[str]:
    return [value for k, value in unit["Service"] if k == key]


def example_settings() -> dict[str, str]:
    lines = (line.strip() for line in ENV_EXAMPLE.read_text().splitlines())
    pairs = (line.split("=", 1) for line in lines if line and not line.startswith("#"))
    return {key: value for key, value in pairs}


def credentials(folder: Path, **values: str) -> Path:
    """A folder like systemd's $CREDENTIALS_DIRECTORY: one 0400 file per secret."""
    folder.mkdir()
    for name, value in values.items():
        (folder / name).write_text(value + "\n")
        (folder / name).chmod(0o400)
    return folder


# --- the unit -------------------------------------------------------------------------


def test_the_staff_only_secret_is_still_a_declared_secret() -> None:
    assert set(SECRETS) >= STAFF_MACHINE_ONLY, "rename it here too"


def test_every_server_secret_is_an_encrypted_credential() -> None:
    loaded = dict(v.split(":", 1) for v in service(read_unit(UNIT), "LoadCredentialEncrypted"))
    assert sorted(loaded) == SERVER_SECRETS
    assert all(path.startswith("/etc/hrd-bot/credentials/") for path in loaded.values())
    assert not service(read_unit(UNIT), "LoadCredential"), "a plain credential is a file in clear"


def test_only_the_database_key_is_required() -> None:
    fallbacks = dict(v.split(":", 1) for v in service(read_unit(UNIT), "SetCredential"))
    assert set(fallbacks) == set(SERVER_SECRETS) - REQUIRED
    assert set(fallbacks.values()) == {"\\n"}, "a fallback must read as unset, not as a value"


def test_no_secret_in_the_unit_or_the_example_environment() -> None:
    names = {e.split("=", 1)[0] for v in service(read_unit(UNIT), "Environment") for e in v.split()}
    for name in names | set(example_settings()):
        assert name not in SECRETS and not name.endswith("_FILE"), name
    assert set(example_settings()) <= KNOWN


def test_the_unit_is_hardened() -> None:
    unit = read_unit(UNIT)
    expected = {
        "DynamicUser": "yes",
        "CapabilityBoundingSet": "",
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "PrivateTmp": "yes",
        "ProtectProc": "invisible",
        "ProcSubset": "pid",
        "MemoryDenyWriteExecute": "yes",
        "SystemCallArchitectures": "native",
        "LimitCORE": "0",
        "UMask": "0077",
    }
    assert {key: service(unit, key)[-1] for key in expected} == expected
    assert service(unit, "RestrictAddressFamilies") == ["AF_UNIX AF_INET AF_INET6"]
    assert service(unit, "SystemCallFilter")[0] == "@system-service"


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed")
def test_the_unit_exposure_is_at_most_2() -> None:
    run = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", str(UNIT)],
        capture_output=True,
        text=True,
        check=False,
    )
    found = re.search(r"Overall exposure level for hrd-bot\.service: (\d+\.\d+)", run.stdout)
    assert found, run.stdout + run.stderr
    assert float(found.group(1)) <= 2.0, run.stdout


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed")
def test_systemd_reads_every_line_of_the_unit() -> None:
    run = subprocess.run(
        ["systemd-analyze", "verify", str(UNIT)], capture_output=True, text=True, check=False
    )
    complaints = [
        line
        for line in (run.stdout + run.stderr).splitlines()
        if line and "/opt/hrd-bot/.venv/bin/hrd-bot" not in line  # not installed here
    ]
    assert complaints == []


def test_the_bot_starts_from_the_example_settings_on_a_clean_data_folder(tmp_path: Path) -> None:
    settings = {**example_settings(), "HRD_BOT_CONTENT_DIR": str(CONTENT)}  # not in /opt here
    creds = credentials(tmp_path / "credentials", HRD_BOT_DB_KEY=KEY)
    env = bot_env(tmp_path / "data", CONTENT, **settings, CREDENTIALS_DIRECTORY=str(creds))
    run = subprocess.run(
        [sys.executable, "-m", "bot.cli", "run", "--console"],
        input=b"1\n9\n",
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr.decode()
    assert "How can I help?" in run.stdout.decode()
    data = sorted(p.name for p in (tmp_path / "data").iterdir())
    assert data == ["hrd-bot.db", "hrd-bot.db.check", "hrd-bot.lock"], "no db.key made"


# --- the container image and compose ----------------------------------------------------


def containerfile_stages() -> list[list[tuple[str, str]]]:
    """Each stage's (INSTRUCTION, arguments), continuation lines joined."""
    text = re.sub(r"\\\n", " ", (DEPLOY / "Containerfile").read_text())
    lines = [line.strip() for line in text.splitlines()]
    stages: list[list[tuple[str, str]]] = []
    for line in (line for line in lines if line and not line.startswith("#")):
        instruction, _, arguments = line.partition(" ")
        if instruction.upper() == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((instruction.upper(), arguments.strip()))
    return stages


def compose() -> dict[str, dict[str, dict[str, object]]]:
    loaded = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def test_the_image_is_built_in_two_stages_and_runs_as_a_user() -> None:
    build, final = containerfile_stages()
    assert build[0] == ("FROM", "${BASE} AS build")
    copied = [args for op, args in final if op == "COPY"]
    assert copied == [
        "--from=build /opt/hrd-bot/venv /opt/hrd-bot/venv",
        "content /opt/hrd-bot/content",
    ]
    user = [args for op, args in final if op == "USER"]
    assert user and user[-1].split(":")[0] not in {"0", "root"}
    env = " ".join(args for op, args in final if op == "ENV")
    assert "CREDENTIALS_DIRECTORY=/run/secrets" in env and "HRD_BOT_DATA_DIR=/data" in env
    assert not [name for name in SECRETS if name in env], "a secret in the image's environment"


def test_compose_runs_the_bot_read_only_as_a_user_with_every_secret_as_a_file() -> None:
    spec = compose()
    bot = spec["services"]["bot"]
    assert bot["read_only"] is True and bot["cap_drop"] == ["ALL"]
    assert str(bot["user"]).split(":")[0] not in {"0", "root"}
    assert bot["security_opt"] == ["no-new-privileges:true"]
    assert bot["tmpfs"] == ["/tmp:size=64m,mode=1777"]
    assert bot["volumes"] == ["bot-data:/data", "bot-backup:/backup"]
    assert sorted(bot["secrets"]) == SERVER_SECRETS  # type: ignore[call-overload]
    assert all("file" in spec["secrets"][name] for name in SERVER_SECRETS)


def test_compose_puts_no_secret_in_any_environment() -> None:
    for name, svc in compose()["services"].items():
        environment = svc.get("environment", {})
        assert isinstance(environment, dict)
        for key in environment:
            assert not SECRET_WORDS.search(key) and key not in SECRETS, (name, key)


def test_compose_publishes_only_synapse_on_loopback_and_keeps_postgres_inside() -> None:
    spec = compose()
    assert set(spec["services"]) == {"bot", "synapse", "postgres"}
    published = {name: svc["ports"] for name, svc in spec["services"].items() if "ports" in svc}
    assert published == {"synapse": ["127.0.0.1:8008:8008"]}
    assert spec["services"]["postgres"]["networks"] == ["internal"]
    assert spec["networks"]["internal"] == {"internal": True}


# --- the bot under the unit's sandbox ---------------------------------------------------

SANDBOX = unavailable()
needs_sandbox = pytest.mark.skipif(SANDBOX is not None, reason=f"unit sandbox: {SANDBOX}")
PROBE = """
import mmap, os, resource, socket, sys
def refused(do):
    try:
        do()
    except OSError:
        return True
    return False
print(refused(lambda: open(os.path.join(sys.argv[1], "written"), "w").close()),
      refused(lambda: open(sys.argv[2], "w").close()),
      refused(lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)),
      refused(lambda: mmap.mmap(-1, 4096, prot=mmap.PROT_WRITE | mmap.PROT_EXEC)),
      refused(lambda: os.sched_setaffinity(0, {0})),
      refused(lambda: open("/proc/sys/kernel/hostname").read()),
      resource.getrlimit(resource.RLIMIT_CORE), oct(os.umask(0)))
"""
LIBRARIES = """
import vodozemac, nio, argon2, sqlcipher3
from Crypto.Cipher import AES
from cryptography.hazmat.primitives.hpke import AEAD, KDF, KEM, Suite
from bot.crypto.keys import PrivateKey
olm = vodozemac.Account(); olm.generate_one_time_keys(1)
megolm = vodozemac.GroupSession(); megolm.encrypt(b"x")
key = PrivateKey.generate()
Suite(KEM.X25519, KDF.HKDF_SHA256, AEAD.CHACHA20_POLY1305).encrypt(b"x", key.public.key, info=b"i")
AES.new(bytes(32), AES.MODE_CTR, nonce=bytes(8)).encrypt(b"x")  # nio's attachments
argon2.PasswordHasher(time_cost=1, memory_cost=1024).hash("x")
db = sqlcipher3.connect(":memory:"); db.execute("PRAGMA key = 'x'"); db.execute("CREATE TABLE t(a)")
print("ok")
"""


def sandboxed(data: Path, creds: Path, *command: str) -> list[str]:
    unit_args = [str(UNIT), str(data), str(creds), "--"]
    return [sys.executable, "-m", "tests.unit_sandbox", *unit_args, *command]


@needs_sandbox
def test_the_sandbox_applies_what_the_unit_asks(tmp_path: Path) -> None:
    data, creds = tmp_path / "data", credentials(tmp_path / "credentials")
    data.mkdir()
    outside = ROOT / "deploy" / "written-by-test"
    probe = sandboxed(data, creds, sys.executable, "-c", PROBE, str(data), str(outside))
    run = subprocess.run(probe, capture_output=True, text=True, timeout=60, check=False)
    assert run.returncode == 0, run.stderr
    written = outside.exists()
    outside.unlink(missing_ok=True)
    assert run.stdout.strip() == "False True True True True True (0, 0) 0o77"
    assert not written


@needs_sandbox
def test_the_libraries_need_no_writable_executable_memory(tmp_path: Path) -> None:
    data, creds = tmp_path / "data", credentials(tmp_path / "credentials")
    data.mkdir()
    run = subprocess.run(
        sandboxed(data, creds, sys.executable, "-c", LIBRARIES),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )
    assert (run.returncode, run.stdout.strip()) == (0, "ok"), run.stderr


class Log:
    """A process's standard error, line by line, waited on."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.changed = asyncio.Condition()

    async def read(self, stream: asyncio.StreamReader) -> None:
        async for raw in stream:
            async with self.changed:
                self.lines.append(raw.decode(errors="replace"))
                self.changed.notify_all()

    async def wait_for(self, text: str, within: float = 30) -> None:
        try:
            async with asyncio.timeout(within), self.changed:
                await self.changed.wait_for(lambda: any(text in line for line in self.lines))
        except TimeoutError:
            raise AssertionError(f"not logged: {text!r}; logged:\n{''.join(self.lines)}") from None


@needs_sandbox
async def test_the_bot_serves_telegram_and_reloads_content_under_the_unit_sandbox(
    emu: Emulator, tmp_path: Path
) -> None:
    creds = credentials(tmp_path / "credentials", HRD_BOT_DB_KEY=KEY, TELEGRAM_BOT_TOKEN=emu.token)
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    settings = {**example_settings(), "HRD_BOT_CONTENT_DIR": str(CONTENT)}
    url = emu.api_base_url.replace("127.0.0.1", "localhost")  # the resolver, too
    env = bot_env(
        data, CONTENT, **settings, CREDENTIALS_DIRECTORY=str(creds), TELEGRAM_API_BASE_URL=url
    )
    command = sandboxed(data, creds, sys.executable, "-m", "bot.cli", "run", "--no-console")
    proc = await asyncio.create_subprocess_exec(
        *command, env=env, cwd=ROOT, stderr=asyncio.subprocess.PIPE
    )
    assert proc.stderr is not None
    log = Log()
    reader = asyncio.create_task(log.read(proc.stderr))
    try:
        await log.wait_for("started: telegram")
        ana = emu.user("Ana")
        assert "How can I help?" in (await onboard(ana)).text
        proc.send_signal(signal.SIGHUP)  # the content loader process, under the same filter
        await log.wait_for("content reload done (0 errors)")
        assert "Legal information" in (await ana.ask("/start")).buttons
    finally:
        proc.send_signal(signal.SIGTERM)
        code = await proc.wait()
        await reader
    assert code == 0, "".join(log.lines)
    assert not [line for line in log.lines if "not permitted" in line or "Error" in line]
