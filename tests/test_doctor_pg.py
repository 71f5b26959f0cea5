"""`hrd-bot doctor` on a PostgreSQL deployment: TLS once the server is elsewhere, no
password inline, and the team's keys counted read-only on a real PostgreSQL server."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from bot.cli import doctor
from bot.cli.doctor import Finding
from bot.cli.doctor_pg import connection
from bot.config import Settings
from bot.storage import Database
from tests.conftest import TEST_KEY
from tests.postgres_server import PgServer, fresh_schema

PASSWORD = "CANARY-PW-81f0"


@pytest.fixture(autouse=True)
def quiet_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(doctor, "swap", lambda: Finding("ok", "swap (test)"))
    monkeypatch.setattr(doctor, "clock", lambda: Finding("ok", "clock (test)"))


def _verdicts(url: str, **env: str) -> list[tuple[str, str]]:
    return [(f.verdict, f.what) for f in connection(url, env)]


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://hrdbot@127.0.0.1/hrd",
        "postgresql://hrdbot@[::1]:5433/hrd",
        "postgresql://hrdbot@localhost/hrd",
        "postgresql:///hrd?host=/run/postgresql",
        "dbname=hrd user=hrdbot",
    ],
)
def test_a_server_on_this_host_needs_no_tls(url: str) -> None:
    assert _verdicts(url) == [("ok", "PostgreSQL on this host (loopback or Unix socket)")]


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://hrdbot@db.example.org/hrd",
        "postgresql://hrdbot@10.0.0.5/hrd?sslmode=prefer",
        "postgresql://hrdbot@127.0.0.1,10.0.0.5/hrd?sslmode=allow",
        "host=127.0.0.1 hostaddr=192.0.2.7 dbname=hrd sslmode=disable",
    ],
)
def test_a_server_elsewhere_without_tls_is_unsafe(url: str) -> None:
    [(verdict, what)] = _verdicts(url)
    assert verdict == "unsafe"
    assert what.startswith("PostgreSQL is reached over the network without TLS")


def test_tls_required_in_the_url_or_by_pgsslmode_passes() -> None:
    remote = "postgresql://hrdbot@db.example.org/hrd"
    for mode in ("require", "verify-ca", "verify-full"):
        assert _verdicts(f"{remote}?sslmode={mode}")[0][0] == "ok"
    assert _verdicts(remote, PGSSLMODE="verify-full")[0][0] == "ok"
    assert _verdicts(remote, PGHOST="/run/postgresql")[0][0] == "unsafe", "the URL's host wins"


def test_a_matrix_token_or_device_shared_by_the_workers_is_unsafe() -> None:
    local = "postgresql://hrdbot@127.0.0.1/hrd"
    assert [v for v, _ in _verdicts(local, MATRIX_PASSWORD="x")] == ["ok"]
    for name in ("MATRIX_ACCESS_TOKEN", "MATRIX_DEVICE_ID_FILE"):
        found = connection(local, {name: "tok-4f2e"})
        assert [(f.verdict, f.what) for f in found][1] == (
            "unsafe",
            "Matrix is tied to one device for every worker",
        )
        assert "MATRIX_PASSWORD" in found[1].todo
        assert "tok-4f2e" not in found[1].what + found[1].todo


def test_telegram_polled_by_several_workers_is_unsafe() -> None:
    local = "postgresql://hrdbot@127.0.0.1/hrd"
    hooked = {"TELEGRAM_BOT_TOKEN": "t", "TELEGRAM_WEBHOOK_URL": "https://bot.example/h"}
    assert [v for v, _ in _verdicts(local, **hooked)] == ["ok"]
    found = connection(local, {"TELEGRAM_BOT_TOKEN": "t"})
    assert [(f.verdict, f.what) for f in found][1] == (
        "unsafe",
        "Telegram is polled, which only one worker may do",
    )


def test_a_password_inline_is_unsafe_and_never_printed() -> None:
    found = connection(f"postgresql://hrdbot:{PASSWORD}@127.0.0.1/hrd", {})
    assert [(f.verdict, f.what) for f in found][1] == (
        "unsafe",
        "HRD_BOT_DATABASE_URL carries the database password",
    )
    assert "PGPASSFILE" in found[1].todo
    assert not any(PASSWORD in f.line() for f in found)
    assert connection("postgresql://hrdbot@127.0.0.1/hrd?password=x", {})[1].verdict == "unsafe"
    [unreadable] = connection("postgresql://hrdbot@127.0.0.1/hrd?nonsense=1", {})
    assert unreadable.what == "HRD_BOT_DATABASE_URL cannot be read"


def _settings(tmp_path: Path, url: str) -> Settings:
    data = tmp_path / "data"
    data.mkdir(mode=0o700, exist_ok=True)
    creds = tmp_path / "creds"
    creds.mkdir(exist_ok=True)
    (creds / "HRD_BOT_DB_KEY").write_text(TEST_KEY.value)
    env = {
        "HRD_BOT_DATA_DIR": str(data),
        "CREDENTIALS_DIRECTORY": str(creds),
        "HRD_BOT_DATABASE_URL": url,
    }
    return Settings.from_env(env)


def _lines(settings: Settings) -> list[str]:
    return [finding.line() for finding in doctor.examine(settings)]


async def test_the_team_is_counted_on_postgresql_without_writing(
    tmp_path: Path, pg_server: PgServer
) -> None:
    url = pg_server.schema_url(fresh_schema(pg_server))
    lines = _lines(_settings(tmp_path, url))
    assert any(line.startswith("UNSAFE  no database yet") for line in lines), lines
    with psycopg.connect(url) as conn:
        made = conn.execute("SELECT to_regclass('hrd_bot_meta') IS NOT NULL").fetchone()
    assert made == (False,), "the doctor created nothing"

    await (await Database.open_postgres(url, TEST_KEY)).close()
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO staff (label, identities, public_key, fingerprint, added_at)"
            " VALUES ('sealed', 'sealed', 'pk', 'fp', 0)"
        )
        conn.execute(
            "INSERT INTO org_keys (name, public_key, fingerprint, set_at)"
            " VALUES ('recovery', 'pk', 'fp', 0)"
        )
    lines = _lines(_settings(tmp_path, url))
    assert "ok      PostgreSQL on this host (loopback or Unix socket)" in lines
    assert "ok      1 active staff key(s)" in lines and "ok      a recovery key is set" in lines

    settings = _settings(tmp_path, url)
    (tmp_path / "creds" / "HRD_BOT_DB_KEY").write_text("cd" * 32)  # another key
    lines = _lines(settings)
    assert any(
        "the database key does not open the PostgreSQL database" in line for line in lines
    ), lines


async def test_an_unreachable_server_is_not_checked_and_not_named(tmp_path: Path) -> None:
    url = f"postgresql://hrdbot:{PASSWORD}@127.0.0.1:1/hrd?connect_timeout=2"
    lines = _lines(_settings(tmp_path, url))
    assert any("not checked: PostgreSQL cannot be reached" in line for line in lines), lines
    assert any(line.startswith("UNSAFE  HRD_BOT_DATABASE_URL carries") for line in lines)
    assert not any(PASSWORD in line or "127.0.0.1" in line for line in lines)
