"""A problem found in content, printed the way editors jump to it: `path:line: message`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["Problem"]


@dataclass(frozen=True, slots=True)
class Problem:
    path: Path
    line: int
    message: str
    warning: bool = False

    def __str__(self) -> str:
        kind = "warning: " if self.warning else ""
        return f"{self.path}:{self.line}: {kind}{self.message}"
