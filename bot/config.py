"""Every setting in one place, typed and checked at start (pydantic-settings).

A setting comes from the environment. A secret may instead come from the file named by
`NAME_FILE`, or from a systemd credential named `NAME` (`$CREDENTIALS_DIRECTORY/NAME`),
in that order. An unknown `HRD_BOT_*`, `TELEGRAM_*` or `MATRIX_*` variable is refused,
since a misspelt one would otherwise be ignored without a word.
"""

from __future__ import annotations

import difflib
import os
import stat
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from bot.content.languages import is_tag
from bot.delivery.policy import RetryPolicy
from bot.errors import OperatorError
from bot.health.address import Address, parse_address
from bot.model import ChatRef
from bot.safety.ladder import Ladder, Ladders

__all__ = [
    "CHECKOUT",
    "CREDENTIALS_DIRECTORY",
    "KNOWN",
    "MAX_SECRET_FILE",
    "PLATFORMS",
    "PREFIXES",
    "SECRETS",
    "ConfigError",
    "Declared",
    "Level",
    "Passphrase",
    "Seconds",
    "Secret",
    "Settings",
    "StaffActions",
    "credential_path",
    "parse_chats",
    "secret",
]

CHECKOUT = Path(__file__).resolve().parents[1]
PREFIXES = ("HRD_BOT_", "TELEGRAM_", "MATRIX_")
PLATFORMS = ("telegram", "matrix", "console")
CREDENTIALS_DIRECTORY = "CREDENTIALS_DIRECTORY"
MAX_SECRET_FILE = 64 * 1024


class ConfigError(OperatorError):
    """A setting is missing or malformed; the message names it and is safe to print."""


def credential_path(env: Mapping[str, str], name: str) -> Path | None:
    """The systemd credential `name`, when the service manager passed one."""
    folder = env.get(CREDENTIALS_DIRECTORY, "").strip()
    if not folder:
        return None
    path = Path(folder) / name
    return path if path.is_file() else None


def _read_secret(path: Path, source: str, *, raw: bool) -> str | None:
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_SECRET_FILE:
            raise ConfigError(f"{source}: {path} is not a small regular file")
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or "not UTF-8 text"
        raise ConfigError(f"{source}: cannot read {path}: {reason}") from None
    value = text.removesuffix("\n") if raw else text.strip()
    return value or None


def secret(env: Mapping[str, str], name: str, *, raw: bool = False) -> str | None:
    """`NAME`, else the file named by `NAME_FILE`, else the systemd credential `NAME`.

    `raw` keeps spaces (passphrases): only one trailing newline is removed from a file.
    """
    value = env.get(name, "")
    if value.strip():
        return value if raw else value.strip()
    if path := env.get(f"{name}_FILE", "").strip():
        return _read_secret(Path(path), f"{name}_FILE", raw=raw)
    if credential := credential_path(env, name):
        return _read_secret(credential, f"credential {name}", raw=raw)
    return None


def _upper(value: object) -> object:
    return value.upper() if isinstance(value, str) else value


def _language_tag(value: str) -> str:
    if not is_tag(value):
        raise ValueError("must be a language code such as 'en', 'fr' or 'zh-Hant'")
    return value


def parse_chats(name: str, raw: str) -> tuple[ChatRef, ...]:
    """`platform:address` entries, comma-separated; the platform must be one we run."""
    found = []
    for entry in filter(None, (e.strip() for e in raw.split(","))):
        platform, _, address = entry.partition(":")
        if not platform or not address:
            raise ValueError(f"{entry!r} is not platform:address")
        if platform not in PLATFORMS:
            raise ValueError(
                f"unknown platform {platform!r} in {entry!r} (use {', '.join(PLATFORMS)})"
            )
        found.append(ChatRef(platform, address, private=False, encrypted=platform == "matrix"))
    return tuple(found)


Level = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
Seconds = Annotated[int, Field(ge=0, le=10**9)]  # about 31 years: within timedelta
Secret = Annotated[SecretStr | None, Field(json_schema_extra={"secret": True})]
Passphrase = Annotated[SecretStr | None, Field(json_schema_extra={"secret": "raw"})]
StaffActions = Literal["triage", "all"]
"""Staff commands a Telegram group may give (Telegram cannot show the sending device):
`triage` lists, shows, acknowledges and claims cases; `all` (an operator's choice) all."""


