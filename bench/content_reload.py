"""Content reload benchmark: a generated corpus of 6 languages × 200 guides.

Prints the time to validate it (one `load_library` in this process, as `hrd-bot content
validate` does, every file read), and message latency p50/p99 at a fixed offered rate (through
the App, as `bench/pipeline.py`) while reloads run back to back, either with every file
changed or with one guide changed, against the same load without reloads: windows of the
three alternate in one run, so all see the same machine. Also the reload times, and one with
nothing changed, and the first one after start (done before the windows: it starts the loader
process, whose cache of unchanged files is then empty).

"Every file changed" swaps each language folder with a copy in which every file's text
differs (a title or name gets a mark), so every file is parsed and validated again and every
piece of the library travels from the loader process to the bot (the report counts the guides
that came anew); "one guide changed" marks and unmarks one guide's title in turn.
Targets: under 1 s per reload; p99 during reloads under 2× the p99 without.
"""

from __future__ import annotations

import asyncio
import functools
import os
import re
import shutil
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench.pipeline import _latency, _percentile
from bot.app import App
from bot.content.cache import RACY_NS
from bot.content.loader import load_library
from bot.conversation.flood import FloodGuard
from bot.storage import Database, DbKey

CONTENT = Path(__file__).resolve().parents[1] / "content"
KEY = DbKey("5a" * 32)
SHIPPED = ("en", "es", "fr", "ar")
"""Four shipped languages and two copies of English: the corpus issue 9's targets name
(6 × 200), kept the same as languages are added to `content/`."""
EXTRA_LANGUAGES = {"pt": "Português", "de": "Deutsch"}


def generate(root: Path, guides: int = 200) -> Path:
    """Four shipped languages plus two copies of English, each with `guides` guides
    (the shipped ones and renamed copies of them)."""
    root.mkdir(parents=True, exist_ok=True)
    for code in SHIPPED:
        shutil.copytree(CONTENT / code, root / code)
    for code, name in EXTRA_LANGUAGES.items():
        shutil.copytree(root / "en", root / code)
        for guide in (root / code / "guides").glob("*.yaml"):  # a topic is English's alone
            guide.write_text(_TOPIC.sub("", guide.read_text()))
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


_TOPIC = re.compile(r"^topic: .*\n", re.MULTILINE)
_MARKABLE = re.compile(
    r"^(\s*(?:- )?(?:title|name|label|text): [^\"'|>\[{&*!%@`#\s].*)$", re.MULTILINE
)
_MARKABLE_QUOTED = re.compile(
    r'^(\s*(?:- )?(?:title|name|label|text): "[^"\n]*)("\s*)$', re.MULTILINE
)


def _marked(text: str, mark: str) -> tuple[str, int]:
    """`text` with its first plain or double-quoted title, name, label or text marked."""
    found, count = _MARKABLE.subn(rf"\1 {mark}", text, count=1)
    if count:
        return found, count
    return _MARKABLE_QUOTED.subn(rf"\1 {mark}\2", text, count=1)


def variant(root: Path, into: Path) -> Path:
    """A copy of the corpus in which every file's text differs: its first plain title,
    name, label or text gets a mark."""
    shutil.copytree(root, into)
    for path in into.rglob("*.yaml"):
        text, found = _marked(path.read_text(encoding="utf-8"), "(b)")
        if not found:
            raise SystemExit(f"{path}: nothing to mark")
        path.write_text(text, encoding="utf-8")
    return into


def _swap(root: Path, other: Path) -> None:
    """Every language folder of `root` exchanged with the one in `other`."""
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        aside = other / f".{folder.name}"
        folder.rename(aside)
        (other / folder.name).rename(folder)
        aside.rename(other / folder.name)


@functools.cache
def _files(root: Path) -> tuple[Path, ...]:
    return tuple(root.rglob("*.yaml"))


def _touch(paths: tuple[Path, ...]) -> None:
    """Mark files changed, so the next load reads and validates them again."""
    for path in paths:
        os.utime(path)


def _unchanged() -> None:
    pass


def _edit(path: Path) -> Change:
    """A change that marks the file's first title (or unmarks it), in place."""
    texts = [path.read_text(encoding="utf-8")]
    texts.append(_marked(texts[0], "(c)")[0])
    turn = iter(range(1 << 62))

    def change() -> None:
        path.write_text(texts[next(turn) % 2], encoding="utf-8")

    return change


def _validate(root: Path) -> tuple[float, float]:
    """Wall and CPU seconds of one load (no other thread runs: CPU time is the loader's)."""
    started, cpu = time.perf_counter(), time.process_time()
    library, problems = load_library(root)
    if library is None:
        raise SystemExit("\n".join(map(str, problems)))
    return time.perf_counter() - started, time.process_time() - cpu


Change = Callable[[], None]


def _guides(app: App) -> list[object]:
    return [g for pack in app.library.packs.values() for g in pack.guides.values()]


async def _reload(
    app: App, root: Path, change: Change, count: bool = False
) -> tuple[float, float | None]:
    """Seconds for one reload after `change`; and, if `count`, how many guides came anew
    (counting takes the event loop's time: done once per window)."""
    await asyncio.to_thread(change)
    before = {id(guide) for guide in _guides(app)} if count else set()
    started = time.perf_counter()
    problems = await app.reload_content(root)
    took = time.perf_counter() - started
    if any(not p.warning for p in problems):
        raise SystemExit("\n".join(map(str, problems)))
    if not count:
        return took, None
    return took, sum(id(guide) not in before for guide in _guides(app))


