"""Update shapes python-telegram-bot 22.8 cannot read, each made from a good message update.

`REJECTED` are shapes the library itself raises on in `Update.de_json` (a test checks
each one does); `MISTYPED` are shapes it reads without complaint but whose values have
types the Bot API never sends, which the bot must refuse itself. Every shape keeps the
good update's id and all of its content (text, names, ids), so a test can look for
that content in the logs.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

from tests.telegram_emulator.world import JSON

Shape = Callable[[JSON], JSON]

POLL = {
    "id": "5170000000000000001",
    "question": "Which day?",
    "options": [{"text": "Monday", "voter_count": 0}, {"text": "Friday", "voter_count": 0}],
    "total_voter_count": 0,
    "is_closed": False,
    "is_anonymous": True,
    "type": "regular",
    "allows_multiple_answers": False,
}


def _message(update: JSON, **changes: object) -> JSON:
    message = copy.deepcopy(update["message"])
    for key, value in changes.items():
        if value is None:
            message.pop(key, None)
        else:
            message[key] = value
    return {"update_id": update["update_id"], "message": message}


def old_server_poll(update: JSON) -> JSON:
    """A private poll as a Bot API server older than 9.6 sends it: options without
    `persistent_id`."""
    return _message(update, poll=copy.deepcopy(POLL))


def chat_without_type(update: JSON) -> JSON:
    chat = {k: v for k, v in update["message"]["chat"].items() if k != "type"}
    return _message(update, chat=chat)


def date_as_text(update: JSON) -> JSON:
    return _message(update, date="yesterday")


def date_out_of_range(update: JSON) -> JSON:
    return _message(update, date=10**20)


def entity_without_length(update: JSON) -> JSON:
    return _message(update, entities=[{"type": "bold", "offset": 0}])


def entities_not_a_list(update: JSON) -> JSON:
    return _message(update, entities=7)


def sender_as_text(update: JSON) -> JSON:
    user = update["message"]["from"]
    return _message(update, **{"from": f"{user['first_name']} {user['id']}"})


def sender_without_name(update: JSON) -> JSON:
    user = {k: v for k, v in update["message"]["from"].items() if k != "first_name"}
    return _message(update, **{"from": user})


def nested_garbage(update: JSON) -> JSON:
    """Objects where the API has objects, filled with something else."""
    return _message(update, link_preview_options=["garbage", update["message"]["text"]])


def reply_without_date(update: JSON) -> JSON:
    quoted = {k: v for k, v in update["message"].items() if k != "date"}
    return _message(update, reply_to_message=quoted)


def photo_size_incomplete(update: JSON) -> JSON:
    return _message(update, photo=[{"file_id": "AgAD" + update["message"]["text"]}])


def press_from_text(update: JSON) -> JSON:
    """A button press whose sender is a string."""
    message = update["message"]
    query = {
        "id": "880000000000999",
        "from": str(message["from"]),
        "message": message,
        "chat_instance": "-7",
        "data": message["text"],
    }
    return {"update_id": update["update_id"], "callback_query": query}


def message_not_an_object(update: JSON) -> JSON:
    return {"update_id": update["update_id"], "message": ["garbage", update["message"]]}


def text_as_number(update: JSON) -> JSON:
    return _message(update, text=int.from_bytes(update["message"]["text"].encode()[:8]))


def language_as_list(update: JSON) -> JSON:
    user = {**update["message"]["from"], "language_code": ["en", update["message"]["text"]]}
    return _message(update, **{"from": user})


def press_without_sender(update: JSON) -> JSON:
    query = {
        "id": "880000000000998",
        "message": update["message"],
        "chat_instance": "-7",
        "data": update["message"]["text"],
    }
    return {"update_id": update["update_id"], "callback_query": query}


def update_id_as_text(update: JSON) -> JSON:
    return {**update, "update_id": str(update["update_id"])}


REJECTED: dict[str, Shape] = {
    "old server poll": old_server_poll,
    "chat without type": chat_without_type,
    "date as text": date_as_text,
    "date out of range": date_out_of_range,
    "entity without length": entity_without_length,
    "entities not a list": entities_not_a_list,
    "sender as text": sender_as_text,
    "sender without name": sender_without_name,
    "nested garbage": nested_garbage,
    "reply without date": reply_without_date,
    "photo size incomplete": photo_size_incomplete,
    "press from text": press_from_text,
    "message not an object": message_not_an_object,
}
MISTYPED: dict[str, Shape] = {
    "text as number": text_as_number,
    "language as list": language_as_list,
    "press without sender": press_without_sender,
    "update id as text": update_id_as_text,
}
