"""Settings are checked at start: each bad one is one line, `error: …`, and exit status 2.

Secrets come from `NAME`, `NAME_FILE` or a systemd credential; every variable the code
names is declared, so a misspelt one is caught with the closest known name.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.cli import main
from bot.config import KNOWN, PLATFORMS, SECRETS, ConfigError, Settings
from bot.storage import resolve_db_key
from tests.processes import bot_env, run_cli

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The process environment as `bot_env` gives it to a real bot."""
    for name in list(os.environ):
        if name.startswith(("HRD_BOT_", "TELEGRAM_", "MATRIX_")) or name == "CREDENTIALS_DIRECTORY":
            monkeypatch.delenv(name)
    monkeypatch.setenv("HRD_BOT_DATA_DIR", str(tmp_path / "data"))
    return tmp_path


BAD = [
    ({"HRD_BOT_LOG_LEVEL": "verbose"}, "error: HRD_BOT_LOG_LEVEL: must be one of"),
    ({"HRD_BOT_STAFF_ROOMS": "matirx:!room:server"}, "unknown platform 'matirx'"),
    ({"HRD_BOT_ONCALL": "telegram:-100, sms:+15550100"}, "HRD_BOT_ONCALL: unknown platform 'sms'"),
    (
        {"HRD_BOT_STAFF_ROOMS": "telegram"},
        "HRD_BOT_STAFF_ROOMS: 'telegram' is not platform:address",
    ),
    (
        {"HRD_BOT_LOG_LEVL": "DEBUG"},
        "unknown setting HRD_BOT_LOG_LEVL; did you mean HRD_BOT_LOG_LEVEL?",
    ),
    ({"TELEGRAM_BOT_TOKN": "1:a"}, "did you mean TELEGRAM_BOT_TOKEN?"),
    ({"MATRIX_HOMESERVR": "https://m"}, "did you mean MATRIX_HOMESERVER?"),
    ({"HRD_BOT_STAFF_ROOM": "telegram:1"}, "did you mean HRD_BOT_STAFF_ROOMS?"),
    ({"HRD_BOT_SENSITIVE_TTL": "an hour"}, "HRD_BOT_SENSITIVE_TTL: must be a whole number"),
    ({"HRD_BOT_SENSITIVE_TTL": "-5"}, "HRD_BOT_SENSITIVE_TTL: Input should be greater than"),
    ({"TELEGRAM_WEBHOOK_PORT": "70000"}, "TELEGRAM_WEBHOOK_PORT: "),
    ({"TELEGRAM_POLL_TIMEOUT": "soon"}, "TELEGRAM_POLL_TIMEOUT: must be a whole number"),
    ({"HRD_BOT_INSECURE_FAST_KDF": "yes"}, "HRD_BOT_INSECURE_FAST_KDF: must be one of"),
    ({"TELEGRAM_BOT_TOKEN_FILE": "/nonexistent/token"}, "TELEGRAM_BOT_TOKEN_FILE: cannot read"),
    ({"MATRIX_PASSWORD_FILE": "/dev/zero"}, "is not a small regular file"),
]


@pytest.mark.parametrize(("env", "message"), BAD)
def test_a_bad_setting_is_one_line_and_exit_2(
    clean_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    env: dict[str, str],
    message: str,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(["run", "--no-console"]) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("error: ")
    assert message in lines[0]
    assert captured.out == ""
    assert not (clean_env / "data").exists(), "nothing was created before the settings passed"


def test_a_real_process_prints_one_line_and_no_traceback(tmp_path: Path) -> None:
    run = run_cli(bot_env(tmp_path, HRD_BOT_LOG_LEVEL="verbose"), "run", "--no-console")
    assert run.returncode == 2
    assert run.stderr.splitlines() == [
        "error: HRD_BOT_LOG_LEVEL: must be one of 'DEBUG', 'INFO', 'WARNING', 'ERROR' or "
        "'CRITICAL', got 'VERBOSE'"
    ]


def test_a_secret_is_never_echoed_in_an_error(clean_env: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"TELEGRAM_BOT_TOKEN": "1:SECRET-TOKEN", "TELEGRAM_WEBHOOK_PORT": "x"})
    assert "SECRET-TOKEN" not in str(caught.value)
    settings = Settings.from_env({"TELEGRAM_BOT_TOKEN": "1:SECRET-TOKEN"})
    assert "SECRET-TOKEN" not in repr(settings) + repr(settings.declared)


