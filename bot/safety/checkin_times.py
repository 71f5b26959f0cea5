"""When the next check-in is due, in the activist's own time zone, and what they may type
as a time zone or a time of day. Pure functions: the clock is always passed in."""

from __future__ import annotations

import re
import zoneinfo
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from functools import cache
from importlib import resources
from pathlib import Path

__all__ = [
    "MAX_LIKELY",
    "clock_text",
    "likely_zones",
    "next_daily",
    "parse_clock",
    "parse_zone",
    "zone_of",
]

_OFFSET = re.compile(r"^(?:utc|gmt)?\s*([+-−])\s*(\d{1,2})(?::?(\d{2}))?$")
_CLOCK = re.compile(r"^(\d{1,2})(?:[:.h](\d{2}))?$")
MAX_LIKELY = 6


def zone_of(name: str) -> tzinfo:
    """An IANA zone, or a fixed offset stored as `UTC+03:00`. Raises KeyError if unknown."""
    if name.startswith("UTC") and len(name) == 9:
        sign = -1 if name[3] == "-" else 1
        return timezone(sign * timedelta(hours=int(name[4:6]), minutes=int(name[7:9])))
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise KeyError(name) from exc


def parse_zone(typed: str) -> str | None:
    """What someone typed as a time zone: an IANA name (any case) or a UTC offset such as
    `UTC+3`, `+03:30` or `GMT-5`. None if it is neither."""
    text = " ".join(typed.split())
    if text.casefold() in ("utc", "gmt", "z"):
        return "UTC"
    if (m := _OFFSET.match(text.casefold())) is not None:
        hours, minutes = int(m[2]), int(m[3] or 0)
        if hours > 14 or minutes >= 60:
            return None
        sign = "-" if m[1] in "-−" else "+"
        return f"UTC{sign}{hours:02d}:{minutes:02d}"
    name = text.replace(" ", "_")
    found = _names().get(name.casefold())
    return found


def parse_clock(typed: str) -> int | None:
    """A time of day typed as `18:00`, `18.00`, `18h30` or `7`: minutes after midnight."""
    m = _CLOCK.match(typed.strip().casefold())
    if m is None:
        return None
    hours, minutes = int(m[1]), int(m[2] or 0)
    if hours > 23 or minutes > 59:
        return None
    return hours * 60 + minutes


def clock_text(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def next_daily(now: float, minutes: int, zone: str) -> int:
    """The next moment after `now` when the wall clock in `zone` reads `minutes` after
    midnight. A time skipped by a DST change is asked at the same wall-clock time read
    with the offset before the change (an hour later in local time that day)."""
    tz = zone_of(zone)
    today = datetime.fromtimestamp(now, tz).date()
    for days in range(3):
        at = _local(today + timedelta(days=days), minutes, tz)
        if at > now:
            return at
    raise AssertionError("a day always has the time")  # pragma: no cover


def _local(day: date, minutes: int, tz: tzinfo) -> int:
    wall = datetime.combine(day, time(minutes // 60, minutes % 60), tzinfo=tz)
    return int(wall.astimezone(UTC).timestamp())


def likely_zones(country: str | None) -> tuple[str, ...]:
    """The zones of a country (ISO 3166 code) from the system tz database, at most a few."""
    if not country:
        return ()
    return _by_country().get(country.upper(), ())[:MAX_LIKELY]


@cache
def _names() -> dict[str, str]:
    return {name.casefold(): name for name in zoneinfo.available_timezones()}


@cache
def _by_country() -> dict[str, tuple[str, ...]]:
    """`zone.tab` lists each country's zones, most populous region first."""
    zones: dict[str, list[str]] = {}
    for line in _zone_table().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        code, _, name = line.split("\t")[:3]
        zones.setdefault(code, []).append(name)
    return {code: tuple(names) for code, names in zones.items()}


def _zone_table() -> str:
    """The system's tz database, else the `tzdata` package's (where zoneinfo finds it)."""
    for root in zoneinfo.TZPATH:
        if (table := Path(root) / "zone.tab").is_file():
            return table.read_text(encoding="utf-8")
    try:
        return (resources.files("tzdata.zoneinfo") / "zone.tab").read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError):
        return ""
