"""`hrd-bot`: run the bot, and the admin commands around it."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Sequence
from pathlib import Path

from bot.app import App
from bot.cli import data as cli_data
from bot.cli import demo as cli_demo
from bot.cli import doctor
from bot.cli import keys as cli_keys
from bot.cli.access import open_database
from bot.cluster.leader import Leadership
from bot.cluster.worker import Membership, clustered, delivering, leader_only, matrix_position
from bot.config import ConfigError, Settings
from bot.content import report as content_report
from bot.content.jsonschema import write_schemas
from bot.content.library import Library
from bot.content.loader import load_library
from bot.content.problems import Problem
from bot.errors import HrdBotError
from bot.logs import setup_logging
from bot.model import Transport
from bot.safety.escalation import Escalation
from bot.safety.jobs import SafetyJobs
from bot.storage import (
    Database,
    DataDirLock,
    DbKey,
    StorageFullError,
    resolve_db_key,
)
from bot.storage.faults import classify
from bot.transports.console import ConsoleTransport, DemoStaff

__all__ = [
    "EXIT_CONTENT",
    "EXIT_CRASHED",
    "EXIT_REFUSED",
    "EXIT_TEMPORARY",
    "main",
    "parser",
    "reload_content",
    "run_bot",
    "validate_content",
]

log = logging.getLogger("hrd_bot")

EXIT_CONTENT = 1  # the content has errors: a restart cannot help
EXIT_REFUSED = 2  # a setting, the key, or the database: a restart cannot help
EXIT_TEMPORARY = 75  # EX_TEMPFAIL: the disk is full; a restart may succeed once it is not
EXIT_CRASHED = 70  # EX_SOFTWARE: an unexpected error; systemd restarts the bot


def _print_problems(problems: Sequence[Problem]) -> None:
    for problem in problems:
        print(problem, file=sys.stderr)


def _transports(
    settings: Settings,
    app: App,
    console: bool,
    demo: DemoStaff | None = None,
    leadership: Leadership | None = None,
) -> list[Transport]:
    found: list[Transport] = []
    if console:
        found.append(ConsoleTransport(app.pseudonyms, demo=demo))
    if settings.secret("TELEGRAM_BOT_TOKEN"):
        from bot.transports.telegram import TelegramConfig, TelegramTransport  # lazy: PTB is big

        url = settings.database_url
        cluster = None if url is None else Membership(url, app.forget_cached)
        found.append(TelegramTransport(app, TelegramConfig.from_settings(settings), cluster))
    if settings.env.get("MATRIX_HOMESERVER", "").strip():
        found.append(_matrix(settings, app, leadership))
    return found


def _matrix(settings: Settings, app: App, leadership: Leadership | None) -> Transport:
    """Matrix; with several workers, on the leader only, each worker's device enrolled at
    its start (`bot.transports.matrix.enrol`), so it can read what people send when it
    leads. Refused settings stop every worker at start, as they stop one process."""
    from bot.transports.matrix import MatrixConfig, MatrixTransport  # lazy: nio is big
    from bot.transports.matrix.enrol import enrol

    config = MatrixConfig.from_settings(settings)
    shared = None if leadership is None else matrix_position(app)

    def matrix() -> Transport:
        return MatrixTransport(config, app, position=shared)

    if leadership is None:
        return matrix()

    def enrolment() -> Awaitable[bool]:
        return enrol(config, app.storage)

    idempotent = MatrixTransport.idempotent
    return leader_only(
        matrix, leadership, app, name="matrix", idempotent=idempotent, prepare=enrolment
    )


def _wants_console(settings: Settings, flag: bool | None) -> bool:
    if flag is not None:
        return flag
    return not any(
        settings.secret(n) for n in ("TELEGRAM_BOT_TOKEN", "MATRIX_ACCESS_TOKEN", "MATRIX_PASSWORD")
    )


async def _serve(settings: Settings, app: App, transports: list[Transport]) -> None:
    loop = asyncio.get_running_loop()
    pid_file = settings.data_dir / "hrd-bot.pid"
    pid_file.write_text(str(os.getpid()))

    reloading: set[asyncio.Task[list[Problem]]] = set()

    def reload() -> None:
        task = loop.create_task(app.reload_content(settings.content_dir))
        reloading.add(task)
        task.add_done_callback(reloading.discard)

    stopping: set[asyncio.Task[None]] = set()

    def stop() -> None:
        for transport in transports:
            task = loop.create_task(transport.stop())
            stopping.add(task)
            task.add_done_callback(stopping.discard)

    loop.add_signal_handler(signal.SIGHUP, reload)
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop)
    try:
        await asyncio.gather(*(t.run(app.handle) for t in transports))
    finally:
        with contextlib.suppress(FileNotFoundError):
            pid_file.unlink()


async def run_bot(settings: Settings, console: bool | None, demo: bool = False) -> int:
    if refused := cli_demo.refusal(settings, demo):
        print(f"error: {refused}", file=sys.stderr)
        return EXIT_REFUSED
    lock = DataDirLock.acquire(settings.data_dir, "running the bot")
    try:
        return await _run_locked(settings, True if demo else console, demo)
    finally:
        lock.release()


async def _run_locked(settings: Settings, console: bool | None, demo: bool) -> int:
    use_console = _wants_console(settings, console)
    key = _database_key(settings, use_console)
    library, problems = load_library(settings.content_dir)
    if library is None:
        _print_problems(problems)
        print("error: content has errors; the bot did not start", file=sys.stderr)
        return EXIT_CONTENT
    db = await open_database(settings, key)
    try:
        app = await _open_app(settings, db, library, demo)
        async with clustered(settings.database_url, app) as leadership:
            return await _run_app(settings, app, use_console, demo, leadership)
    finally:
        await db.close()


async def _run_app(
    settings: Settings, app: App, use_console: bool, demo: bool, leadership: Leadership | None
) -> int:
    """The App serving its transports; with PostgreSQL, one worker of several."""
    staff = await cli_demo.prepare(app, settings.data_dir) if demo else None
    if staff is not None:
        print(cli_demo.HOW, file=sys.stderr)
    transports = _transports(settings, app, use_console, staff, leadership)
    if not transports:
        print("error: no transport configured", file=sys.stderr)
        return 1
    for transport in transports:
        app.attach(transport)
    jobs = _safety_jobs(settings, app.db, app)
    jobs.start(app.scheduler)
    app.scheduler.start()
    log.info("started: %s", ", ".join(t.name for t in transports))
    try:
        async with (
            _health(settings, app, jobs),
            delivering(app, leadership, settings.database_url),
        ):
            await _serve(settings, app, transports)
    finally:
        jobs.stop()
        app.scheduler.shutdown()
        await app.outbox.close()
        await app.close()
    return 0


def _database_key(settings: Settings, use_console: bool) -> DbKey:
    """The console alone may make a key on a first run (for trying the bot on a laptop)."""
    key = resolve_db_key(settings.env, settings.data_dir, may_create=use_console)
    if key.created_at is not None:
        print(
            f"Created a new database key at {key.created_at} (mode 0600). "
            "A production deployment keeps the key elsewhere: set HRD_BOT_DB_KEY_FILE.",
            file=sys.stderr,
        )
    return key


async def _open_app(settings: Settings, db: Database, library: Library, demo: bool) -> App:
    return await App.open(
        db,
        library,
        sensitive_ttl=settings.sensitive_ttl,
        staff_rooms=settings.chats("HRD_BOT_STAFF_ROOMS") + cli_demo.rooms(demo),
        oncall=settings.chats("HRD_BOT_ONCALL"),
        exports=settings.data_dir / "exports",
        delivery=settings.delivery,
        staff_without_device=settings.telegram_staff_actions,
        staff_language=settings.staff_language,
        cached_sessions=0 if settings.database_url else 20_000,
    )


def _safety_jobs(settings: Settings, db: Database, app: App) -> SafetyJobs:
    leads, ladders = settings.chats("HRD_BOT_LEADS"), settings.ladders
    return SafetyJobs(
        db,
        escalation=Escalation.of(db, app.casework, leads=leads, ladders=ladders),
        casework=app.casework,
        sessions=app.sessions,
        checkins=app.checkins,
    )


@contextlib.asynccontextmanager
async def _health(settings: Settings, app: App, jobs: SafetyJobs) -> AsyncIterator[None]:
    """The health and metrics endpoint while the bot serves, when it is configured."""
    address = settings.health_address
    if address is None:
        yield
        return
    from bot.health.server import HealthServer  # lazy: admin commands need no web server

    server = HealthServer.of(app, lambda: jobs.running)
    try:
        await server.start(address)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(f"HRD_BOT_HEALTH_ADDRESS: cannot listen on {address}: {reason}") from None
    try:
        yield
    finally:
        await server.stop()


def validate_content(folder: Path, strict: bool) -> int:
    _, problems = load_library(folder)
    _print_problems(problems)
    errors = sum(not p.warning for p in problems)
    warnings = len(problems) - errors
    print(f"{folder}: {errors} errors, {warnings} warnings", file=sys.stderr)
    return 1 if errors or (strict and warnings) else 0


def reload_content(settings: Settings) -> int:
    loaded, problems = load_library(settings.content_dir)
    _print_problems(problems)
    if loaded is None:
        print("error: content has errors; the running bot keeps the old content", file=sys.stderr)
        return 1
    pid_file = settings.data_dir / "hrd-bot.pid"
    try:
        os.kill(int(pid_file.read_text()), signal.SIGHUP)
    except (FileNotFoundError, ValueError, ProcessLookupError):
        print(f"error: no running bot found ({pid_file})", file=sys.stderr)
        return 1
    print("reload sent to the running bot", file=sys.stderr)
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="hrd-bot", description=__doc__)
    commands = top.add_subparsers(dest="command")
    run = commands.add_parser("run", help="start the bot (the console when no token is set)")
    run.add_argument("--console", action=argparse.BooleanOptionalAction, default=None)
    run.add_argument(
        "--demo-team",
        action="store_true",
        help="try the whole loop on the console: a throw-away staff team; type 'staff: /cases'",
    )
    content = commands.add_parser("content", help="check or reload content files")
    content_commands = content.add_subparsers(dest="action", required=True)
    validate = content_commands.add_parser("validate", help="check content; exit 1 on errors")
    validate.add_argument("folder", nargs="?", type=Path)
    validate.add_argument("--strict", action="store_true", help="treat warnings as errors")
    content_commands.add_parser("reload", help="validate, then tell the running bot to reload")
    schema = content_commands.add_parser("schema", help="write JSON Schema files for editors")
    schema.add_argument("folder", nargs="?", type=Path)
    report = content_commands.add_parser("report", help="per language: missing, older than English")
    report.add_argument("--folder", type=Path)
    report.add_argument(
        "--stamp",
        nargs="+",
        type=Path,
        default=[],
        metavar="FILE",
        help="record that these translations match English as it is now",
    )
    cli_keys.register(commands)
    cli_data.register(commands)
    commands.add_parser("doctor", help="list what in this deployment is unsafe; exit 1 if any")
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    settings: Settings | None = None
    try:
        settings = Settings.from_env()
        setup_logging(settings.log_level)
        if args.command in cli_keys.COMMANDS:
            return cli_keys.dispatch(settings, args)
        if args.command == "doctor":
            return doctor.report(settings)
        if args.command in cli_data.COMMANDS:
            return cli_data.dispatch(settings, args)
        if args.command == "content" and args.action == "validate":
            return validate_content(args.folder or settings.content_dir, args.strict)
        if args.command == "content" and args.action == "schema":
            for path in write_schemas(args.folder or settings.content_dir / "_schema"):
                print(path)
            return 0
        if args.command == "content" and args.action == "report":
            return content_report.run(args.folder or settings.content_dir, args.stamp)
        if args.command == "content":
            return reload_content(settings)
        console, demo = getattr(args, "console", None), getattr(args, "demo_team", False)
        return asyncio.run(run_bot(settings, console, demo))
    except StorageFullError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_TEMPORARY
    except HrdBotError as exc:  # the tree in bot/errors.py: one line the operator can act on
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    except OSError as exc:
        return _os_error(exc, settings)
    except KeyboardInterrupt:
        return 130
    except Exception:
        log.critical("stopped by an unexpected error", exc_info=True)
        return EXIT_CRASHED


def _os_error(exc: OSError, settings: Settings | None) -> int:
    """A file-system failure outside the database (pid file, key file, folders)."""
    fault = classify(exc, settings.database_path) if settings else None
    if fault is None:
        print(f"error: {exc.strerror or exc} ({exc.filename or 'file system'})", file=sys.stderr)
        return EXIT_REFUSED
    print(f"error: {fault}", file=sys.stderr)
    return EXIT_TEMPORARY if isinstance(fault, StorageFullError) else EXIT_REFUSED
