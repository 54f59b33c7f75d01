"""Adapters a feed publishes through: the blob store for segment files, Kafka for records."""

from __future__ import annotations

import threading
from typing import Any, Protocol

from confluent_kafka import KafkaException, Producer

from agents.shared.blob_store import BlobError, BlobStore
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
        self._producer = Producer(
            {
                "bootstrap.servers": settings.kafka_bootstrap,
                "acks": "all",
                # Keys hash as Faust's producers hash them: a feed's segments, chunks and
                # moments share one partition number.
                "partitioner": "murmur2_random",
                "message.timeout.ms": int(timeout_s * 1000),
                "socket.connection.setup.timeout.ms": 3000,
                "log_level": 3,
            }
        )

    def store(self, feed_id: str, segment_index: int, data: bytes) -> str:
        try:
            return self._blobs.put(segment_key(feed_id, segment_index), data, "video/mp4")
        except (BlobError, OSError) as exc:
            raise PublishFailed(f"segment {segment_index} of {feed_id}: {exc}") from exc

    def publish(self, record: LiveSegmentRecorded) -> None:
        done = threading.Event()
        failures: list[str] = []

        def delivered(err: Any, msg: Any) -> None:
            if err is not None:
                failures.append(str(err))
            done.set()

        try:
            self._producer.produce(
                topics.LIVE_SEGMENTS,
                key=record.video_id.encode(),
                value=encode(record),
                on_delivery=delivered,
            )
        except (KafkaException, BufferError) as exc:
            raise PublishFailed(f"Kafka at {self._bootstrap}: {exc}") from exc
        self._producer.flush(self._timeout_s + 2)
        if not done.wait(1.0) or failures:
            reason = failures[0] if failures else "delivery timed out"
            raise PublishFailed(f"Kafka at {self._bootstrap}: {reason}")

    def close(self) -> None:
        self._producer.flush(self._timeout_s)
