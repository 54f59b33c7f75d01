"""Kafka adapter: a feed's last published segment, read back from ``live.segments``, so that a
restarted feed continues its timeline (vip.live.timeline.restart_after) instead of starting
again at segment 0.

A feed's records are keyed by its id, so they all sit in the one partition the key hashes to
(murmur2, as the publisher's producer and Faust's hash keys). That partition is read backwards
in windows from its end, and the first window holding one of the feed's records answers.
"""

from __future__ import annotations

import uuid
from typing import Final

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from streams import topics
from streams.errors import MalformedEvent, UnknownEventVersion
from streams.records import LiveSegmentRecorded, decode
from vip.live.errors import PublishFailed
from vip.settings import Settings

__all__ = ["KafkaSegmentHistory", "key_partition", "murmur2"]

WINDOW: Final = 500
_M: Final = 0x5BD1E995
_MASK: Final = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (the Java client's ``Utils.murmur2``) as an unsigned 32-bit value."""
    h = (0x9747B28C ^ len(data)) & _MASK
    whole = len(data) - len(data) % 4
    for i in range(0, whole, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    tail = data[whole:]
    if len(tail) >= 3:
        h ^= tail[2] << 16
    if len(tail) >= 2:
        h ^= tail[1] << 8
    if tail:
        h = ((h ^ tail[0]) * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    return h ^ (h >> 15)


def key_partition(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner (librdkafka's ``murmur2_random``) picks."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


class KafkaSegmentHistory:
    """Reads a feed's newest :class:`LiveSegmentRecorded` from ``live.segments``."""

    def __init__(self, settings: Settings, timeout_s: float = 10.0) -> None:
        self._bootstrap = settings.kafka_bootstrap
        self._timeout_s = timeout_s

    def __call__(self, feed_id: str) -> LiveSegmentRecorded | None:
        """The feed's newest record, None when it has none; PublishFailed when Kafka cannot
        be read (the feed counts it as a failed connection and tries again)."""
        try:
            consumer = Consumer(
                {
                    "bootstrap.servers": self._bootstrap,
                    "group.id": f"vip-live-history-{uuid.uuid4().hex}",
                    "enable.auto.commit": False,
                    "socket.connection.setup.timeout.ms": 3000,
                    "log_level": 3,
                }
            )
            try:
                return self._last(consumer, feed_id)
            finally:
                consumer.close()
        except KafkaException as exc:
            raise PublishFailed(
                f"reading {topics.LIVE_SEGMENTS} at {self._bootstrap}: {exc}"
            ) from exc

    def _last(self, consumer: Consumer, feed_id: str) -> LiveSegmentRecorded | None:
        metadata = consumer.list_topics(topics.LIVE_SEGMENTS, timeout=self._timeout_s)
        topic = metadata.topics.get(topics.LIVE_SEGMENTS)
        if topic is None or topic.error is not None or not topic.partitions:
            return None  # nothing was ever published on this stack
        key = feed_id.encode()
        partition = key_partition(key, len(topic.partitions))
        low, high = consumer.get_watermark_offsets(
            TopicPartition(topics.LIVE_SEGMENTS, partition), timeout=self._timeout_s
        )
        end = high
        while end > low:
            start = max(low, end - WINDOW)
            found = self._last_in(consumer, partition, start, end, key)
            if found is not None:
                return found
            end = start
        return None

    def _last_in(
        self, consumer: Consumer, partition: int, start: int, end: int, key: bytes
    ) -> LiveSegmentRecorded | None:
        """The feed's last record among offsets ``[start, end)`` of the partition."""
        consumer.assign([TopicPartition(topics.LIVE_SEGMENTS, partition, start)])
        found: LiveSegmentRecorded | None = None
        position = start
        while position < end:
            message = consumer.poll(self._timeout_s)
            if message is None:
                [reached] = consumer.position([TopicPartition(topics.LIVE_SEGMENTS, partition)])
                if reached.offset >= end:
                    break  # the window ends in offsets that hold no record (control markers)
                raise PublishFailed(
                    f"{topics.LIVE_SEGMENTS}[{partition}] did not answer at offset {position}"
                )
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    break
                raise KafkaException(error)
            offset = message.offset()
            position = position + 1 if offset is None else offset + 1
            if message.key() != key or message.value() is None:
                continue
            try:
                found = decode(message.value(), LiveSegmentRecorded)
            except (MalformedEvent, UnknownEventVersion):
                continue  # not a segment record: the live stage dead-letters it too
        return found
