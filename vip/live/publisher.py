"""Run one live feed: read its source, cut it into segments at keyframes, store each segment
and publish a :class:`~streams.records.LiveSegmentRecorded` for it, reconnecting with backoff
when the source drops. :func:`run_feed` is what `vip live` and the feed registry call.

A feed started again under the same id continues from the last segment an earlier run
published on ``live.segments`` (vip.live.timeline.restart_after)."""

from __future__ import annotations

import logging
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from agents.shared.blob_store import create_blob_store
from streams.records import LiveSegmentRecorded
from vip.live.errors import LiveError, PublishFailed, SourceDropped, SourceUnavailable
from vip.live.history import KafkaSegmentHistory
from vip.live.sink import KafkaSegmentSink, SegmentSink
from vip.live.source import END_TOLERANCE_S, OpenedSource, SegmentWriter, SourcePacket
from vip.live.timeline import Backoff, Resume, SegmentPlanner, restart_after, resume_after_drop
from vip.settings import Settings

__all__ = ["FeedSpec", "FeedStats", "run_feed"]

log = logging.getLogger(__name__)

# A feed id is a video id downstream and a path segment in the blob store.
_FEED_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
# Packets this close to a boundary belong to it (timestamps are rounded to the microsecond).
_EPS = 1e-3

FeedEnd = Literal["source-ended", "stopped", "gave-up"]


@dataclass(frozen=True)
class FeedSpec:
    feed_id: str
    source: str
    segment_seconds: float = 5.0
    realtime: bool = True

    def __post_init__(self) -> None:
        if not _FEED_ID.match(self.feed_id) or self.feed_id in {".", ".."}:
            raise ValueError(
                f"feed id {self.feed_id!r} must be 1-64 letters, digits, '_', '.' or '-'"
            )
        if not self.source.strip():
            raise ValueError("feed source must not be empty")
        if self.segment_seconds <= 0:
            raise ValueError(f"segment_seconds must be positive, got {self.segment_seconds}")


@dataclass
class FeedStats:
    """What a feed did. Updated by the feed's thread while it runs; read it after."""

    segments_published: int = 0
    reconnects: int = 0
    # Connections that failed to open or dropped mid-stream.
    drops: int = 0
    # The end of the last published segment on the feed's timeline (seconds).
    timeline_end: float = 0.0
    last_error: str | None = None
    ended: FeedEnd | None = None
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    # The index this run started at: past 0 when it continued an earlier run of the feed.
    first_index: int = 0


SegmentCallback = Callable[[LiveSegmentRecorded], None]
# The last segment an earlier run of a feed published (None: none did); PublishFailed when
# it cannot be read.
LastSegment = Callable[[str], LiveSegmentRecorded | None]


def run_feed(
    settings: Settings,
    spec: FeedSpec,
    stop: threading.Event,
    *,
    backoff: Backoff | None = None,
    sink: SegmentSink | None = None,
    on_segment: SegmentCallback | None = None,
    last_segment: LastSegment | None = None,
) -> FeedStats:
    """Publish ``spec``'s segments until the source ends or ``stop`` is set; a source that
    fails to open or drops is tried again after :class:`Backoff`'s delays, and the feed gives
    up after its ``max_tries`` failures in a row. ``on_segment`` sees each published record.
    The feed continues from ``last_segment(feed_id)`` (default: read from ``live.segments``;
    pass ``lambda _: None`` to start at segment 0)."""
    policy = backoff or Backoff()
    if last_segment is None:
        last_segment = KafkaSegmentHistory(settings)
    if sink is None:
        blobs = create_blob_store(
            settings.blob_store,
            settings.blobs_dir,
            settings.s3_bucket,
            settings.s3_prefix,
            settings.s3_endpoint_url,
        )
        sink = KafkaSegmentSink(settings, blobs)
    feed = _Feed(spec, sink, stop, on_segment, last_segment)
    failures = 0
    try:
        while not stop.is_set():
            published_before = feed.stats.segments_published
            try:
                if feed.play_once():
                    feed.stats.ended = "source-ended"
                    break
            except (SourceUnavailable, SourceDropped, PublishFailed) as exc:
                feed.stats.drops += 1
                feed.stats.last_error = str(exc)
                progressed = feed.stats.segments_published > published_before
                failures = 1 if progressed else failures + 1
                if policy.gives_up_after(failures):
                    log.error("feed %s: gave up after %d failures: %s", spec.feed_id, failures, exc)
                    feed.stats.ended = "gave-up"
                    break
                delay = policy.delay_s(failures, random.random())  # noqa: S311 - jitter
                log.warning("feed %s: %s; reconnecting in %.1fs", spec.feed_id, exc, delay)
                if stop.wait(delay):
                    break
                feed.stats.reconnects += 1
        if feed.stats.ended is None:
            feed.stats.ended = "stopped"
    finally:
        sink.close()
    return feed.stats


