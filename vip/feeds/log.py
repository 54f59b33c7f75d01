"""The feed registry's two compacted topics as records: ``feeds`` (FeedRegistered per feed id,
a tombstone deletes the feed) and ``feeds.status`` (FeedStatusChanged per feed id), read by
the API's view and the runner, written by the API (registrations) and the runners (statuses)."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaException, Producer

from streams import topics
from streams.errors import EventError
from streams.records import E, Event, decode, encode
from vip.feeds.errors import RegistryUnavailable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FeedTopics:
    """The topics the registry uses (tests give each run its own)."""

    registry: str = topics.FEEDS
    status: str = topics.FEED_STATUS


def read_record(
    key: bytes | None, value: bytes | None, record: type[E]
) -> tuple[str, E | None] | None:
    """(feed id, record) of one message, the record None for a tombstone; None when the
    message is unreadable (logged and skipped: one bad record must not stop a reader)."""
    if not key:
        return None
    feed_id = key.decode("utf-8", errors="replace")
    if value is None:
        return feed_id, None
    try:
        return feed_id, decode(value, record)
    except EventError as exc:
        log.warning("feeds: skipped an unreadable %s of %s: %s", record.__name__, feed_id, exc)
        return None


def producer(bootstrap: str, timeout_s: float) -> Producer:
    """A producer keyed like the pipeline's (murmur2, as Faust and Java hash keys), so a feed's
    registration and its tombstone land on one partition whoever writes them."""
    return Producer(
        {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": False,
            "acks": "all",
            "partitioner": "murmur2_random",
            "message.timeout.ms": int(timeout_s * 1000),
            "socket.connection.setup.timeout.ms": 3000,
            "log_level": 3,
        }
    )


class RecordWriter:
    """Writes records (or tombstones) keyed by feed id and waits until Kafka has each one;
    thread-safe. RegistryUnavailable says why a write did not happen."""

    def __init__(self, bootstrap: str, timeout_s: float = 10.0) -> None:
        self._bootstrap = bootstrap
        self._timeout_s = timeout_s
        self._producer = producer(bootstrap, timeout_s)

    def write(self, topic: str, feed_id: str, event: Event | None) -> tuple[int, int]:
        """Send one record (None: a tombstone); its (partition, offset) once stored."""
        done = threading.Event()
        outcome: dict[str, Any] = {}

        def delivered(err: Any, msg: Any) -> None:
            outcome["error"] = err
            outcome["at"] = (msg.partition(), msg.offset()) if err is None else None
            done.set()

        value = encode(event) if event is not None else None
        try:
            self._producer.produce(topic, key=feed_id.encode(), value=value, on_delivery=delivered)
        except (KafkaException, BufferError) as exc:
            reason = f"cannot write to {topic} at {self._bootstrap}: {exc}"
            raise RegistryUnavailable(reason) from exc
        self._producer.flush(self._timeout_s + 2)
        if not done.wait(1.0) or outcome.get("error") is not None:
            reason = outcome.get("error") or "delivery timed out"
            raise RegistryUnavailable(f"cannot write to {topic} at {self._bootstrap}: {reason}")
        partition, offset = outcome["at"]
        return int(partition), int(offset)

    def close(self) -> None:
        self._producer.flush(self._timeout_s)
