"""The log redaction: masks in our own lines, kinds only for library lines."""

from __future__ import annotations

import logging
import warnings

import pytest

from bot.logs import Redactor, mask, redact, setup_logging


@pytest.mark.parametrize(
    ("line", "part"),
    [
        ("POST https://api.telegram.org/bot123456:AAH-secret_token/getUpdates", "AAH-secret"),
        ("token 123456789:AAHdhSecretTokenValue_abcdefgh seen", "AAHdhSecret"),
        ("invite from @alice:example.org", "alice"),
        ("left !room123:example.org", "room123"),
        ("event $abcDEF123:example.org", "abcDEF123"),
        ("Missing session for device ABCDEFGHIJ", "ABCDEFGHIJ"),
        ("device_id=my-laptop-1", "my-laptop"),
        ("a device id QWERTY12 rejected", "QWERTY12"),
        ("key 3Pz3Yc1kLb9aR0m7F0VbVmqv3kX0hQ3wDq2Lr8n6s0M rejected", "3Pz3Yc1k"),
        ("Authorization: Bearer syt_YWxpY2U_kjhdsf_2a3b4c", "YWxpY2U"),
        ("GET /sync?access_token=abc123def&since=s1", "abc123def"),
        ("call +216 55 123 456 now", "123 456"),
        ("chat 987654321 blocked", "987654321"),
        ("mail ana.b@example.com", "ana.b"),
    ],
)
def test_identifying_parts_are_masked(line: str, part: str) -> None:
    masked = mask(line)
    assert "[redacted]" in masked
    assert part not in masked


def _record(name: str, msg: object, *args: object) -> logging.LogRecord:
    return logging.LogRecord(name, logging.WARNING, __file__, 1, msg, args, None)


@pytest.mark.parametrize(
    "line",
    [
        "sweep: 3 deleted",
        "device trust: 2 trusted, 1 blocked",
        "fetched a timeline gap (200 events)",
        "content: /srv/hrd-bot/content/en/guides/account-hijacked.yaml:3: aliases are refused",
    ],
)
def test_our_own_lines_keep_their_message(line: str) -> None:
    assert redact(_record("hrd_bot.x", "%s", line)).getMessage() == line


def test_our_own_lines_are_masked_too() -> None:
    record = redact(_record("hrd_bot.x", "user %s left", "@ana:example.org"))
    assert record.getMessage() == "user [redacted] left"


def test_a_library_line_from_outside_a_library_keeps_nothing() -> None:
    """Only words found in an installed library's own source pass; here nothing does."""
    record = redact(_record("telegram.ext", "Update %s caused %s", "hello Ana", "boom"))
    assert record.getMessage() == "…"


def test_redaction_is_applied_once_and_drops_the_traceback() -> None:
    try:
        raise ValueError("Ana's secret")
    except ValueError as exc:
        record = _record("hrd_bot.x", "failed")
        record.exc_info = (ValueError, exc, exc.__traceback__)
    Redactor().filter(record)
    Redactor().filter(record)
    assert record.exc_info is None
    assert record.exc_text == "exception: ValueError"
    assert logging.Formatter().format(record) == "failed\nexception: ValueError"


def test_an_exception_as_the_message_is_its_type() -> None:
    record = redact(_record("nio.client", ValueError("Ana")))
    assert record.getMessage() == "… (ValueError)"


def test_setup_logging_redacts_on_its_handler_and_captures_warnings(
    capsys: pytest.CaptureFixture[str],
) -> None:
    factory, root = logging.getLogRecordFactory(), logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        setup_logging("DEBUG")
        logging.getLogger("nio.crypto.log").warning("Missing session for device QWERTYUIOP")
        warnings.warn("for @ana:example.org", UserWarning, stacklevel=1)
    finally:
        logging.setLogRecordFactory(factory)
        logging.captureWarnings(False)
        root.handlers[:], root.level = handlers, level
    err = capsys.readouterr().err
    assert "WARNING nio.crypto.log: …" in err and "warning UserWarning" in err
    assert "QWERTYUIOP" not in err and "ana" not in err