async def _with_reloads(
    app: App, root: Path, change: Change, load: Callable[[], Awaitable[list[float]]]
) -> tuple[list[float], list[tuple[float, float | None]]]:
    """Message latencies under `load` while reloads run back to back; and the reloads."""
    stop = asyncio.Event()

    async def reload_repeatedly() -> list[tuple[float, float | None]]:
        times = [await _reload(app, root, change, count=True)]
        while not stop.is_set():
            times.append(await _reload(app, root, change))
        return times

    reloading = asyncio.create_task(reload_repeatedly())
    try:
        latencies = await load()
    finally:
        stop.set()
    return latencies, await reloading


async def _windows(
    app: App, root: Path, other: Path, rounds: int, users: int, rate: float, seconds: float
) -> dict[str, list[float]]:
    """Alternate windows without reloads, with full reloads (every file changed) and with
    reloads after one guide changed, so all see the same machine."""
    found: dict[str, list[float]] = {
        k: [] for k in ("steady", "full", "full_s", "full_new", "one", "one_s", "one_new")
    }
    changes: dict[str, Change] = {
        "one": _edit(root / "es" / "guides" / "phishing.yaml"),
        "full": functools.partial(_swap, root, other),
    }
    for _ in range(rounds):
        found["steady"] += await _latency(app, users, rate, seconds)
        for name, change in changes.items():
            latencies, reloads = await _with_reloads(
                app, root, change, lambda: _latency(app, users, rate, seconds)
            )
            found[name] += latencies
            found[f"{name}_s"] += [took for took, _ in reloads]
            found[f"{name}_new"] += [new for _, new in reloads if new is not None]
    return found


async def measure(
    users: int = 300, rate: float = 200, seconds: float = 3, rounds: int = 3
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        root = generate(folder / "content")
        other = variant(root, folder / "variant")
        await asyncio.sleep(RACY_NS / 1e9)  # files this fresh are read again, never reused
        validate = [_validate(root)]
        for _ in range(4):
            _touch(_files(root))
            validate.append(_validate(root))
        library, _ = load_library(root)
        assert library is not None
        db = await Database.open(folder / "bench.db", KEY)
        try:
            app = await App.open(db, library)
            app.flood = FloodGuard(rate=1e9, burst=10**9)
            await _latency(app, users, rate, 1)  # warm up: sessions exist, caches filled
            first, _ = await _reload(app, root, _unchanged)  # starts the loader process
            found = await _windows(app, root, other, rounds, users, rate, seconds)
            await asyncio.sleep(RACY_NS / 1e9)
            await _reload(app, root, _unchanged)
            unchanged = [(await _reload(app, root, _unchanged))[0] for _ in range(5)]
        finally:
            await app.close()
            await db.close()
    result: dict[str, Any] = {
        "files": len(_files(root)),
        "validate_first_s": validate[0][0],
        "validate_median_s": statistics.median(wall for wall, _ in validate),
        "validate_cpu_s": statistics.median(cpu for _, cpu in validate),
        "load_average": os.getloadavg()[0],
        "unchanged_median_s": statistics.median(unchanged),
        "first_s": first,
        "rate": rate,
    }
    for name in ("steady", "full", "one"):
        result[f"{name}_p50_ms"] = _percentile(found[name], 0.5)
        result[f"{name}_p99_ms"] = _percentile(found[name], 0.99)
    for name in ("full", "one"):
        result[f"{name}_reloads"] = len(found[f"{name}_s"])
        result[f"{name}_median_s"] = statistics.median(found[f"{name}_s"])
        result[f"{name}_max_s"] = max(found[f"{name}_s"])
        result[f"{name}_new"] = statistics.median(found[f"{name}_new"])
    return result


def report(r: dict[str, Any]) -> str:
    lines = [
        f"content: 6 languages × 200 guides ({r['files']} files): validate "
        f"{r['validate_first_s']:.2f} s first, {r['validate_median_s']:.2f} s median of 5, "
        f"{r['validate_cpu_s']:.2f} s of CPU (every file read; target < 1 s)",
        f"content: at {r['rate']:.0f} msg/s offered, without reloads: "
        f"p50 {r['steady_p50_ms']:.2f} ms, p99 {r['steady_p99_ms']:.2f} ms",
    ]
    for name, what in (("full", "every file changed"), ("one", "one guide changed")):
        lines.append(
            f"content: {r[f'{name}_reloads']} reloads back to back, {what} "
            f"({r[f'{name}_new']:.0f} guides new each): median "
            f"{r[f'{name}_median_s']:.2f} s, max {r[f'{name}_max_s']:.2f} s (target < 1 s); "
            f"messages meanwhile: p50 {r[f'{name}_p50_ms']:.2f} ms, "
            f"p99 {r[f'{name}_p99_ms']:.2f} ms = "
            f"{r[f'{name}_p99_ms'] / r['steady_p99_ms']:.2f}× (target < 2×)"
        )
    lines.append(
        f"content: first reload after start (starts the loader process, which reads every "
        f"file): {r['first_s']:.2f} s; reload with nothing changed: "
        f"{r['unchanged_median_s']:.3f} s; machine: "
        f"load average {r['load_average']:.1f} on {os.cpu_count()} CPUs"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(asyncio.run(measure())))