class Declared(BaseSettings):
    """Every variable the bot reads, with its type. Field names are the variable names."""

    model_config = SettingsConfigDict(case_sensitive=True, extra="forbid", frozen=True)

    HRD_BOT_DATA_DIR: Path = CHECKOUT / "data"
    HRD_BOT_CONTENT_DIR: Path = CHECKOUT / "content"
    HRD_BOT_SENSITIVE_TTL: Seconds = 3600
    HRD_BOT_DELIVERY_HOURS: Annotated[float, Field(gt=0, le=24 * 30)] = 12.0
    HRD_BOT_DELIVERY_FIRST_RETRY: Annotated[float, Field(gt=0, le=3600)] = 2.0
    HRD_BOT_LOG_LEVEL: Annotated[Level, BeforeValidator(_upper)] = "INFO"
    HRD_BOT_STAFF_ROOMS: str = ""
    HRD_BOT_ONCALL: str = ""
    HRD_BOT_LEADS: str = ""
    HRD_BOT_ESCALATION_CRITICAL: str = "15,30,every 30"
    HRD_BOT_ESCALATION_HIGH: str = "60,90"
    HRD_BOT_ESCALATION_NORMAL: str = "480"
    HRD_BOT_TELEGRAM_STAFF_ACTIONS: StaffActions = "triage"
    HRD_BOT_STAFF_LANGUAGE: Annotated[str, AfterValidator(_language_tag)] = "en"
    HRD_BOT_HEALTH_PUBLIC: Literal["0", "1"] = "0"  # before the address: its check reads it
    HRD_BOT_HEALTH_ADDRESS: str = ""
    HRD_BOT_DB_KEY: Secret = None  # read by bot.storage.dbkey (which checks the file's mode)
    HRD_BOT_DATABASE_URL: Secret = None  # PostgreSQL for several workers; may hold a password
    HRD_BOT_KEY_PASSPHRASE: Passphrase = None  # read by bot.cli.access
    HRD_BOT_INSECURE_FAST_KDF: Literal["0", "1"] = "0"  # read by bot.crypto.keyfile
    TELEGRAM_BOT_TOKEN: Secret = None
    TELEGRAM_API_BASE_URL: str = ""
    TELEGRAM_WEBHOOK_URL: str = ""
    TELEGRAM_WEBHOOK_SECRET: Secret = None
    TELEGRAM_WEBHOOK_LISTEN: str = ""
    TELEGRAM_WEBHOOK_PORT: Annotated[int, Field(gt=0, lt=65536)] = 8443
    TELEGRAM_POLL_TIMEOUT: Seconds = 30
    TELEGRAM_SWEEP_INTERVAL: Seconds = 30
    TELEGRAM_MAX_RATE: Annotated[int, Field(ge=0, le=10**6)] = 30
    MATRIX_HOMESERVER: str = ""
    MATRIX_USER_ID: str = ""
    MATRIX_ACCESS_TOKEN: Secret = None
    MATRIX_PASSWORD: Secret = None
    MATRIX_DEVICE_ID: str = ""
    MATRIX_STORE_PASSPHRASE: Secret = None
    MATRIX_STAFF_USER_IDS: str = ""
    MATRIX_STAFF_DEVICE_KEYS: str = ""

    @field_validator("HRD_BOT_STAFF_ROOMS", "HRD_BOT_ONCALL", "HRD_BOT_LEADS")
    @classmethod
    def _chats(cls, value: str, info: ValidationInfo) -> str:
        parse_chats(str(info.field_name), value)
        return value

    @field_validator(
        "HRD_BOT_ESCALATION_CRITICAL", "HRD_BOT_ESCALATION_HIGH", "HRD_BOT_ESCALATION_NORMAL"
    )
    @classmethod
    def _ladder(cls, value: str) -> str:
        Ladder.parse(value)
        return value

    @field_validator("HRD_BOT_HEALTH_ADDRESS")
    @classmethod
    def _health(cls, value: str, info: ValidationInfo) -> str:
        if value.strip():
            parse_address(value, public=info.data.get("HRD_BOT_HEALTH_PUBLIC") == "1")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Values come only from `from_env`'s mapping (resolved there, given as arguments)."""
        return (init_settings,)


def _secret_kind(field: FieldInfo) -> str | None:
    extra = field.json_schema_extra
    kind = extra.get("secret") if isinstance(extra, dict) else None
    return None if kind is None else "raw" if kind == "raw" else "plain"


SECRETS = {name: kind for name, f in Declared.model_fields.items() if (kind := _secret_kind(f))}
KNOWN = frozenset(Declared.model_fields) | {f"{name}_FILE" for name in SECRETS}


def _unknown(env: Mapping[str, str]) -> ConfigError | None:
    for name in sorted(env):
        if name.startswith(PREFIXES) and name not in KNOWN:
            close = difflib.get_close_matches(name, sorted(KNOWN), n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]}?" if close else " (see README, Configuration)"
            return ConfigError(f"unknown setting {name}{hint}")
    return None


