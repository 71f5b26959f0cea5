"""Files people send (`m.image`, `m.file`, `m.audio`, `m.video`): described, then fetched;
and files the bot sends, uploaded encrypted.

In an end-to-end encrypted room a client uploads a file encrypted (AES-CTR) and puts
its key, IV and SHA-256 into the event, which Megolm encrypts in turn: the homeserver
only ever holds ciphertext. The bot fetches at most `limit` bytes, whatever the
event or the server claims: a declared size over the limit is not downloaded at all
(the handlers then refuse the file with a clear message), and a download stops as
soon as it passes the limit. The bytes are checked and decrypted in memory only;
the handlers seal them at once. The file name and media type come from the sender,
so both are cleaned before they reach the sealed record's header lines.

The bot sends a file the same way a client does: encrypted here (in a worker thread),
uploaded as ciphertext without its name, the key travelling only inside the Megolm
encrypted event (`render.file_content`).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlparse

from aiohttp import ClientError
from nio import UploadResponse
from nio.api import MATRIX_MEDIA_API_PATH
from nio.crypto.attachments import decrypt_attachment, encrypt_attachment
from nio.exceptions import EncryptionError

from bot.files import safe_media_type, safe_name
from bot.model import Attachment

__all__ = ["FILE_TYPES", "FileKey", "Media", "describe", "fetch", "upload_encrypted"]

log = logging.getLogger("hrd_bot.matrix.media")

FILE_TYPES = frozenset({"m.image", "m.file", "m.audio", "m.video"})
DEFAULT_NAME = "file"
DOWNLOAD_SECONDS = 60.0
UPLOAD_SECONDS = 120.0
"""nio uploads without a time limit: a hung homeserver must not hold up the alerts."""
CHUNK = 64 * 1024


@dataclass(frozen=True, slots=True)
class FileKey:
    """What opens an encrypted upload (the event's `file` object)."""

    key: str
    sha256: str
    iv: str

    def __repr__(self) -> str:
        return "FileKey(***)"


@dataclass(frozen=True, slots=True)
class Media:
    """Where a sent file lives and what the sender says about it; `size` may be absent or false."""

    url: str
    name: str
    media_type: str
    size: int | None
    secret: FileKey | None = None

    def __repr__(self) -> str:
        return f"Media(size={self.size}, encrypted={self.secret is not None})"


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _name(content: dict[str, Any]) -> str:
    raw = _text(content.get("filename")) or _text(content.get("body"))
    return safe_name(raw, DEFAULT_NAME)


def _media_type(info: dict[str, Any], file: dict[str, Any]) -> str:
    return safe_media_type(_text(info.get("mimetype")) or _text(file.get("mimetype")))


def _size(info: dict[str, Any]) -> int | None:
    size = info.get("size")
    return size if isinstance(size, int) and not isinstance(size, bool) and size >= 0 else None


def _secret(file: dict[str, Any]) -> FileKey | None:
    key, hashes = file.get("key"), file.get("hashes")
    k = _text(key.get("k")) if isinstance(key, dict) else None
    sha256 = _text(hashes.get("sha256")) if isinstance(hashes, dict) else None
    iv = _text(file.get("iv"))
    return FileKey(k, sha256, iv) if k and sha256 and iv else None


def describe(content: dict[str, Any]) -> Media | None:
    """The file in a message content, or None when it is not a well-formed file message."""
    if content.get("msgtype") not in FILE_TYPES:
        return None
    info = content.get("info")
    info = info if isinstance(info, dict) else {}
    file = content.get("file")
    if isinstance(file, dict):
        url, secret = _text(file.get("url")), _secret(file)
        if url is None or secret is None:
            return None
    else:
        file, url, secret = {}, _text(content.get("url")), None
        if url is None:
            return None
    return Media(url, _name(content), _media_type(info, file), _size(info), secret)


class _TooBig(Exception):
    """The download passed the limit and was stopped."""


def _path(url: str) -> str | None:
    """The authenticated media download path for an `mxc://server/id` URL."""
    parsed = urlparse(url)
    media_id = parsed.path.strip("/")
    if parsed.scheme != "mxc" or not parsed.netloc or not media_id or "/" in media_id:
        return None
    server, media = quote(parsed.netloc, safe=""), quote(media_id, safe="")
    return f"{MATRIX_MEDIA_API_PATH}/download/{server}/{media}?allow_remote=true"


async def _download(client: Any, path: str, limit: int) -> bytes | None:
    """At most `limit` bytes of the body (`_TooBig` past it), or None when the server fails."""
    headers = {"Authorization": f"Bearer {client.access_token}"}
    async with asyncio.timeout(DOWNLOAD_SECONDS):
        response = await client.send("GET", path, headers=headers, timeout=DOWNLOAD_SECONDS)
        async with response:
            if response.status != 200:
                return None
            if response.content_length is not None and response.content_length > limit:
                raise _TooBig
            chunks, total = [], 0
            async for chunk in response.content.iter_chunked(CHUNK):
                total += len(chunk)
                if total > limit:
                    raise _TooBig
                chunks.append(chunk)
            return b"".join(chunks)


def _open(body: bytes, secret: FileKey) -> bytes:
    return bytes(decrypt_attachment(body, secret.key, secret.sha256, secret.iv))


async def fetch(client: Any, media: Media, limit: int) -> Attachment | None:
    """The file as an `Attachment` (without data when over `limit`), or None when it cannot
    be had: the server failed, or the bytes do not match the event's hash and key."""
    too_big = Attachment(media.name, media.media_type, max(media.size or 0, limit + 1))
    if media.size is not None and media.size > limit:
        return too_big
    path = _path(media.url)
    if path is None:
        return None
    try:
        body = await _download(client, path, limit)
    except _TooBig:
        return too_big
    except (ClientError, TimeoutError):
        return None
    if body is None:
        return None
    if media.secret is not None:
        try:
            body = await asyncio.to_thread(_open, body, media.secret)
        except (EncryptionError, ValueError, KeyError):
            return None
    return Attachment(media.name, media.media_type, len(body), body)


async def upload_encrypted(client: Any, data: bytes) -> tuple[str, dict[str, Any]] | None:
    """Upload `data` encrypted: its `mxc://` URL and what opens it (the event's `file`
    object without the URL), or None when the homeserver refused the upload."""
    ciphertext, keys = await asyncio.to_thread(encrypt_attachment, data)
    try:
        async with asyncio.timeout(UPLOAD_SECONDS):
            response, _ = await client.upload(
                lambda _rate_limited, _timed_out: ciphertext,
                content_type="application/octet-stream",
                filesize=len(ciphertext),
            )
    except (ClientError, TimeoutError):
        log.warning("a file upload failed (the homeserver could not be reached)")
        return None
    if not isinstance(response, UploadResponse):
        log.warning("a file upload failed (%s)", getattr(response, "status_code", "?"))
        return None
    return str(response.content_uri), keys
