"""Turn a `Reply` into Matrix message contents: plain text, choices as a numbered list,
and its files as encrypted media events.

Matrix has no buttons every client shows, so choices are numbered lines; the
handlers accept the number or the label back. Text is split well below the event
size limit (64 KiB) so no client or server truncates a guide; it is split only between
lines of outsiders' words framed by `bot.cases.quoting`, never inside one. A part holding such
lines also gets an HTML body (`bot.cases.quoting.html_framed`): the words in `<blockquote>`,
escaped, so clients draw the quote bar beside every wrapped row too.
"""

from __future__ import annotations

from typing import Any

from bot.cases.quoting import html_framed
from bot.model import Attachment, Reply
from bot.text import RLM, paginate

__all__ = ["MAX_BODY_CHARS", "contents", "edit_content", "file_content"]

MAX_BODY_CHARS = 8000
MSGTYPE = "m.notice"
HTML = "org.matrix.custom.html"
FILE_MSGTYPES = {"image": "m.image", "video": "m.video", "audio": "m.audio"}


def _choice_lines(reply: Reply) -> list[str]:
    mark = RLM if reply.rtl else ""
    return [f"{mark}{i}. {choice.label}" for i, choice in enumerate(reply.choices, 1)]


def _content(body: str) -> dict[str, str]:
    formatted = html_framed(body)
    if formatted is None:
        return {"msgtype": MSGTYPE, "body": body}
    return {"msgtype": MSGTYPE, "body": body, "format": HTML, "formatted_body": formatted}


def contents(reply: Reply, limit: int = MAX_BODY_CHARS) -> list[dict[str, str]]:
    """One `m.room.message` content per part; the choices come last, after a blank line.

    Bots send `m.notice` so other bots never answer them (no reply loops).
    """
    parts = paginate(reply.text, limit) if reply.text else []
    if reply.choices:
        choices = "\n".join(_choice_lines(reply))
        if parts and len(parts[-1]) + len(choices) + 2 <= limit:
            parts[-1] = f"{parts[-1]}\n\n{choices}"
        else:
            parts += paginate(choices, limit)
    return [_content(part) for part in parts]


def edit_content(reply: Reply, event_id: str) -> dict[str, Any] | None:
    """An `m.replace` edit of an earlier event (spec 11.37), or None when the reply does
    not fit one event. Clients that do not show edits show the "* " fallback body."""
    parts = contents(reply)
    if len(parts) != 1:
        return None
    new = parts[0]
    edit: dict[str, Any] = {
        "msgtype": new["msgtype"],
        "body": f"* {new['body']}",
        "m.new_content": new,
        "m.relates_to": {"rel_type": "m.replace", "event_id": event_id},
    }
    if "formatted_body" in new:
        edit.update(format=HTML, formatted_body=f"* {new['formatted_body']}")
    return edit


def file_content(attachment: Attachment, url: str, keys: dict[str, Any]) -> dict[str, Any]:
    """An encrypted file's `m.room.message` content: `file` holds the URL and the key
    (JWK), IV, SHA-256 and version nio gave at upload, as the spec's EncryptedFile."""
    top = attachment.media_type.split("/", 1)[0]
    return {
        "msgtype": FILE_MSGTYPES.get(top, "m.file"),
        "body": attachment.name,
        "filename": attachment.name,
        "info": {"mimetype": attachment.media_type, "size": attachment.size},
        "file": {"url": url, "mimetype": attachment.media_type, **keys},
    }
