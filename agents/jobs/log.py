"""Reading the compacted ``jobs`` topic: the latest JobState per video, from its first record
to the end it had when the read began. A tombstone (no value) deletes the video's job."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition

from streams import topics
from streams.errors import EventError
from streams.records import JobState, decode

log = logging.getLogger(__name__)


class JobsLogUnavailable(RuntimeError):
    """The jobs topic could not be read to its end."""


@dataclass(frozen=True)
class StoredJob:
    state: JobState
    partition: int


def unjoined_consumer(bootstrap: str, purpose: str) -> Consumer:
    """A consumer that assigns partitions itself: it joins no group and commits nothing (the
    client still wants a group id)."""
    config: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        "group.id": f"vip-{purpose}-{uuid.uuid4().hex}",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "socket.connection.setup.timeout.ms": 3000,
        "log_level": 3,
    }
    return Consumer(config)


def read_job(key: bytes | None, value: bytes | None) -> tuple[str, JobState | None] | None:
    """(video id, state) of one record, state None for a tombstone; None when unreadable."""
    if not key:
        return None
    video_id = key.decode("utf-8", errors="replace")
    if value is None:
        return video_id, None
    try:
        return video_id, decode(value, JobState)
    except EventError as exc:
        log.warning("jobs: skipped an unreadable state of %s: %s", video_id, exc)
        return None


def read_jobs(
    bootstrap: str, topic: str = topics.JOBS, timeout_s: float = 10.0
) -> dict[str, StoredJob]:
    consumer = unjoined_consumer(bootstrap, "jobs-reload")
    jobs: dict[str, StoredJob] = {}
    try:
        metadata = consumer.list_topics(topic, timeout=timeout_s).topics.get(topic)
        if metadata is None or metadata.error is not None:
            raise JobsLogUnavailable(f"topic {topic} is not available")
        ends = {}
        for partition in sorted(metadata.partitions):
            low, high = consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=timeout_s
            )
            if high > low:
                ends[partition] = high
        consumer.assign([TopicPartition(topic, p, 0) for p in ends])
        positions = dict.fromkeys(ends, 0)
        while any(positions[p] < ends[p] for p in ends):
            message = consumer.poll(timeout_s)
            if message is None:
                raise JobsLogUnavailable(f"{topic} stopped short of its end {ends}: {positions}")
            if message.error():
                raise JobsLogUnavailable(f"{topic}: {message.error()}")
            partition, offset = message.partition() or 0, message.offset() or 0
            positions[partition] = offset + 1
            read = read_job(message.key(), message.value())
            if read is None:
                continue
            video_id, state = read
            if state is None:
                jobs.pop(video_id, None)
            else:
                jobs[video_id] = StoredJob(state, partition)
    except KafkaException as exc:
        raise JobsLogUnavailable(f"cannot read {topic}: {exc}") from exc
    finally:
        consumer.close()
    return jobs
