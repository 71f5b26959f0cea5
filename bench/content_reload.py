"""Content reload benchmark: a generated corpus of 6 languages × 200 guides.

Prints the time to validate it (one `load_library`, as `hrd-bot content validate` does) and
to reload it into a running App (every file changed, and nothing changed), and message latency
p50/p99 at a fixed offered rate while full reloads run back to back, against the same load
without reloads, in alternating windows of one run.
Targets: under 1 s per reload; p99 during reloads under 2× the p99 without.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.pipeline import _latency, _percentile
from bot.app import App
from bot.content.cache import RACY_NS
from bot.content.loader import load_library
from bot.flood import FloodGuard
from bot.storage import Database, DbKey

CONTENT = Path(__file__).resolve().parents[1] / "content"
KEY = DbKey("5a" * 32)
EXTRA_LANGUAGES = {"pt": "Português", "de": "Deutsch"}


def generate(root: Path, guides: int = 200) -> Path:
    """The shipped four languages plus two copies of English, each with `guides` guides
    (the shipped ones and renamed copies of them)."""
    shutil.copytree(CONTENT, root, ignore=shutil.ignore_patterns("_schema", "*.md"))
    for code, name in EXTRA_LANGUAGES.items():
        shutil.copytree(root / "en", root / code)
        strings = root / code / "strings.yaml"
        strings.write_text(strings.read_text().replace("name: English", f"name: {name}", 1))
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        shipped = sorted((folder / "guides").glob("*.yaml"))
        for i in range(guides - len(shipped)):
            source = shipped[i % len(shipped)]
            guide_id = f"{source.stem}-{i}"
            text = source.read_text().replace(f"id: {source.stem}", f"id: {guide_id}", 1)
            (folder / "guides" / f"{guide_id}.yaml").write_text(text)
    return root


def _touch_all(root: Path) -> None:
    """Mark every file changed, so the next load reads and validates all of them again."""
    for path in root.rglob("*.yaml"):
        os.utime(path)


def _validate(root: Path) -> tuple[float, float]:
    """Wall and CPU seconds of one load (no other thread runs: CPU time is the loader's)."""
    started, cpu = time.perf_counter(), time.process_time()
    library, problems = load_library(root)
    if library is None:
        raise SystemExit("\n".join(map(str, problems)))
    return time.perf_counter() - started, time.process_time() - cpu


async def _reload(app: App, root: Path, *, every_file: bool) -> float:
    if every_file:
        await asyncio.to_thread(_touch_all, root)
    started = time.perf_counter()
    problems = await app.reload_content(root)
    if any(not p.warning for p in problems):
        raise SystemExit("\n".join(map(str, problems)))
    return time.perf_counter() - started


async def _reload_repeatedly(app: App, root: Path, stop: asyncio.Event) -> list[float]:
    times = []
    while not stop.is_set():
        times.append(await _reload(app, root, every_file=True))
    return times


async def _windows(
    app: App, root: Path, rounds: int, users: int, rate: float, seconds: float
) -> tuple[list[float], list[float], list[float]]:
    """Alternate windows without and with reloads, so both see the same machine."""
    steady: list[float] = []
    during: list[float] = []
    reloads: list[float] = []
    for _ in range(rounds):
        steady += await _latency(app, users, rate, seconds)
        stop = asyncio.Event()
        reloading = asyncio.create_task(_reload_repeatedly(app, root, stop))
        try:
            during += await _latency(app, users, rate, seconds)
        finally:
            stop.set()
        reloads += await reloading
    return steady, during, reloads


async def measure(
    users: int = 300, rate: float = 200, seconds: float = 3, rounds: int = 3
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        root = generate(folder / "content")
        files = sum(1 for _ in root.rglob("*.yaml"))
        await asyncio.sleep(RACY_NS / 1e9)  # files this fresh are read again, never reused
        validate = [_validate(root)]
        for _ in range(4):
            _touch_all(root)
            validate.append(_validate(root))
        library, _ = load_library(root)
        assert library is not None
        db = await Database.open(folder / "bench.db", KEY)
        try:
            app = await App.open(db, library)
            app.flood = FloodGuard(rate=1e9, burst=10**9)
            await _latency(app, users, rate, 1)  # warm up: sessions exist, caches filled
            steady, during, reloads = await _windows(app, root, rounds, users, rate, seconds)
            await asyncio.sleep(RACY_NS / 1e9)
            await _reload(app, root, every_file=False)
            unchanged = [await _reload(app, root, every_file=False) for _ in range(5)]
        finally:
            await db.close()
    return {
        "files": files,
        "validate_first_s": validate[0][0],
        "validate_median_s": statistics.median(wall for wall, _ in validate),
        "validate_cpu_s": statistics.median(cpu for _, cpu in validate),
        "load_average": os.getloadavg()[0],
        "reloads": len(reloads),
        "reload_median_s": statistics.median(reloads),
        "reload_max_s": max(reloads),
        "unchanged_median_s": statistics.median(unchanged),
        "rate": rate,
        "steady_p50_ms": _percentile(steady, 0.5),
        "steady_p99_ms": _percentile(steady, 0.99),
        "reload_p50_ms": _percentile(during, 0.5),
        "reload_p99_ms": _percentile(during, 0.99),
    }


def report(r: dict[str, Any]) -> str:
    return (
        f"content: 6 languages × 200 guides ({r['files']} files): validate "
        f"{r['validate_first_s']:.2f} s first, {r['validate_median_s']:.2f} s median of 5, "
        f"{r['validate_cpu_s']:.2f} s of CPU (every file read; target < 1 s)\n"
        f"content: {r['reloads']} reloads back to back, every file changed: median "
        f"{r['reload_median_s']:.2f} s, max {r['reload_max_s']:.2f} s (target < 1 s); "
        f"nothing changed: {r['unchanged_median_s']:.3f} s\n"
        f"content: at {r['rate']:.0f} msg/s offered, without reloads: "
        f"p50 {r['steady_p50_ms']:.2f} ms, p99 {r['steady_p99_ms']:.2f} ms\n"
        f"content: same load during reloads: p50 {r['reload_p50_ms']:.2f} ms, "
        f"p99 {r['reload_p99_ms']:.2f} ms; p99 ratio "
        f"{r['reload_p99_ms'] / r['steady_p99_ms']:.2f}× (target < 2×)\n"
        f"machine: load average {r['load_average']:.1f} on {os.cpu_count()} CPUs"
    )


if __name__ == "__main__":
    print(report(asyncio.run(measure())))