class _Feed:
    """One feed's position on its timeline, kept across connections."""

    def __init__(
        self,
        spec: FeedSpec,
        sink: SegmentSink,
        stop: threading.Event,
        on_segment: SegmentCallback | None,
        last_segment: LastSegment,
    ) -> None:
        self.spec = spec
        self.stats = FeedStats()
        self._sink = sink
        self._stop = stop
        self._on_segment = on_segment
        self._last_segment = last_segment
        # What an earlier run published last; read once, before the first connection.
        self._earlier: LiveSegmentRecorded | None = None
        self._earlier_read = False
        self._next_index = 0
        self._started = time.monotonic()
        # A seekable source's clock reading at timeline 0, fixed by its first connection.
        self._seekable_zero: float | None = None

    def play_once(self) -> bool:
        """One connection: True when the feed is over (source ended, or stopped)."""
        if not self._earlier_read:
            self._earlier = self._last_segment(self.spec.feed_id)
            self._earlier_read = True
        with OpenedSource(self.spec.source) as opened:
            if self._earlier is not None and self.stats.segments_published == 0:
                resume = self._restart(opened)
            else:
                resume = resume_after_drop(
                    self._next_index,
                    self.stats.timeline_end,
                    opened.seekable,
                    time.monotonic() - self._started,
                )
            if opened.seekable and resume.seek_to and self._seekable_zero is not None:
                opened.seek(self._seekable_zero + resume.seek_to)
            return self._cut(opened, resume)

    def _restart(self, opened: OpenedSource) -> Resume:
        """Continue after the segment an earlier run published (see restart_after)."""
        resume = restart_after(self._earlier, self.spec.source, opened.seekable, _now())
        self._next_index = self.stats.first_index = resume.segment_index
        # A live timeline keeps pace with the wall clock from where it continues.
        self._started = time.monotonic() - resume.timeline_start
        if resume.seek_to is not None:
            self._seekable_zero = opened.start_time
        if resume.segment_index:
            log.info(
                "feed %s: continues at segment %d, %.2fs on its timeline",
                self.spec.feed_id,
                resume.segment_index,
                resume.timeline_start,
            )
        return resume

    def _cut(self, opened: OpenedSource, resume: Resume) -> bool:
        spec = self.spec
        planner = SegmentPlanner(spec.segment_seconds, opened.duration if opened.seekable else None)
        pace = spec.realtime and opened.seekable
        zero: float | None = self._seekable_zero if opened.seekable else None
        writer: SegmentWriter | None = None
        seg_start = resume.timeline_start
        seg_wall = datetime.now(UTC)
        media_end = resume.timeline_start
        wall_zero: float | None = None
        try:
            for item in opened.packets():
                if zero is None:  # first packet of a live connection, or of a seekable source
                    if not item.is_keyframe:
                        continue
                    zero = item.time - resume.timeline_start
                    if opened.seekable:
                        self._seekable_zero = zero
                t = round(item.time - zero, 6)
                if writer is None:
                    if not (item.is_keyframe and t >= resume.timeline_start - _EPS):
                        continue
                    writer, seg_start, seg_wall = SegmentWriter(opened, item.time), t, _now()
                elif item.is_keyframe and planner.cuts_at(seg_start, t):
                    self._publish(writer, seg_start, t, seg_wall, final=False)
                    writer, seg_start, seg_wall = SegmentWriter(opened, item.time), t, _now()
                if t < seg_start - _EPS:
                    continue  # audio demuxed ahead of the segment's first keyframe
                if pace:
                    wall_zero = wall_zero if wall_zero is not None else time.monotonic() - t
                    if self._stop.wait(max(0.0, wall_zero + t - time.monotonic())):
                        break
                elif self._stop.is_set():
                    break
                if item.is_video:
                    media_end = max(media_end, t + _duration_s(item))
                writer.write(item)
        except LiveError:
            if writer is not None:
                writer.discard()
            raise
        media_end = round(media_end, 6)
        if writer is None:
            if self._stop.is_set():
                return True
            raise SourceDropped(f"{spec.source}: no keyframe after {resume.timeline_start:.3f}s")
        if self._stop.is_set():
            self._publish(writer, seg_start, max(media_end, seg_start), seg_wall, final=True)
            return True
        if opened.seekable:
            declared = opened.duration or 0.0
            if media_end < declared - END_TOLERANCE_S:
                writer.discard()
                raise SourceDropped(
                    f"{spec.source}: packets stopped at {media_end:.2f}s of {declared:.2f}s"
                )
            self._publish(writer, seg_start, media_end, seg_wall, final=True)
            return True
        # A live source that ends has dropped: keep what came, then reconnect.
        self._publish(writer, seg_start, media_end, seg_wall, final=False)
        raise SourceDropped(f"{spec.source}: the stream ended at {media_end:.2f}s")

    def _publish(
        self, writer: SegmentWriter, start: float, end: float, started_at: datetime, final: bool
    ) -> None:
        data = writer.finish()
        index = self._next_index
        uri = self._sink.store(self.spec.feed_id, index, data)
        record = LiveSegmentRecorded(
            video_id=self.spec.feed_id,
            segment_index=index,
            start=start,
            end=end,
            started_at=started_at,
            uri=uri,
            source=self.spec.source,
            final=final,
        )
        self._sink.publish(record)
        self._next_index = index + 1
        self.stats.segments_published += 1
        self.stats.timeline_end = end
        log.info("feed %s: segment %d [%.2f, %.2f) published", self.spec.feed_id, index, start, end)
        if self._on_segment is not None:
            self._on_segment(record)


def _duration_s(item: SourcePacket) -> float:
    packet = item.packet
    if packet.duration and packet.time_base is not None:
        return float(packet.duration * packet.time_base)
    return 0.0


def _now() -> datetime:
    return datetime.now(UTC)
