"""Shared fixtures: real content, a real SQLCipher file, the app, a fake transport and users."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from bot.app import App
from bot.content.library import Library
from bot.content.loader import load_library
from bot.storage import Database, DbKey
from tests.fakes import FakeTransport, FakeUser

pytest_plugins = ("tests.reporting", "tests.conftest_telegram", "tests.matrix.fixtures")

ROOT = Path(__file__).resolve().parents[1]
CONTENT = Path(os.environ.get("HRD_BOT_CONTENT_DIR") or ROOT / "content")
TEST_KEY = DbKey("ab" * 32)


@pytest.fixture(scope="session")
def library() -> Library:
    loaded, problems = load_library(CONTENT)
    assert loaded is not None, "\n".join(map(str, problems))
    return loaded


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "hrd-bot.db"


@pytest.fixture
async def app(db_path: Path, library: Library) -> AsyncIterator[App]:
    db = await Database.open(db_path, TEST_KEY)
    opened = await App.open(db, library)
    try:
        yield opened
    finally:
        await opened.close()
        await opened.outbox.close()
        await db.close()


@pytest.fixture
def transport() -> FakeTransport:
    return FakeTransport()


@pytest.fixture
def make_user(app: App, transport: FakeTransport) -> Callable[..., FakeUser]:
    def make(platform_id: str = "1001", hint: str | None = "en", **kw: object) -> FakeUser:
        return FakeUser(app, transport, platform_id, hint, **kw)  # type: ignore[arg-type]

    return make


@pytest.fixture
async def user(make_user: Callable[..., FakeUser]) -> FakeUser:
    """A user who has chosen English and sits at the main menu."""
    person = make_user()
    await person.say("/start")
    await person.press("English")
    return person


def _hypothesis_profiles() -> None:
    """`ci` keeps the suite short; `HYPOTHESIS_PROFILE=long` runs 10,000 inputs per target."""
    from hypothesis import HealthCheck, settings

    quiet = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
    settings.register_profile("ci", max_examples=150, deadline=None, suppress_health_check=quiet)
    settings.register_profile(
        "long", max_examples=10_000, deadline=None, suppress_health_check=quiet
    )
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


_hypothesis_profiles()
