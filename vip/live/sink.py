"""Adapters a feed publishes through: the blob store for segment files, Kafka for records."""

from __future__ import annotations

from typing import Protocol

from agents.shared.blob_store import BlobError, BlobStore
from agents.shared.delivery import NotDelivered, deliver, keyed_producer
from streams import topics
from streams.records import LiveSegmentRecorded, encode
from vip.live.errors import PublishFailed
from vip.settings import Settings

__all__ = ["KafkaSegmentSink", "SegmentSink", "segment_key"]


def segment_key(feed_id: str, segment_index: int) -> str:
    """The segment's blob key: one per index, so a re-sent segment overwrites itself."""
    return f"live/{feed_id}/{segment_index:05d}.mp4"


class SegmentSink(Protocol):
    def store(self, feed_id: str, segment_index: int, data: bytes) -> str:
        """Write the segment's MP4; returns its URI."""

    def publish(self, record: LiveSegmentRecorded) -> None:
        """Send the record and wait until Kafka has it; PublishFailed says why not."""

    def close(self) -> None: ...


class KafkaSegmentSink:
    """Segments to the blob store, their records to ``live.segments`` keyed by feed id."""

    def __init__(self, settings: Settings, blobs: BlobStore, timeout_s: float = 15.0) -> None:
        self._blobs = blobs
        self._bootstrap = settings.kafka_bootstrap
        self._timeout_s = timeout_s
        self._producer = keyed_producer(settings.kafka_bootstrap, timeout_s)

    def store(self, feed_id: str, segment_index: int, data: bytes) -> str:
        try:
            return self._blobs.put(segment_key(feed_id, segment_index), data, "video/mp4")
        except (BlobError, OSError) as exc:
            raise PublishFailed(f"segment {segment_index} of {feed_id}: {exc}") from exc

    def publish(self, record: LiveSegmentRecorded) -> None:
        # Keyed by feed id, hashed as Faust's producers hash: a feed's segments, chunks and
        # moments share one partition number.
        try:
            deliver(
                self._producer,
                topics.LIVE_SEGMENTS,
                record.video_id,
                encode(record),
                self._timeout_s + 2,
            )
        except NotDelivered as exc:
            raise PublishFailed(f"Kafka at {self._bootstrap}: {exc}") from exc

    def close(self) -> None:
        self._producer.flush(self._timeout_s)
