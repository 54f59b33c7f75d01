"""The feeds' threads: one per run of a feed, each calling the live publisher (vip.live.run_feed)
and reporting what happened (segments stored, the run's end) to an inbox that the runner's loop
drains. A run checks its source again first: the registry may hold a source the API never saw.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Protocol

from agents.shared.sources import SourceError, redacted
from streams.records import LiveSegmentRecorded
from vip.feeds.core import RunEnded, StartRun, StopRun
from vip.feeds.sources import check_source
from vip.live.publisher import FeedSpec, FeedStats, SegmentCallback
from vip.settings import Settings

__all__ = ["FeedFunction", "FeedRuns", "SegmentSeen"]

log = logging.getLogger(__name__)


class FeedFunction(Protocol):
    """vip.live.run_feed, as the runner calls it: it counts segments by the callback."""

    def __call__(
        self,
        settings: Settings,
        spec: FeedSpec,
        stop: threading.Event,
        *,
        on_segment: SegmentCallback | None = None,
    ) -> FeedStats: ...


@dataclass(frozen=True)
class SegmentSeen:
    """A run stored a segment (the publisher has it on Kafka)."""

    feed_id: str
    generation: int
    record: LiveSegmentRecorded


@dataclass
class _Run:
    thread: threading.Thread
    stop: threading.Event


class FeedRuns:
    def __init__(self, settings: Settings, feed_function: FeedFunction) -> None:
        self._settings = settings
        self._feed_function = feed_function
        self._runs: dict[tuple[str, int], _Run] = {}
        self._inbox: queue.Queue[RunEnded | SegmentSeen] = queue.Queue()

    def start(self, command: StartRun) -> None:
        stop = threading.Event()
        thread = threading.Thread(
            target=self._run,
            args=(command, stop),
            name=f"vip-feed-{command.feed_id}",
            daemon=True,
        )
        self._runs[(command.feed_id, command.generation)] = _Run(thread, stop)
        thread.start()

    def stop(self, command: StopRun) -> None:
        run = self._runs.get((command.feed_id, command.generation))
        if run is not None:
            run.stop.set()

    def reports(self) -> list[RunEnded | SegmentSeen]:
        """What the runs reported since the last call, in order; ended runs are forgotten."""
        reports: list[RunEnded | SegmentSeen] = []
        while True:
            try:
                report = self._inbox.get_nowait()
            except queue.Empty:
                return reports
            if isinstance(report, RunEnded):
                self._runs.pop((report.feed_id, report.generation), None)
            reports.append(report)

    def join(self, timeout_s: float) -> list[RunEnded]:
        """Wait up to ``timeout_s`` for every run to end (each was asked to stop); the ones
        still going are told to stop once more and reported ended, so they can be recorded."""
        give_up = time.monotonic() + timeout_s
        for run in list(self._runs.values()):
            run.thread.join(max(0.0, give_up - time.monotonic()))
        stuck = []
        for (feed_id, generation), run in list(self._runs.items()):
            if run.thread.is_alive():
                log.warning("feed %s did not stop within %.0f s", feed_id, timeout_s)
                run.stop.set()
                stuck.append(RunEnded(feed_id, generation, f"did not stop in {timeout_s:.0f} s"))
        return stuck

    def _run(self, command: StartRun, stop: threading.Event) -> None:
        feed_id, registration = command.feed_id, command.registration
        error: str | None = None
        permanent = False

        def seen(record: LiveSegmentRecorded) -> None:
            self._inbox.put(SegmentSeen(feed_id, command.generation, record))

        try:
            check_source(self._settings, registration.source)
            spec = FeedSpec(
                feed_id=feed_id,
                source=registration.source,
                segment_seconds=registration.segment_seconds,
                realtime=registration.realtime,
            )
        except (SourceError, ValueError) as exc:
            error, permanent = str(exc), True
        else:
            try:
                stats = self._feed_function(self._settings, spec, stop, on_segment=seen)
                if stats.ended == "gave-up":  # its own reconnects failed: a crash to us
                    error = f"gave up reconnecting: {stats.last_error}"
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
        if error is not None:
            error = error.replace(registration.source, redacted(registration.source))
            if not stop.is_set():
                log.warning("feed %s: %s", feed_id, error)
        self._inbox.put(RunEnded(feed_id, command.generation, error, permanent))
