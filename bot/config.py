"""Every setting in one place, read from the environment (secrets also from `<NAME>_FILE`)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from bot.model import ChatRef

CHECKOUT = Path(__file__).resolve().parents[1]


class ConfigError(Exception):
    """A setting is missing or malformed; the message names it and is safe to print."""


def secret(env: Mapping[str, str], name: str) -> str | None:
    """`NAME` from the environment, or the contents of the file named by `NAME_FILE`."""
    if value := env.get(name, "").strip():
        return value
    if path := env.get(f"{name}_FILE", "").strip():
        try:
            return Path(path).read_text(encoding="utf-8").strip() or None
        except OSError as exc:
            raise ConfigError(f"{name}_FILE: cannot read {path}: {exc.strerror}") from None
    return None


def _seconds(env: Mapping[str, str], name: str, default: int) -> timedelta | None:
    raw = env.get(name, "").strip()
    try:
        value = int(raw) if raw else default
    except ValueError:
        raise ConfigError(f"{name} must be a whole number of seconds, got {raw!r}") from None
    return timedelta(seconds=value) if value > 0 else None


@dataclass(frozen=True, slots=True)
class Settings:
    """What the bot needs to start; `from_env` documents every variable it reads."""

    env: Mapping[str, str]
    data_dir: Path
    content_dir: Path
    sensitive_ttl: timedelta | None
    log_level: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        return cls(
            env=env,
            data_dir=Path(env.get("HRD_BOT_DATA_DIR") or CHECKOUT / "data"),
            content_dir=Path(env.get("HRD_BOT_CONTENT_DIR") or CHECKOUT / "content"),
            sensitive_ttl=_seconds(env, "HRD_BOT_SENSITIVE_TTL", 3600),
            log_level=env.get("HRD_BOT_LOG_LEVEL", "INFO").upper(),
        )

    def chats(self, name: str) -> tuple[ChatRef, ...]:
        """`platform:address` entries, comma-separated: staff rooms, the on-call list."""
        found = []
        for entry in filter(None, (e.strip() for e in self.env.get(name, "").split(","))):
            platform, _, address = entry.partition(":")
            if not platform or not address:
                raise ConfigError(f"{name}: {entry!r} is not platform:address")
            found.append(ChatRef(platform, address, private=False, encrypted=platform == "matrix"))
        return tuple(found)

    @property
    def database_path(self) -> Path:
        return self.data_dir / "hrd-bot.db"

    def secret(self, name: str) -> str | None:
        return secret(self.env, name)

    def __repr__(self) -> str:
        return f"Settings(data_dir={self.data_dir}, content_dir={self.content_dir})"
