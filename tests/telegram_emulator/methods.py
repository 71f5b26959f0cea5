"""Bot API methods with the real answers and error wording, checked the way Telegram checks.

Each method takes the request's parameters (already typed) and returns the `result`,
or raises `ApiError`. `getUpdates` and the webhook live in `server`, which owns waiting.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from tests.telegram_emulator.world import (
    DELETE_WINDOW,
    JSON,
    ApiError,
    Chat,
    Message,
    World,
    bad_request,
)

Method = Callable[[World, JSON], Awaitable[Any]]
MAX_TEXT = 4096
MAX_DOWNLOAD = 20 * 1024 * 1024  # getFile refuses bigger files (cloud Bot API)
_COMMAND = re.compile(r"^[a-z0-9_]{1,32}$")
_BUTTON_ACTIONS = (
    "callback_data",
    "url",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "copy_text",
    "pay",
)
BLOCKED = ApiError(403, "Forbidden: bot was blocked by the user")


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _reachable_chat(world: World, params: JSON) -> Chat:
    chat = world.chat(params.get("chat_id"))
    if chat.blocked:
        raise BLOCKED
    return chat


def _checked_text(params: JSON) -> str:
    text = params.get("text")
    if not isinstance(text, str) or not text.strip():
        raise bad_request("message text is empty")
    if utf16_len(text) > MAX_TEXT:
        raise bad_request("message is too long")
    parse_mode = params.get("parse_mode")
    if parse_mode is not None and parse_mode not in ("HTML", "Markdown", "MarkdownV2"):
        raise bad_request(f"unsupported parse_mode {parse_mode!r}")
    return text


def _checked_button(button: object) -> None:
    if not isinstance(button, dict) or not isinstance(button.get("text"), str):
        raise bad_request("can't parse inline keyboard button: Text buttons are unallowed")
    if not button["text"].strip():
        raise bad_request("BUTTON_TEXT_EMPTY")
    actions = [name for name in _BUTTON_ACTIONS if name in button]
    if len(actions) != 1:
        raise bad_request("can't parse inline keyboard button: exactly one action is required")
    data = button.get("callback_data")
    if "callback_data" in actions and (
        not isinstance(data, str) or not 1 <= len(data.encode("utf-8")) <= 64
    ):
        raise bad_request("BUTTON_DATA_INVALID")


def _checked_markup(params: JSON) -> JSON | None:
    markup = params.get("reply_markup")
    if markup is None:
        return None
    rows = markup.get("inline_keyboard") if isinstance(markup, dict) else None
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise bad_request("can't parse reply keyboard markup JSON object")
    for row in rows:
        for button in row:
            _checked_button(button)
    return {"inline_keyboard": rows} if any(rows) else None


def _bot_message(world: World, chat: Chat, params: JSON, what: str) -> Message:
    message = world.find(chat, params.get("message_id"))
    if message is None or message.sender is not world.bot:
        raise bad_request(f"message to {what} not found")
    return message


async def get_me(world: World, params: JSON) -> JSON:
    return {
        **world.bot.to_json(),
        "can_join_groups": True,
        "can_read_all_group_messages": not world.privacy,
        "supports_inline_queries": False,
        "can_connect_to_business": False,
        "has_main_web_app": False,
    }


async def send_message(world: World, params: JSON) -> JSON:
    chat = _reachable_chat(world, params)
    text = _checked_text(params)
    markup = _checked_markup(params)
    message = world.post(chat, world.bot, text, reply_markup=markup)
    message.parse_mode = params.get("parse_mode")
    await world.notify()
    return message.to_json()


async def edit_message_text(world: World, params: JSON) -> JSON:
    chat = _reachable_chat(world, params)
    message = _bot_message(world, chat, params, "edit")
    text = _checked_text(params)
    markup = _checked_markup(params)
    if text == message.text and markup == message.reply_markup:
        raise bad_request(
            "message is not modified: specified new message content and reply markup are "
            "exactly the same as a current content and reply markup of the message"
        )
    message.text, message.reply_markup, message.edit_date = text, markup, world.now()
    await world.notify()
    return message.to_json()


async def edit_message_reply_markup(world: World, params: JSON) -> JSON:
    chat = _reachable_chat(world, params)
    message = _bot_message(world, chat, params, "edit")
    markup = _checked_markup(params)
    if markup == message.reply_markup:
        raise bad_request(
            "message is not modified: specified new message content and reply markup are "
            "exactly the same as a current content and reply markup of the message"
        )
    message.reply_markup, message.edit_date = markup, world.now()
    await world.notify()
    return message.to_json()


async def answer_callback_query(world: World, params: JSON) -> bool:
    query = world.queries.get(str(params.get("callback_query_id")))
    if query is None or query.answered:
        raise bad_request("query is too old and response timeout expired or query ID is invalid")
    query.answered, query.answer_text = True, params.get("text")
    await world.notify()
    return True


def _deletable(world: World, chat: Chat, message: Message) -> bool:
    """Bots delete their own messages anywhere, others' only in private chats; all within 48 h."""
    if world.now() - message.date > DELETE_WINDOW:
        return False
    return message.sender is world.bot or chat.type == "private"


