"""The log scrubber: the safety net under library log lines we do not control."""

from __future__ import annotations

import logging

import pytest

from bot.logs import Scrubber


@pytest.mark.parametrize(
    "line",
    [
        "POST https://api.telegram.org/bot123456:AAH-secret_token/getUpdates",
        "invite from @alice:example.org to !room123:example.org",
        "Missing session for device ABCDEFGHIJ",
        "key 3Pz3Yc1kLb9aR0m7F0VbVmqv3kX0hQ3wDq2Lr8n6s0M rejected",
        "call +216 55 123 456 now",
        "chat 987654321 blocked",
    ],
)
def test_identifying_parts_are_masked(line: str) -> None:
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "%s", (line,), None)
    Scrubber().filter(record)
    masked = record.getMessage()
    assert "[redacted]" in masked
    for part in (
        "AAH-secret",
        "alice",
        "room123",
        "ABCDEFGHIJ",
        "3Pz3Yc1k",
        "123 456",
        "987654321",
    ):
        assert part not in masked


def test_ordinary_lines_pass_unchanged() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "sweep: %d deleted", (3,), None)
    Scrubber().filter(record)
    assert record.getMessage() == "sweep: 3 deleted"
