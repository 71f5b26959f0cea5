"""Admins change content and reload it into the running bot, without a restart."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import CONTENT
from tests.processes import bot_env


def _env(data: Path, content: Path) -> dict[str, str]:
    return bot_env(data, content)


def _reload(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", "content", "reload"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_reload_swaps_good_content_and_refuses_broken(tmp_path: Path) -> None:
    content = tmp_path / "content"
    shutil.copytree(CONTENT, content)
    env = _env(tmp_path / "data", content)
    bot = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "run"],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        pid_file = tmp_path / "data" / "hrd-bot.pid"
        deadline = time.monotonic() + 20
        while not pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        strings = content / "en" / "strings.yaml"
        strings.write_text(strings.read_text().replace("How can I help?", "Reloaded menu?"))
        assert _reload(env).returncode == 0
        time.sleep(0.5)
        (content / "en" / "guides" / "phishing.yaml").write_text("id: [broken\n")
        broken = _reload(env)
        assert broken.returncode == 1
        assert "phishing.yaml:2: YAML syntax" in broken.stderr
        out, _ = bot.communicate(input=b"1\n", timeout=30)
    finally:
        bot.kill()
    assert "Reloaded menu?" in out.decode()
    assert bot.returncode == 0


def test_reload_without_a_running_bot_says_so(tmp_path: Path) -> None:
    run = _reload(_env(tmp_path / "data", CONTENT))
    assert run.returncode == 1
    assert "no running bot" in run.stderr
