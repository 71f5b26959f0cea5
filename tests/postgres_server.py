"""A real PostgreSQL server from Debian's packages, on 127.0.0.1, for the tests' whole run.

The server runs as the `postgres` account when the tests run as root (PostgreSQL refuses
root), from a throw-away cluster under the system's temporary folder, with fsync off:
a test's crash is a killed bot, never a killed server. Each test gets a schema of its
own (`fresh_schema`), so tests share one server and never see each other's rows.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

__all__ = ["PgServer", "bin_dir", "fresh_schema", "running_server"]

USER = "hrdbot"


def bin_dir() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: p.parts[-3])
    if not found:
        raise RuntimeError("PostgreSQL is not installed: apt-get install postgresql (.ci/run does)")
    return found[-1].parent


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True, slots=True)
class PgServer:
    port: int
    root: Path

    @property
    def url(self) -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{USER}"

    def schema_url(self, schema: str) -> str:
        return f"{self.url}?options=-csearch_path%3D{schema}"


def _as_owner() -> tuple[list[str], int | None]:
    """A prefix that runs a command as `postgres` when we are root, and that account's uid."""
    if os.geteuid() != 0:
        return [], None
    return ["runuser", "-u", "postgres", "--"], pwd.getpwnam("postgres").pw_uid


def _wait_ready(port: int, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"PostgreSQL stopped at start:\n{log.read_text()[-2000:]}")
        try:
            with psycopg.connect(
                f"postgresql://{USER}@127.0.0.1:{port}/postgres", connect_timeout=2
            ):
                return
        except psycopg.OperationalError:
            time.sleep(0.1)
    raise RuntimeError("PostgreSQL did not accept connections within 30 s")


@contextmanager
def running_server() -> Iterator[PgServer]:
    """Make a cluster, start it on a free loopback port, stop and remove it afterwards."""
    bins = bin_dir()
    prefix, uid = _as_owner()
    root = Path(tempfile.mkdtemp(prefix="hrd-bot-pg-"))
    if uid is not None:
        os.chown(root, uid, -1)
    data, log, port = root / "data", root / "server.log", _free_port()
    initdb = [str(bins / "initdb"), "-D", str(data), "-U", USER, "-A", "trust", "--no-sync"]
    subprocess.run([*prefix, *initdb], check=True, capture_output=True)
    options = ["-c", "fsync=off", "-c", "full_page_writes=off", "-c", "max_connections=200"]
    start = [str(bins / "postgres"), "-D", str(data), "-h", "127.0.0.1", "-p", str(port)]
    with open(log, "wb") as sink:
        server = subprocess.Popen([*prefix, *start, "-k", str(root), *options], stderr=sink)
    try:
        _wait_ready(port, server, log)
        with psycopg.connect(
            f"postgresql://{USER}@127.0.0.1:{port}/postgres", autocommit=True
        ) as c:
            c.execute(f"CREATE DATABASE {USER}")
        yield PgServer(port, root)
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        shutil.rmtree(root, ignore_errors=True)


def fresh_schema(server: PgServer) -> str:
    """A new empty schema; its URL (`server.schema_url`) makes it the only one a bot sees."""
    name = "t_" + secrets.token_hex(6)
    with psycopg.connect(server.url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
    return name
