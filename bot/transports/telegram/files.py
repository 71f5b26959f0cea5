"""Files sent in a private chat (photo, document, video, audio, voice), fetched within a limit.

Telegram tells the bot a file's size (`file_size`) with the message and again in
`getFile`; a file over the limit, or of unknown size, is not downloaded at all: the
handlers get it without data and refuse it with a clear message. Only then is the
file fetched, through python-telegram-bot (`getFile`, then a GET on the file URL);
the bytes stay in memory and the handlers seal them at once. The file name and media
type come from the sender, so both are cleaned before they reach the sealed record's
header lines ("media_type\\nname\\n").
"""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass

from telegram import Bot, Message
from telegram.error import TelegramError

from bot.model import Attachment

__all__ = ["Media", "describe", "fetch"]

log = logging.getLogger("hrd_bot.telegram")
DEFAULT_TYPE = "application/octet-stream"
NAME_CHARS = 120
DOWNLOAD_SECONDS = 120.0
_MEDIA_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,63}$")


@dataclass(frozen=True, slots=True)
class Media:
    """A file in a message, as Telegram describes it; `size` None when Telegram did not say."""

    file_id: str
    name: str
    media_type: str
    size: int | None

    def __repr__(self) -> str:
        return f"Media(size={self.size})"


def _name(raw: str | None, default: str) -> str:
    base = re.split(r"[/\\]", raw or "")[-1]
    kept = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C").strip()
    return kept[:NAME_CHARS] or default


def _media_type(raw: str | None, default: str) -> str:
    cleaned = (raw or "").strip().lower()
    return cleaned if _MEDIA_TYPE.match(cleaned) else default


def describe(msg: Message) -> Media | None:
    """The file a message carries, or None (stickers, locations, contacts are not files
    a report can hold). Of a photo's sizes, the largest: the one a person sees."""
    if msg.photo:
        photo = max(msg.photo, key=lambda size: size.width * size.height)
        return Media(photo.file_id, "photo.jpg", "image/jpeg", photo.file_size)
    if msg.document is not None:
        document = msg.document
        name = _name(document.file_name, "file")
        kind = _media_type(document.mime_type, DEFAULT_TYPE)
        return Media(document.file_id, name, kind, document.file_size)
    if msg.video is not None:
        video = msg.video
        name = _name(video.file_name, "video.mp4")
        return Media(
            video.file_id, name, _media_type(video.mime_type, "video/mp4"), video.file_size
        )
    if msg.audio is not None:
        audio = msg.audio
        name = _name(audio.file_name, "audio")
        kind = _media_type(audio.mime_type, DEFAULT_TYPE)
        return Media(audio.file_id, name, kind, audio.file_size)
    if msg.voice is not None:
        voice = msg.voice
        kind = _media_type(voice.mime_type, "audio/ogg")
        return Media(voice.file_id, "voice.ogg", kind, voice.file_size)
    return None


async def fetch(bot: Bot, media: Media, limit: int) -> Attachment | None:
    """The file as an `Attachment`, without data when it is over `limit` (or its size is
    unknown, so it cannot be known to be within it); None when Telegram failed to give it.

    Nothing over `limit` is downloaded: the sizes Telegram states (with the message,
    then in `getFile`) are checked first, and what arrives is checked again."""
    if media.size is not None and media.size > limit:
        return _too_big(media, media.size, limit)
    try:
        file = await bot.get_file(media.file_id)
        size = media.size if file.file_size is None else file.file_size
        if size is None or size > limit:
            return _too_big(media, size, limit)
        data = await file.download_as_bytearray(read_timeout=DOWNLOAD_SECONDS)
    except (TelegramError, RuntimeError) as exc:  # RuntimeError: getFile gave no file_path
        log.warning("telegram: a file could not be downloaded (%s)", type(exc).__name__)
        return None
    if len(data) > limit:
        log.warning("telegram: a downloaded file was larger than stated; it was dropped")
        return _too_big(media, len(data), limit)
    return Attachment(media.name, media.media_type, len(data), bytes(data))


def _too_big(media: Media, size: int | None, limit: int) -> Attachment:
    """Without data, so the handlers refuse it; an unknown size counts as over the limit."""
    return Attachment(media.name, media.media_type, max(size or 0, limit + 1))
