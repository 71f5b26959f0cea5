"""Log in once, then come back as the same device on every start.

A new device would lose every Megolm session ("No session found") and make people
see a new, unverified bot device. So the device id and access token, once known, are
kept in the bot's SQLCipher database (never in a plain file) and reused with
`restore_login`; a password login only happens when no usable token is kept, and it
asks the server for the kept device id.

A kept login is reused only for the device whose keys this data folder's store holds:
workers that share one database each sign in as a device of their own (the one in their
own folder), and a folder whose store was lost starts a new device rather than come back
as one whose keys it no longer has.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from nio import AsyncClient, LoginResponse, WhoamiResponse

from bot.config import ConfigError
from bot.transports.matrix.config import MatrixConfig
from bot.transports.port import Storage

__all__ = ["Login", "sign_in"]

log = logging.getLogger("hrd_bot.matrix.login")
SETTING = "matrix-login"
DEVICE_NAME = "hrd-bot"


@dataclass(frozen=True, slots=True)
class Login:
    user_id: str
    device_id: str
    access_token: str

    def __repr__(self) -> str:
        return "Login(***)"


async def _load(db: Storage) -> Login | None:
    raw = await db.read_setting(SETTING)
    if raw is None:
        return None
    data = json.loads(raw)
    return Login(str(data["user_id"]), str(data["device_id"]), str(data["access_token"]))


async def _save(db: Storage, login: Login) -> None:
    value = json.dumps(
        {"user_id": login.user_id, "device_id": login.device_id, "access_token": login.access_token}
    ).encode()
    await db.put_setting(SETTING, value)


async def _whoami(client: AsyncClient, token: str) -> str | None:
    """The device id behind `token`, or None when the server no longer accepts it."""
    client.access_token = token
    response: Any = await client.whoami()
    client.access_token = ""
    if isinstance(response, WhoamiResponse) and response.device_id:
        return str(response.device_id)
    return None


async def _password_login(
    client: AsyncClient, config: MatrixConfig, device_id: str | None
) -> Login:
    client.device_id = device_id
    response: Any = await client.login(password=config.password, device_name=DEVICE_NAME)
    if not isinstance(response, LoginResponse):
        raise ConfigError("Matrix login with MATRIX_PASSWORD was refused")
    log.info("logged in with a password (%s device)", "same" if device_id else "new")
    return Login(str(response.user_id), str(response.device_id), str(response.access_token))


async def _with_token(client: AsyncClient, config: MatrixConfig, saved: Login | None) -> Login:
    token = str(config.access_token)
    device = config.device_id
    if device is None and saved is not None and saved.access_token == token:
        device = saved.device_id
    device = device or await _whoami(client, token)
    if device is None:
        raise ConfigError("MATRIX_ACCESS_TOKEN was refused by the homeserver")
    return Login(config.user_id, device, token)


async def _kept(client: AsyncClient, config: MatrixConfig, saved: Login | None) -> Login | None:
    """The kept login when it is for this account and device and still accepted."""
    if saved is None or saved.user_id != config.user_id:
        return None
    if config.device_id and config.device_id != saved.device_id:
        return None
    return saved if await _whoami(client, saved.access_token) == saved.device_id else None


async def sign_in(
    client: AsyncClient, config: MatrixConfig, db: Storage, own_device: str | None
) -> Login:
    """Log `client` in as the device of this folder's store (`own_device`, or a first
    one) and load its encrypted store."""
    saved = await _load(db)
    mine = saved if saved is not None and saved.device_id == own_device else None
    if config.access_token:
        login = await _with_token(client, config, saved)
    elif (kept := await _kept(client, config, mine)) is not None:
        login = kept
    else:
        login = await _password_login(client, config, config.device_id or own_device)
    if login != saved:
        await _save(db, login)
    client.restore_login(login.user_id, login.device_id, login.access_token)
    return login
