"""`vip live SOURCE`: run one feed in the foreground until the source ends or Ctrl-C."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Annotated, Any

import typer

from vip.settings import load_settings

__all__ = ["live"]


def live(
    source: Annotated[
        str,
        typer.Argument(help="rtsp/rtmp/http(s)/HLS URL, capture device (/dev/video0) or file"),
    ],
    feed: Annotated[
        str | None, typer.Option("--feed", help="Feed id (its video id); default: from SOURCE")
    ] = None,
    segment_seconds: Annotated[float, typer.Option(min=0.5, help="Target segment length")] = 5.0,
    realtime: Annotated[
        bool, typer.Option("--realtime/--no-realtime", help="Play files at their own pace")
    ] = True,
) -> None:
    """Cut a live source into segments and publish them to live.segments; the worker's live
    stage makes each one a searchable moment while the feed runs."""
    from vip.live.errors import LiveError
    from vip.live.publisher import FeedSpec, run_feed

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        spec = FeedSpec(feed or default_feed_id(source), source, segment_seconds, realtime)
    except ValueError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from exc
    stop = threading.Event()

    def interrupt(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    typer.echo(f"feed {spec.feed_id}: {source}")
    try:
        stats = run_feed(load_settings(), spec, stop)
    except LiveError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from exc
    continued = f" from segment {stats.first_index}" if stats.first_index else ""
    typer.echo(
        f"feed {spec.feed_id}: {stats.ended}; {stats.segments_published} segment(s){continued} "
        f"up to {stats.timeline_end:.2f}s, {stats.reconnects} reconnect(s)"
    )
    if stats.ended == "gave-up":
        typer.secho(f"last error: {stats.last_error}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1)


def default_feed_id(source: str) -> str:
    """A readable, valid feed id from the source: ``live-`` and its last path part."""
    tail = source.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0] or "feed"
    cleaned = "".join(c if c.isalnum() or c in "_.-" else "-" for c in tail).strip(".")
    return f"live-{cleaned or 'feed'}"[:64]