def test_secrets_come_from_name_then_file_then_credential(tmp_path: Path) -> None:
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "TELEGRAM_BOT_TOKEN").write_text("from-credential\n")
    (credentials / "MATRIX_PASSWORD").write_text("pw-credential")
    token_file = tmp_path / "token"
    token_file.write_text("  from-file \n")
    base = {"CREDENTIALS_DIRECTORY": str(credentials)}
    settings = Settings.from_env(base)
    assert settings.secret("TELEGRAM_BOT_TOKEN") == "from-credential"
    assert settings.secret("MATRIX_PASSWORD") == "pw-credential"
    assert settings.secret("MATRIX_ACCESS_TOKEN") is None
    with_file = Settings.from_env({**base, "TELEGRAM_BOT_TOKEN_FILE": str(token_file)})
    assert with_file.secret("TELEGRAM_BOT_TOKEN") == "from-file"
    direct = Settings.from_env({**with_file.env, "TELEGRAM_BOT_TOKEN": "direct"})
    assert direct.secret("TELEGRAM_BOT_TOKEN") == "direct"


def test_a_passphrase_keeps_its_spaces(tmp_path: Path) -> None:
    secret = tmp_path / "passphrase"
    secret.write_text("  two words  \n")
    settings = Settings.from_env({"HRD_BOT_KEY_PASSPHRASE_FILE": str(secret)})
    assert settings.secret("HRD_BOT_KEY_PASSPHRASE") == "  two words  "


def test_the_database_key_comes_from_a_systemd_credential(tmp_path: Path) -> None:
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    key = credentials / "HRD_BOT_DB_KEY"
    key.write_text("cd" * 32 + "\n")
    key.chmod(0o440)
    env = {"CREDENTIALS_DIRECTORY": str(credentials)}
    assert resolve_db_key(env, tmp_path / "data", may_create=False).value == "cd" * 32
    assert not (tmp_path / "data" / "db.key").exists()


def test_values_are_typed_and_defaults_hold(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "HRD_BOT_DATA_DIR": str(tmp_path),
            "HRD_BOT_LOG_LEVEL": "debug",
            "HRD_BOT_SENSITIVE_TTL": "0",
            "HRD_BOT_STAFF_ROOMS": "matrix:!a:example.org, telegram:-1001",
            "HRD_BOT_ONCALL": "",
        }
    )
    assert settings.log_level == "DEBUG"
    assert settings.sensitive_ttl is None
    assert settings.database_path == tmp_path / "hrd-bot.db"
    rooms = settings.chats("HRD_BOT_STAFF_ROOMS")
    assert [(r.platform, r.address, r.encrypted) for r in rooms] == [
        ("matrix", "!a:example.org", True),
        ("telegram", "-1001", False),
    ]
    assert settings.chats("HRD_BOT_ONCALL") == ()
    assert Settings.from_env({}).sensitive_ttl is not None


def test_every_variable_the_code_names_is_declared() -> None:
    """A variable named in any string in bot/ but not declared would be refused as unknown."""
    pattern = re.compile(r"\b(?:HRD_BOT|TELEGRAM|MATRIX)_[A-Z][A-Z_]*[A-Z]\b")
    named: set[str] = set()
    for source in (ROOT / "bot").rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                named |= set(pattern.findall(node.value))
    assert "HRD_BOT_STAFF_ROOMS" in named
    assert named - KNOWN == set()


PLAIN = sorted(name for name in KNOWN if not name.endswith("_FILE") and name not in SECRETS)


@given(
    st.dictionaries(
        st.sampled_from(PLAIN),
        st.text(st.characters(codec="utf-8", exclude_characters="\0"), max_size=40)
        | st.integers(-(10**30), 10**30).map(str),
        max_size=6,
    )
)
def test_any_values_give_settings_or_one_config_error(env: dict[str, str]) -> None:
    try:
        settings = Settings.from_env(env)
    except ConfigError as exc:
        refusal = str(exc)
    else:
        assert settings.log_level in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
        ttl = settings.sensitive_ttl
        assert ttl is None or ttl.total_seconds() > 0
        rooms = settings.chats("HRD_BOT_STAFF_ROOMS") + settings.chats("HRD_BOT_ONCALL")
        assert all(chat.platform in PLATFORMS for chat in rooms)
        return
    assert refusal
    assert "\n" not in refusal


def test_the_unit_does_not_restart_refusals(tmp_path: Path) -> None:
    unit = (ROOT / "deploy" / "hrd-bot.service").read_text()
    assert "RestartPreventExitStatus=1 2 243\n" in unit, "refusals and a missing credential"
    assert "Restart=on-failure\n" in unit
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    copy = tmp_path / "hrd-bot.service"
    copy.write_text(unit.replace("/opt/hrd-bot/.venv/bin/hrd-bot", "/bin/true"))
    checked = subprocess.run(
        [analyze, "verify", str(copy)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stderr
    assert "hrd-bot.service" not in checked.stderr, checked.stderr
