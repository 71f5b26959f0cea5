"""The shape of the tree (issue 14), read from the source with `ast`: who may import whom,
which module writes which table, and how long files, classes and functions may grow.

Each known exception is listed here, with why, for the lead to shrink; an entry that is
no longer needed fails too, so the lists only ever get shorter."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bot", "handlers")

HANDLERS_MAY_IMPORT = (
    "bot.model",
    "bot.content",
    "bot.text",
    # The values and ports the engine hands the handlers:
    "bot.cases.views",
    "bot.cases.words",
    "bot.conversation.state",
    # Pure helpers, no storage or I/O: file kinds and generated names, the claim choice id,
    # quoting an outsider's words, clock and zone parsing, duress-word rules.
    "bot.cases.attachments",
    "bot.cases.claims",
    "bot.cases.quoting",
    "bot.safety.checkin_times",
    "bot.safety.duress",
)
"""Everything else under `bot` is the engine, reached through `handlers.ports`."""

BOT_MAY_IMPORT_HANDLERS = {"bot.app"}
"""The one place that wires handlers to the engine."""

KNOWN_BOT_TO_HANDLERS: set[tuple[str, str]] = set()
"""bot → handlers imports outside the App wiring still to remove (none left)."""

TRANSPORTS_MUST_NOT_IMPORT = ("bot.app", "handlers")
"""Transports see the bot only through their port (`bot/transports/port.py`)."""

OWNERS = {
    "hrd_bot_meta": "bot.storage.postgres",
    "cases": "bot.cases.rows",
    "case_items": "bot.cases.rows",
    "case_reporters": "bot.cases.reporter_rows",
    "case_recipients": "bot.cases.rows",
    "case_log_states": "bot.cases.rows",
    "audit": "bot.cases.rows",
    "staff": "bot.cases.staff_rows",
    "org_keys": "bot.cases.staff_rows",
    "staff_languages": "bot.cases.staff_languages",
    "checkins": "bot.safety.checkin_rows",
    "escalation_steps": "bot.safety.escalation",
    "sessions": "bot.conversation.sessions",
    "chat_addresses": "bot.conversation.chat_trail",
    "chat_messages": "bot.conversation.chat_trail",
    "outbox": "bot.delivery.rows",
    "outbox_messages": "bot.delivery.rows",
    "settings": "bot.storage.database",
    "telegram_updates": "bot.transports.telegram.seen",
    "inbox": "bot.cluster.inbox",
    "user_leases": "bot.cluster.inbox",
    "cluster_workers": "bot.cluster.inbox",
    "button_screens": "bot.transports.telegram.shared_buttons",
    "cluster_leader": "bot.cluster.relay_rows",
    "outbox_handover": "bot.cluster.relay_rows",
    "matrix_positions": "bot.cluster.matrix_position",
    "matrix_handled": "bot.cluster.matrix_position",
    # matrix-nio's own store, kept in our encrypted file:
    "devicekeys": "bot.transports.matrix.store",
    "encryptedrooms": "bot.transports.matrix.store",
    "handled_events": "bot.transports.matrix.store",
    "megolminboundsessions": "bot.transports.matrix.store",
    "outgoingkeyrequests": "bot.transports.matrix.store",
    "synctokens": "bot.transports.matrix.store",
}
"""Each table's one writer; a new table must be added here."""

SCHEMA = ("bot.storage.migrations", "bot.storage.pg_schema", "bot.storage.pg_rekey")
"""Migrations change the schema and carry old rows over, and a PostgreSQL rekey re-seals
every sealed column: they may write any table."""

KNOWN_WRITERS: set[tuple[str, str]] = set()

MAX_FILE_LINES, MAX_CLASS_LINES, MAX_FUNCTION_LINES = 400, 250, 50
KNOWN_LONG: dict[str, int] = {}
"""Path (and class or function) to its length today: it may shrink, never grow."""

_WRITE = re.compile(
    r"(?<!DO )\b(?:INSERT(?:\s+OR\s+[A-Z]+)?\s+INTO|REPLACE\s+INTO|UPDATE(?:\s+OR\s+[A-Z]+)?"
    r"|DELETE\s+FROM)\s+[\"`\[]?(?!(?:ON|OF|SET)\b)([A-Za-z_]\w*)"
)


def _sources() -> Iterator[tuple[str, Path, ast.Module]]:
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT)
            module = ".".join(relative.with_suffix("").parts).removesuffix(".__init__")
            yield module, relative, ast.parse(path.read_text(encoding="utf-8"), str(relative))


def imports(module: str, tree: ast.Module) -> set[str]:
    """Every module `tree` imports, at any depth (inside functions too)."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = module.split(".")[: -node.level]
                base = ".".join([*parent, base] if base else parent)
            found.add(base)
    return found


def table_writes(tree: ast.Module) -> set[str]:
    """Tables that SQL in `tree`'s string literals writes (docstrings are prose, not SQL)."""
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
    }
    return {
        match.group(1)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
        if id(node) not in docstrings
        for match in _WRITE.finditer(node.value)
    }


