"""A throwaway Synapse (from PyPI) on 127.0.0.1, for the Matrix tests and the bench.

SQLite, no federation, registration by shared secret, rate limits raised so a test
burst is not throttled, WARNING logs, everything in one temporary folder. It is
stopped by its own PID, never by name.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Account", "Synapse"]

SERVER_NAME = "hrd.test"
_FAST = {"per_second": 10_000, "burst_count": 10_000}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _config(root: Path, port: int, secret: str) -> dict[str, Any]:
    return {
        "server_name": SERVER_NAME,
        "listeners": [
            {
                "port": port,
                "bind_addresses": ["127.0.0.1"],
                "type": "http",
                "tls": False,
                "x_forwarded": False,
                "resources": [{"names": ["client"], "compress": False}],
            }
        ],
        "database": {"name": "sqlite3", "args": {"database": str(root / "homeserver.db")}},
        "log_config": str(root / "log.yaml"),
        "media_store_path": str(root / "media"),
        "signing_key_path": str(root / "signing.key"),
        "report_stats": False,
        "trusted_key_servers": [],
        "suppress_key_server_warning": True,
        "federation_domain_whitelist": [],
        "registration_shared_secret": secret,
        "enable_registration": True,
        "enable_registration_without_verification": True,
        "bcrypt_rounds": 4,
        "presence": {"enabled": False},
        "url_preview_enabled": False,
        "macaroon_secret_key": secrets.token_hex(16),
        "form_secret": secrets.token_hex(16),
        "rc_message": _FAST,
        "rc_registration": _FAST,
        "rc_login": {"address": _FAST, "account": _FAST, "failed_attempts": _FAST},
        "rc_joins": {"local": _FAST, "remote": _FAST},
        "rc_joins_per_room": _FAST,
        "rc_invites": {"per_room": _FAST, "per_user": _FAST, "per_issuer": _FAST},
        "rc_key_requests": _FAST,
        "rc_room_creation": _FAST,
        "rc_admin_redaction": _FAST,
    }


_LOG_CONFIG = {
    "version": 1,
    "formatters": {"plain": {"format": "%(asctime)s %(name)s %(levelname)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"level": "WARNING", "handlers": ["console"]},
    "disable_existing_loggers": False,
}


@dataclass(frozen=True, slots=True)
class Account:
    user_id: str
    password: str
    access_token: str
    device_id: str


class Synapse:
    """`start()` returns once the client API answers; `stop()` ends the process it started."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = _free_port()
        self.secret = secrets.token_hex(16)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def database(self) -> Path:
        return self.root / "homeserver.db"

    def start(self, wait: float = 60.0) -> Synapse:
        self.root.mkdir(parents=True, exist_ok=True)
        config = self.root / "homeserver.yaml"
        config.write_text(json.dumps(_config(self.root, self.port, self.secret)))
        (self.root / "log.yaml").write_text(json.dumps(_LOG_CONFIG))
        command = [sys.executable, "-m", "synapse.app.homeserver", "-c", str(config)]
        subprocess.run([*command, "--generate-keys"], check=True, capture_output=True)
        log = (self.root / "synapse.log").open("wb")
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        self._wait_ready(wait)
        return self

    def _wait_ready(self, wait: float) -> None:
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"Synapse exited; see {self.root / 'synapse.log'}")
            try:
                self._request("GET", "/_matrix/client/versions")
                return
            except OSError:
                time.sleep(0.1)
        raise TimeoutError("Synapse did not answer in time")

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def register(self, localpart: str, password: str | None = None) -> Account:
        """A new user through the shared-secret admin API (no captcha, no e-mail)."""
        password = password or secrets.token_hex(12)
        nonce = self._request("GET", "/_synapse/admin/v1/register")["nonce"]
        message = b"\x00".join([nonce.encode(), localpart.encode(), password.encode(), b"notadmin"])
        mac = hmac.new(self.secret.encode(), message, hashlib.sha1).hexdigest()
        body = {"nonce": nonce, "username": localpart, "password": password, "mac": mac}
        answer = self._request("POST", "/_synapse/admin/v1/register", body)
        return Account(answer["user_id"], password, answer["access_token"], answer["device_id"])

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=15)
