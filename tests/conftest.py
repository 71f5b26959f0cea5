"""Shared fixtures: real content, a real SQLCipher file, the app, a fake transport and users."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from bot.app import App
from bot.content.library import Library
from bot.content.loader import load_library
from tests.fakes import FakeTransport, FakeUser
from tests.keys import TEST_KEY

__all__ = ["CONTENT", "TEST_KEY"]

pytest_plugins = (
    "tests.conftest_storage",  # first: tests.reporting imports it
    "tests.reporting",
    "tests.conftest_telegram",
    "tests.matrix.fixtures",
)

if TYPE_CHECKING:
    from tests.conftest_storage import OpenDatabase

ROOT = Path(__file__).resolve().parents[1]
CONTENT = Path(os.environ.get("HRD_BOT_CONTENT_DIR") or ROOT / "content")


@pytest.fixture(scope="session")
def library() -> Library:
    loaded, problems = load_library(CONTENT)
    assert loaded is not None, "\n".join(map(str, problems))
    return loaded


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "hrd-bot.db"


@pytest.fixture
async def app(open_database: OpenDatabase, library: Library) -> AsyncIterator[App]:
    db = await open_database()
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
