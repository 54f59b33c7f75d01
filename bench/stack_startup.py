"""Start-up time and resident memory of each local service, cold (empty data) and warm.

    uv run python bench/stack_startup.py [--state-dir DIR]

Uses a throwaway state directory (so "cold" means fresh data dirs; downloaded jars and
virtual environments in the cache are reused, as on any second run). Ports are the defaults,
so stop a running stack first.
"""

from __future__ import annotations

import argparse
import re
import shutil
import tempfile
import time
from pathlib import Path

from vip.settings import load_settings
from vip.stack import stack

READY = re.compile(r"^(\w+): ready in ([\d.]+)s$")


def start(settings_dir: Path) -> tuple[dict[str, float], float]:
    settings = load_settings(state_dir=settings_dir)
    ready: dict[str, float] = {}

    def echo(line: str) -> None:
        match = READY.match(line)
        if match:
            ready[match[1]] = float(match[2])

    began = time.monotonic()
    stack.up(settings, echo=echo)
    return ready, time.monotonic() - began


def rss(settings_dir: Path) -> dict[str, float]:
    rows = stack.manager(load_settings(state_dir=settings_dir), echo=lambda _: None).status()
    return {row.name: row.rss_mb or 0.0 for row in rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--state-dir", type=Path)
    args = parser.parse_args()
    state = args.state_dir or Path(tempfile.mkdtemp(prefix="vip-startup-"))
    manager = stack.manager(load_settings(state_dir=state), echo=lambda _: None)
    try:
        cold, cold_total = start(state)
        cold_rss = rss(state)
        manager.down()
        warm, warm_total = start(state)
        warm_rss = rss(state)
    finally:
        manager.down()
        if args.state_dir is None:
            shutil.rmtree(state, ignore_errors=True)
    print(f"{'service':<8} {'cold ready s':>12} {'warm ready s':>12} {'RSS MB':>8}")
    for name in cold:
        print(
            f"{name:<8} {cold[name]:>12.1f} {warm.get(name, 0):>12.1f} "
            f"{max(cold_rss.get(name, 0), warm_rss.get(name, 0)):>8.0f}"
        )
    print(f"{'total':<8} {cold_total:>12.1f} {warm_total:>12.1f} {sum(warm_rss.values()):>8.0f}")


if __name__ == "__main__":
    main()