def _within(name: str, allowed: tuple[str, ...] | set[str]) -> bool:
    return any(name == a or name.startswith(a + ".") for a in allowed)


def test_bot_never_imports_handlers_except_the_app_wiring() -> None:
    found = {
        (module, name)
        for module, _, tree in _sources()
        if module.startswith("bot") and module not in BOT_MAY_IMPORT_HANDLERS
        for name in imports(module, tree)
        if _within(name, ("handlers",))
    }
    to_module = {(module, ".".join(name.split(".")[:2])) for module, name in found}
    assert to_module - KNOWN_BOT_TO_HANDLERS == set(), "bot imports handlers"
    assert KNOWN_BOT_TO_HANDLERS - to_module == set(), "gone: shrink KNOWN_BOT_TO_HANDLERS"


def test_transports_see_the_bot_only_through_their_port() -> None:
    found = {
        (module, name)
        for module, _, tree in _sources()
        if module.startswith("bot.transports")
        for name in imports(module, tree)
        if _within(name, TRANSPORTS_MUST_NOT_IMPORT)
    }
    assert found == set()


def test_handlers_import_only_the_model_content_and_the_ports() -> None:
    found = {
        (module, name)
        for module, _, tree in _sources()
        if module.startswith("handlers")
        for name in imports(module, tree)
        if _within(name, ("bot",)) and not _within(name, HANDLERS_MAY_IMPORT)
    }
    assert found == set()


def test_each_table_is_written_by_its_owner_only() -> None:
    writers = {
        (table, module)
        for module, _, tree in _sources()
        if module not in SCHEMA
        for table in table_writes(tree)
    }
    unowned = {table for table, _ in writers} - OWNERS.keys()
    assert unowned == set(), "declare each new table's owner in OWNERS"
    strays = {(t, m) for t, m in writers if OWNERS[t] != m}
    assert strays - KNOWN_WRITERS == set(), "move the SQL into the owner module"
    assert KNOWN_WRITERS - strays == set(), "gone: shrink KNOWN_WRITERS"


def _lengths() -> dict[str, int]:
    """Every file, class and function of `bot` and `handlers`, by its length in lines."""
    lengths: dict[str, int] = {}
    for _, path, tree in _sources():
        lengths[path.as_posix()] = len((ROOT / path).read_text(encoding="utf-8").splitlines())
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                key = f"{path.as_posix()}:{node.name}"
                size = (node.end_lineno or node.lineno) - node.lineno + 1
                lengths[key] = max(lengths.get(key, 0), size)
    return lengths


def _limit(key: str, tree_nodes: dict[str, str]) -> int:
    kind = tree_nodes.get(key, "file")
    return {"file": MAX_FILE_LINES, "class": MAX_CLASS_LINES}.get(kind, MAX_FUNCTION_LINES)


def test_no_file_class_or_function_outgrows_its_limit() -> None:
    kinds = {
        f"{path.as_posix()}:{node.name}": "class" if isinstance(node, ast.ClassDef) else "def"
        for _, path, tree in _sources()
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
    }
    lengths = _lengths()
    over = {key: size for key, size in lengths.items() if size > _limit(key, kinds)}
    grown = {k: v for k, v in over.items() if k not in KNOWN_LONG or v > KNOWN_LONG[k]}
    assert grown == {}, "split these (or, if outside your part, name them to the lead)"
    assert KNOWN_LONG.keys() - over.keys() == set(), "within the limit now: shrink KNOWN_LONG"


def test_the_checks_see_what_they_look_for() -> None:
    """The scanners themselves: each rule would catch a breach."""
    sql = ast.parse(
        '"""UPDATE docs SET x = 1"""\n'
        'A = "INSERT OR REPLACE INTO alpha (a) VALUES (1)"\n'
        'B = "UPDATE beta SET b = 2 WHERE c IN (SELECT 1 FROM gamma)"\n'
        'C = f"DELETE FROM delta WHERE id IN ({marks})"\n'
        'D = "INSERT INTO eps (a) VALUES (1) ON CONFLICT(a) DO UPDATE SET a = 2"\n'
        'E = "CREATE TRIGGER t AFTER UPDATE ON zeta BEGIN SELECT 1; END"\n'
    )
    assert table_writes(sql) == {"alpha", "beta", "delta", "eps"}
    code = ast.parse("def f():\n    from handlers.output import paginate\nfrom . import rows\n")
    assert imports("bot.cases.casework", code) == {"handlers.output", "bot.cases"}


def test_every_module_says_what_it_exports() -> None:
    """Issue 14: each module names its public part (`__all__`), so a move shows who breaks."""
    silent = [
        str(relative)
        for _, relative, tree in _sources()
        if relative.name not in ("__init__.py", "__main__.py")
        and not any(
            isinstance(node, ast.Assign | ast.AnnAssign)
            and "__all__" in {t.id for t in _targets(node) if isinstance(t, ast.Name)}
            for node in tree.body
        )
    ]
    assert silent == []


def _targets(node: ast.Assign | ast.AnnAssign) -> list[ast.expr]:
    return list(node.targets) if isinstance(node, ast.Assign) else [node.target]
