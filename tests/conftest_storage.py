"""The database a test runs on: a SQLCipher file, or a schema on a real PostgreSQL server.

A module that sets `pytestmark = pytest.mark.backends` runs each of its tests on both
(ids `sqlcipher` and `postgres`); every other test runs on SQLCipher. `open_database(name)`
opens the same database again under the same name, as a restarted bot would.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from bot.storage import Database, DbKey
from tests.keys import TEST_KEY
from tests.postgres_server import PgServer, fresh_schema, running_server

__all__ = ["BACKENDS", "TEST_KEY", "OpenDatabase"]

BACKENDS = ("sqlcipher", "postgres")
OpenDatabase = Callable[..., Awaitable[Database]]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "backends: run the module's tests on SQLCipher and PostgreSQL"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames and metafunc.definition.get_closest_marker("backends"):
        metafunc.parametrize("backend", BACKENDS, indirect=True)


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    return str(getattr(request, "param", "sqlcipher"))


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    with running_server() as server:
        yield server


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest) -> str | None:
    """The PostgreSQL URL of this test's own schema; None on SQLCipher."""
    if backend != "postgres":
        return None
    server: PgServer = request.getfixturevalue("pg_server")
    return server.schema_url(fresh_schema(server))


@pytest.fixture
def open_database(database_url: str | None, tmp_path: Path) -> OpenDatabase:
    async def open_(name: str = "hrd-bot", key: DbKey = TEST_KEY) -> Database:
        if database_url is None:
            return await Database.open(tmp_path / "data" / f"{name}.db", key)
        return await Database.open_postgres(database_url, key)

    return open_
