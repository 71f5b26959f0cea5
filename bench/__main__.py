"""`python -m bench`: every benchmark, one after another, each in its own process."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

BENCHES = (
    "bench.pipeline",
    "bench.telegram_path",
    "bench.reply_latency",
    "bench.sos_latency",
    "bench.sos_latency_matrix",
    "bench.outbox",
    "bench.matrix_path",
    "bench.sealing",
    "bench.durability",
    "bench.retention",
    "bench.content_reload",
    "bench.webhook_workers",
)


def main() -> int:
    failed = 0
    for name in BENCHES:
        if importlib.util.find_spec(name) is None:
            continue
        print(f"== {name}", flush=True)
        failed += subprocess.run([sys.executable, "-m", name], check=False).returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
