"""Reading the Prometheus text the health endpoint writes, for the tests."""

from __future__ import annotations

import re

__all__ = ["SAMPLE", "one", "samples"]

SAMPLE = re.compile(r'^([a-z_]+)(?:\{((?:[a-z_]+="(?:[^"\\]|\\.)*",?)*)\})? (\d+)$')
LABEL = re.compile(r'([a-z_]+)="((?:[^"\\]|\\.)*)"')
Key = tuple[str, frozenset[tuple[str, str]]]


def samples(text: str) -> dict[Key, int]:
    """Every sample by (name, labels); a line that is neither a comment nor a sample fails."""
    found: dict[Key, int] = {}
    for line in text.splitlines():
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            continue
        match = SAMPLE.match(line)
        assert match is not None, f"not a Prometheus sample: {line!r}"
        name, labels, value = match.groups()
        key = (name, frozenset(LABEL.findall(labels or "")))
        assert key not in found, f"a series written twice: {line!r}"
        found[key] = int(value)
    return found


def one(found: dict[Key, int], name: str, **labels: str) -> int:
    return found[(name, frozenset(labels.items()))]