async def delete_message(world: World, params: JSON) -> bool:
    chat = _reachable_chat(world, params)
    message = world.find(chat, params.get("message_id"))
    if message is None:
        raise bad_request("message to delete not found")
    if not _deletable(world, chat, message):
        raise bad_request("message can't be deleted")
    message.deleted = True
    await world.notify()
    return True


async def delete_messages(world: World, params: JSON) -> bool:
    """Messages that cannot be found (never sent, deleted, in another chat) are skipped, as
    the Bot API documents; if one that is found cannot be deleted (older than 48 hours,
    another's in a group), the call is refused and deletes nothing (TDLib checks every
    message before deleting any)."""
    chat = _reachable_chat(world, params)
    ids = params.get("message_ids")
    if not isinstance(ids, list) or not 1 <= len(ids) <= 100:
        raise bad_request("message_ids must contain 1-100 message identifiers")
    found = [m for m in (world.find(chat, message_id) for message_id in ids) if m is not None]
    if not all(_deletable(world, chat, message) for message in found):
        raise bad_request("message can't be deleted")
    for message in found:
        message.deleted = True
    await world.notify()
    return True


def _commands_key(params: JSON) -> tuple[str, str]:
    scope = params.get("scope") or {"type": "default"}
    language = params.get("language_code") or ""
    if language and not re.fullmatch(r"[a-z]{2}", language):
        raise bad_request("invalid language code specified")
    return str(scope.get("type", "default")), language


async def set_my_commands(world: World, params: JSON) -> bool:
    commands = params.get("commands")
    if not isinstance(commands, list) or len(commands) > 100:
        raise bad_request("commands must be a list of at most 100 commands")
    for command in commands:
        if not _COMMAND.match(str(command.get("command", ""))):
            raise bad_request("BOT_COMMAND_INVALID")
        if not 1 <= len(str(command.get("description", "")).strip()) <= 256:
            raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
    world.commands[_commands_key(params)] = [
        {"command": c["command"], "description": c["description"]} for c in commands
    ]
    return True


async def get_my_commands(world: World, params: JSON) -> list[JSON]:
    return world.commands.get(_commands_key(params), [])


async def delete_my_commands(world: World, params: JSON) -> bool:
    world.commands.pop(_commands_key(params), None)
    return True


async def get_file(world: World, params: JSON) -> JSON:
    """Where to download a file (valid for an hour on Telegram; here, for ever)."""
    stored = world.files.get(str(params.get("file_id") or ""))
    if stored is None:
        raise bad_request("invalid file_id")
    if len(stored.data) > MAX_DOWNLOAD:
        raise bad_request("file is too big")
    return stored.to_json()


METHODS: dict[str, Method] = {
    "getme": get_me,
    "getfile": get_file,
    "sendmessage": send_message,
    "editmessagetext": edit_message_text,
    "editmessagereplymarkup": edit_message_reply_markup,
    "answercallbackquery": answer_callback_query,
    "deletemessage": delete_message,
    "deletemessages": delete_messages,
    "setmycommands": set_my_commands,
    "getmycommands": get_my_commands,
    "deletemycommands": delete_my_commands,
}
