"""The Matrix pieces that need no homeserver: rendering, parsing, trust policy, settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest
from nio import RoomMessageText

from bot.config import ConfigError, Settings
from bot.model import Choice, Reply
from bot.transports.matrix import MatrixConfig, TofuExceptStaff, Trust
from bot.transports.matrix.inbound import Said, parse, strip_reply_fallback
from bot.transports.matrix.render import contents
from bot.transports.matrix.trust import apply_trust
from handlers.output import RLM

BOT = "@hrd:example.org"
STAFF = "@staff:example.org"


def test_choices_are_a_numbered_list_after_the_text() -> None:
    reply = Reply("Pick one.", (Choice("a", "First"), Choice("b", "Second")))
    [content] = contents(reply)
    assert content == {"msgtype": "m.notice", "body": "Pick one.\n\n1. First\n2. Second"}


def test_right_to_left_choices_keep_their_direction() -> None:
    [content] = contents(Reply("نص", (Choice("a", "أول"),), rtl=True))
    assert content["body"].endswith(f"{RLM}1. أول")


def test_long_text_is_split_and_the_choices_come_last() -> None:
    text = "\n\n".join(f"Paragraph {i} " + "word " * 150 for i in range(40))
    parts = contents(Reply(text, (Choice("a", "Next"),)), limit=2000)
    assert len(parts) > 1
    assert all(len(part["body"]) <= 2000 for part in parts)
    assert parts[-1]["body"].endswith("1. Next")
    assert "1. Next" not in "".join(part["body"] for part in parts[:-1])


def test_reply_fallback_is_dropped() -> None:
    body = "> <@someone:example.org> Which country?\n> more\n\nKenya"
    assert strip_reply_fallback(body) == "Kenya"
    assert strip_reply_fallback("> not a reply quote only") == ""
    assert strip_reply_fallback("plain") == "plain"


def text_event(body: str, **content: object) -> RoomMessageText:
    source = {
        "event_id": "$e",
        "sender": "@a:example.org",
        "origin_server_ts": 1,
        "type": "m.room.message",
        "content": {"msgtype": "m.text", "body": body, **content},
    }
    event = RoomMessageText.from_dict(source)
    assert isinstance(event, RoomMessageText)
    return event


def test_text_is_said_and_edits_are_ignored() -> None:
    assert parse(text_event("hello")) == Said("$e", "@a:example.org", "hello", 5)
    edit = text_event("* 2", **{"m.relates_to": {"rel_type": "m.replace", "event_id": "$x"}})
    assert parse(edit) is None


def test_trust_on_first_use_except_staff_and_the_bot_itself() -> None:
    policy = TofuExceptStaff(BOT, frozenset({STAFF}), frozenset({"listed-key"}))
    assert policy("@activist:example.org", "DEV", "any-key") is Trust.VERIFY
    assert policy(STAFF, "DEV", "listed-key") is Trust.VERIFY
    assert policy(STAFF, "NEW", "unknown-key") is Trust.BLOCK
    assert policy(BOT, "OLD", "any-key") is Trust.BLOCK


@dataclass
class FakeDevice:
    user_id: str
    id: str
    ed25519: str
    verified: bool = False
    blacklisted: bool = False


@dataclass
class FakeClient:
    """Just what `apply_trust` touches of nio's client."""

    devices: list[FakeDevice]
    calls: list[str] = field(default_factory=list)

    def room_devices(self, room_id: str) -> dict[str, dict[str, FakeDevice]]:
        found: dict[str, dict[str, FakeDevice]] = {}
        for device in self.devices:
            found.setdefault(device.user_id, {})[device.id] = device
        return found

    def verify_device(self, device: FakeDevice) -> None:
        self.calls.append(f"verify {device.id}")
        device.verified, device.blacklisted = True, False

    def unverify_device(self, device: FakeDevice) -> None:
        self.calls.append(f"unverify {device.id}")
        device.verified = False

    def blacklist_device(self, device: FakeDevice) -> None:
        self.calls.append(f"block {device.id}")
        device.blacklisted = True

    def unblacklist_device(self, device: FakeDevice) -> None:
        self.calls.append(f"unblock {device.id}")
        device.blacklisted = False


def test_the_policy_is_applied_and_followed_when_it_changes() -> None:
    client = FakeClient(
        [FakeDevice("@activist:example.org", "PHONE", "k1"), FakeDevice(STAFF, "LAPTOP", "k2")]
    )
    apply_trust(client, "!room", TofuExceptStaff(BOT, frozenset({STAFF})))
    assert client.calls == ["verify PHONE", "block LAPTOP"]
    apply_trust(client, "!room", TofuExceptStaff(BOT, frozenset({STAFF})))
    assert client.calls == ["verify PHONE", "block LAPTOP"], "decisions are kept"
    apply_trust(client, "!room", TofuExceptStaff(BOT, frozenset({STAFF}), frozenset({"k2"})))
    assert client.calls[2:] == ["unblock LAPTOP", "verify LAPTOP"]


def matrix_settings(tmp_path: Path, **env: str) -> Settings:
    base = {
        "HRD_BOT_DATA_DIR": str(tmp_path),
        "MATRIX_HOMESERVER": "https://matrix.example.org/",
        "MATRIX_USER_ID": BOT,
        "MATRIX_PASSWORD": "pw",
        "MATRIX_STORE_PASSPHRASE": "store pass",
    }
    return Settings.from_env({**base, **env})


def test_settings_are_read_with_files_and_lists(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("secret-token\n")
    config = MatrixConfig.from_settings(
        matrix_settings(
            tmp_path,
            MATRIX_ACCESS_TOKEN_FILE=str(token),
            MATRIX_STAFF_USER_IDS=f" {STAFF}, @b:example.org ,",
        )
    )
    assert config.homeserver == "https://matrix.example.org"
    assert config.access_token == "secret-token"
    assert config.store_dir == tmp_path / "matrix"
    assert config.staff_user_ids == {STAFF, "@b:example.org"}
    assert "secret" not in repr(config) and "store pass" not in repr(config)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MATRIX_STORE_PASSPHRASE": ""}, "MATRIX_STORE_PASSPHRASE"),
        ({"MATRIX_PASSWORD": ""}, "MATRIX_ACCESS_TOKEN or MATRIX_PASSWORD"),
        ({"MATRIX_USER_ID": "hrd"}, "MATRIX_USER_ID"),
        ({"MATRIX_HOMESERVER": "matrix.example.org"}, "MATRIX_HOMESERVER"),
    ],
)
def test_bad_settings_refuse_to_start(tmp_path: Path, env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        MatrixConfig.from_settings(matrix_settings(tmp_path, **env))
