"""JSON Schema files for content editors, generated from the same models the loader uses."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from bot.content.schema import ContactList, CountryLegal, Guide, Interview, Strings

__all__ = ["SCHEMAS", "render_schemas", "write_schemas"]

SCHEMAS: dict[str, type[BaseModel]] = {
    "guide": Guide,
    "legal": CountryLegal,
    "contacts": ContactList,
    "strings": Strings,
    "interview": Interview,
}


def render_schemas() -> dict[str, str]:
    """File name → JSON text, stable so a test can tell when the committed copy is stale."""
    return {
        f"{name}.schema.json": json.dumps(model.model_json_schema(), indent=2, sort_keys=True)
        + "\n"
        for name, model in SCHEMAS.items()
    }


def write_schemas(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_schemas().items():
        path = folder / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
