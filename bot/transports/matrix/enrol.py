"""A worker's Matrix device, made and published at start, before it ever leads.

With several workers only the leader syncs; each leads as a device of its own. A device
that first appears when its worker takes over is one people's clients never shared room
keys with: everything they write next is unreadable to it until their clients notice
it. So every worker signs in at start (the kept login of its own folder's device, as
`login` does) and uploads its device keys and one-time keys, then closes the client:
clients list the device and send it room keys, which wait on the homeserver until it
leads. No sync and nothing sent here. A failure is logged and the worker goes on: it
enrols when it first leads, as a single process does. Nothing is enrolled with a fixed
access token or device id: that device may be another worker's, whose published keys
this folder's would replace.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from nio import AsyncClient, AsyncClientConfig, KeysUploadResponse

from bot.transports.matrix.config import MatrixConfig
from bot.transports.matrix.login import sign_in
from bot.transports.matrix.store import STORE_FILE, EncryptedStore, check_passphrase
from bot.transports.port import Storage

__all__ = ["ENROL_SECONDS", "enrol", "new_client"]

log = logging.getLogger("hrd_bot.matrix.enrol")
ENROL_SECONDS = 60.0
"""How long the enrolment may take: a leader waits for it before it runs Matrix."""


def new_client(config: MatrixConfig) -> AsyncClient:
    """A client of the bot account over this folder's encrypted device store."""
    return AsyncClient(
        config.homeserver,
        config.user_id,
        store_path=str(config.store_dir),
        config=AsyncClientConfig(
            encryption_enabled=True,
            store=EncryptedStore,
            store_name=STORE_FILE,
            pickle_key=config.store_passphrase,
            store_sync_tokens=False,
        ),
    )


async def enrol(config: MatrixConfig, db: Storage) -> bool:
    """Sign in as this folder's device and publish its keys; True once they are on the
    homeserver (now or before). Never raises: the worker runs on without it."""
    try:
        async with asyncio.timeout(ENROL_SECONDS):
            return await _enrol(config, db)
    except Exception as exc:
        log.warning("could not enrol this worker's Matrix device (%s)", type(exc).__name__)
        return False


async def _enrol(config: MatrixConfig, db: Storage) -> bool:
    if config.access_token or config.device_id:  # one device for all: `hrd-bot doctor` says so
        log.warning("not enrolled: a fixed Matrix token or device id names one device")
        return False
    own = await asyncio.to_thread(
        check_passphrase, config.store_dir, config.store_passphrase, config.user_id
    )
    client: Any = new_client(config)
    try:
        await sign_in(client, config, db, own)
        if not client.should_upload_keys:
            log.info("this worker's Matrix device was enrolled before")
            return True
        response = await client.keys_upload()
        if not isinstance(response, KeysUploadResponse):
            log.warning("the homeserver refused this worker's Matrix device keys")
            return False
        log.info("enrolled this worker's Matrix device")
        return True
    finally:
        await client.close()
        if isinstance(client.store, EncryptedStore):
            await client.store.close()
