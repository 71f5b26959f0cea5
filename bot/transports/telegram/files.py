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
from dataclasses import dataclass

from telegram import Bot, Message
from telegram.error import TelegramError

from bot.files import DEFAULT_TYPE, safe_media_type, safe_name
from bot.model import Attachment

__all__ = ["Media", "describe", "fetch"]

log = logging.getLogger("hrd_bot.telegram")
DOWNLOAD_SECONDS = 120.0


@dataclass(frozen=True, slots=True)
class Media:
    """A file in a message, as Telegram describes it; `size` None when Telegram did not say."""

    file_id: str
    name: str
    media_type: str
    size: int | None

    def __repr__(self) -> str:
        return f"Media(size={self.size})"


def describe(msg: Message) -> Media | None:
    """The file a message carries, or None (stickers, locations, contacts are not files
    a report can hold). Of a photo's sizes, the largest: the one a person sees."""
    if msg.photo:
        photo = max(msg.photo, key=lambda size: size.width * size.height)
        return Media(photo.file_id, "photo.jpg", "image/jpeg", photo.file_size)
    for sent, name, kind in (
        (msg.document, "file", DEFAULT_TYPE),
        (msg.video, "video.mp4", "video/mp4"),
        (msg.audio, "audio", DEFAULT_TYPE),
        (msg.voice, "voice.ogg", "audio/ogg"),
    ):
        if sent is not None:
            clean = safe_name(getattr(sent, "file_name", None), name)  # voice notes have none
            return Media(sent.file_id, clean, safe_media_type(sent.mime_type, kind), sent.file_size)
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
