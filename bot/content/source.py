"""YAML reading that remembers where each value stood, so errors can say `path:line`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

Location = tuple[str | int, ...]


class SourceError(Exception):
    """The file is not readable YAML; `line` is 1-based."""

    def __init__(self, path: Path, line: int, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.line = line
        self.message = message


@dataclass(slots=True)
class Document:
    """Parsed YAML plus the line of every mapping key and sequence item."""

    path: Path
    data: Any
    lines: dict[Location, int] = field(default_factory=dict)

    def line_of(self, location: Location) -> int:
        """The line of `location`, or of its nearest enclosing value that has one."""
        for end in range(len(location), -1, -1):
            if (found := self.lines.get(tuple(location[:end]))) is not None:
                return found
        return 1


def _build(node: yaml.Node, at: Location, lines: dict[Location, int], scalars: Any) -> Any:
    lines.setdefault(at, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = scalars.construct_object(key_node, deep=True)
            if key in result:
                raise SourceError(Path(), key_node.start_mark.line + 1, f"duplicate key {key!r}")
            lines[(*at, key)] = key_node.start_mark.line + 1
            result[key] = _build(value_node, (*at, key), lines, scalars)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, (*at, i), lines, scalars) for i, item in enumerate(node.value)]
    return scalars.construct_object(node, deep=True)


def read_yaml(path: Path) -> Document:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SourceError(path, 1, f"not UTF-8 text ({exc.reason})") from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise SourceError(path, line, f"YAML syntax: {exc.problem or exc}") from None
    lines: dict[Location, int] = {}
    try:
        data = None if root is None else _build(root, (), lines, yaml.SafeLoader(""))
    except SourceError as exc:
        raise SourceError(path, exc.line, exc.message) from None
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark is not None else 1
        raise SourceError(path, line, f"YAML value: {exc.problem or exc}") from None
    return Document(path=path, data=data, lines=lines)
