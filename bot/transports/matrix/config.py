"""The Matrix settings, read from the environment (secrets also from `<NAME>_FILE`).

- `MATRIX_HOMESERVER`: base URL of the homeserver; the transport starts only when set.
- `MATRIX_USER_ID`: the bot's full user id.
- `MATRIX_ACCESS_TOKEN` or `MATRIX_PASSWORD`: one of them. After a password login the
  token and device id are kept in the encrypted database, never in a plain file.
- `MATRIX_DEVICE_ID`: optional; else the one kept from an earlier start, else the server's.
- `MATRIX_STORE_PASSPHRASE`: required; encrypts the whole end-to-end key store.
- `MATRIX_STAFF_USER_IDS`: comma-separated staff accounts, never trusted on first use.
- `MATRIX_STAFF_DEVICE_KEYS`: comma-separated ed25519 keys of staff devices, checked
  out of band; only these staff devices receive room keys, and only their encrypted
  messages are obeyed as staff commands (`trust.sent_from_listed_device`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bot.config import ConfigError, Settings

__all__ = ["MatrixConfig"]


def _items(raw: str) -> frozenset[str]:
    return frozenset(item.strip() for item in raw.split(",") if item.strip())


@dataclass(frozen=True, slots=True)
class MatrixConfig:
    """Everything the transport needs to log in; secrets are never shown by `repr`."""

    homeserver: str
    user_id: str
    store_dir: Path
    store_passphrase: str
    access_token: str | None = None
    password: str | None = None
    device_id: str | None = None
    staff_user_ids: frozenset[str] = frozenset()
    staff_device_keys: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if not self.homeserver.startswith(("https://", "http://")):
            raise ConfigError("MATRIX_HOMESERVER must be an http(s) URL")
        if not self.user_id.startswith("@") or ":" not in self.user_id:
            raise ConfigError("MATRIX_USER_ID must look like @name:server")
        if not (self.access_token or self.password):
            raise ConfigError("set MATRIX_ACCESS_TOKEN or MATRIX_PASSWORD (or their _FILE)")
        if not self.store_passphrase:
            raise ConfigError(
                "MATRIX_STORE_PASSPHRASE (or _FILE) is empty: the Matrix key store "
                "must be encrypted, so the bot did not start"
            )

    @classmethod
    def from_settings(cls, settings: Settings) -> MatrixConfig:
        env = settings.env
        return cls(
            homeserver=env.get("MATRIX_HOMESERVER", "").strip().rstrip("/"),
            user_id=env.get("MATRIX_USER_ID", "").strip(),
            store_dir=settings.data_dir / "matrix",
            store_passphrase=settings.secret("MATRIX_STORE_PASSPHRASE") or "",
            access_token=settings.secret("MATRIX_ACCESS_TOKEN"),
            password=settings.secret("MATRIX_PASSWORD"),
            device_id=env.get("MATRIX_DEVICE_ID", "").strip() or None,
            staff_user_ids=_items(env.get("MATRIX_STAFF_USER_IDS", "")),
            staff_device_keys=_items(env.get("MATRIX_STAFF_DEVICE_KEYS", "")),
        )

    def __repr__(self) -> str:
        return f"MatrixConfig(store_dir={self.store_dir})"