def _values(env: Mapping[str, str]) -> dict[str, Any]:
    """The declared variables that are set (empty means unset), secrets resolved."""
    values: dict[str, Any] = {}
    for name in Declared.model_fields:
        if name in SECRETS:
            found = secret(env, name, raw=SECRETS[name] == "raw")
        else:
            found = env.get(name, "").strip() or None
        if found is not None:
            values[name] = found
    return values


def _one_line(error: ValidationError) -> ConfigError:
    parts = []
    for problem in error.errors(include_url=False):
        name = ".".join(str(part) for part in problem["loc"])
        message, kind = problem["msg"], problem["type"]
        if kind == "value_error":  # our own messages already quote the value
            parts.append(f"{name}: {message.removeprefix('Value error, ')}")
            continue
        if kind == "literal_error":
            message = f"must be one of {problem['ctx']['expected']}"
        elif kind == "int_parsing":
            message = "must be a whole number"
        given = problem.get("input")
        shown = "" if name in SECRETS or not isinstance(given, str) else f", got {given!r}"
        parts.append(f"{name}: {message}{shown}")
    return ConfigError("; ".join(parts))


class Settings:
    """What the bot needs to start, checked once; the rest of the code takes this object."""

    __slots__ = ("declared", "env")

    def __init__(self, env: Mapping[str, str], declared: Declared) -> None:
        self.env = env
        self.declared = declared

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Raises ConfigError (one line) on an unknown variable or a bad value."""
        env = dict(os.environ if env is None else env)
        if unknown := _unknown(env):
            raise unknown
        try:
            declared = Declared(**_values(env))
        except ValidationError as exc:
            raise _one_line(exc) from None
        return cls(env, declared)

    @property
    def data_dir(self) -> Path:
        return self.declared.HRD_BOT_DATA_DIR

    @property
    def content_dir(self) -> Path:
        return self.declared.HRD_BOT_CONTENT_DIR

    @property
    def sensitive_ttl(self) -> timedelta | None:
        seconds = self.declared.HRD_BOT_SENSITIVE_TTL
        return timedelta(seconds=seconds) if seconds > 0 else None

    @property
    def delivery(self) -> RetryPolicy:
        """How long and how soon the outbox retries (`bot.delivery`)."""
        declared = self.declared
        first = declared.HRD_BOT_DELIVERY_FIRST_RETRY
        return RetryPolicy(window=declared.HRD_BOT_DELIVERY_HOURS * 3600, first=first)

    @property
    def telegram_staff_actions(self) -> StaffActions:
        """See `handlers.staff.StaffScope`: what a platform without device identity may do."""
        return self.declared.HRD_BOT_TELEGRAM_STAFF_ACTIONS

    @property
    def staff_language(self) -> str:
        """Staff rooms' language; each member may choose their own (`bot.cases.staff_languages`)."""
        return self.declared.HRD_BOT_STAFF_LANGUAGE

    @property
    def health_address(self) -> Address | None:
        """Where the health and metrics endpoint listens (`bot.health`); None: it is off."""
        declared = self.declared
        if not declared.HRD_BOT_HEALTH_ADDRESS:
            return None
        public = declared.HRD_BOT_HEALTH_PUBLIC == "1"
        return parse_address(declared.HRD_BOT_HEALTH_ADDRESS, public=public)

    @property
    def log_level(self) -> str:
        return str(self.declared.HRD_BOT_LOG_LEVEL)

    @property
    def database_path(self) -> Path:
        return self.data_dir / "hrd-bot.db"

    @property
    def database_url(self) -> str | None:
        """PostgreSQL shared by several workers (`bot.cluster`); None: the SQLCipher file."""
        return self.secret("HRD_BOT_DATABASE_URL")

    def chats(
        self, name: Literal["HRD_BOT_STAFF_ROOMS", "HRD_BOT_ONCALL", "HRD_BOT_LEADS"]
    ) -> tuple[ChatRef, ...]:
        """Staff rooms, the on-call list or the leads, already checked by `from_env`."""
        return parse_chats(name, getattr(self.declared, name))

    @property
    def ladders(self) -> Ladders:
        """When an unacknowledged case reaches on-call and leads (`bot.safety.ladder`)."""
        declared = self.declared
        return Ladders(
            critical=Ladder.parse(declared.HRD_BOT_ESCALATION_CRITICAL),
            high=Ladder.parse(declared.HRD_BOT_ESCALATION_HIGH),
            normal=Ladder.parse(declared.HRD_BOT_ESCALATION_NORMAL),
        )

    def secret(self, name: str) -> str | None:
        """A declared secret, from whichever of its three sources gave it."""
        if name not in SECRETS:
            raise KeyError(f"{name} is not a declared secret")
        value: SecretStr | None = getattr(self.declared, name)
        return None if value is None else value.get_secret_value()

    def __repr__(self) -> str:
        return f"Settings(data_dir={self.data_dir}, content_dir={self.content_dir})"
