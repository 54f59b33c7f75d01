"""`vip feeds run`: the feed runner in the foreground, until SIGTERM or Ctrl-C."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

import typer

app = typer.Typer(
    no_args_is_help=True,
    help="Live feeds: run the registered ones (register them with POST /v1/feeds).",
)
log = logging.getLogger(__name__)


@app.command("run")
def run() -> None:
    """Run every registered feed this runner is given (one consumer group shares them out),
    until SIGTERM or Ctrl-C; then stop them all and record them as stopped."""
    from vip.feeds.runner import FeedRunner
    from vip.settings import load_settings

    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        log.info("feed runner: %s, stopping the feeds", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    FeedRunner(load_settings()).run(stop)
