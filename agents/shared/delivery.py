"""One record at a time onto Kafka, waiting until the broker has it: uploads, feed registry
and status records, live segments, alert rules. (The stages' own output goes through Faust.)

Keys are hashed with murmur2, as Faust's (and Java's) producers hash them, so a video's or a
feed's records land on the partition number its chunks, analyses and job have. Idempotence is
off: it would cost a ~0.5 s producer-id handshake per producer and only dedupes retries within
one producer session; a rare duplicate from a retry is absorbed downstream (every sink is
idempotent, compacted topics keep the last record per key).
"""

from __future__ import annotations

import threading
from typing import Any

from confluent_kafka import KafkaException, Producer


class NotDelivered(Exception):
    """Kafka did not take the record; the message says why (the broker's error, or that the
    delivery timed out)."""


def keyed_producer(bootstrap: str, timeout_s: float) -> Producer:
    """A thread-safe producer whose deliveries give up after ``timeout_s``."""
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


def deliver(
    producer: Producer,
    topic: str,
    key: str,
    value: bytes | None,
    flush_s: float,
    grace_s: float = 1.0,
) -> tuple[int, int]:
    """Send one record (None: a tombstone) and wait until Kafka has it: its (partition,
    offset). Flushes for up to ``flush_s``, then waits ``grace_s`` more for this record's own
    callback, which another thread's flush may serve. Raises :class:`NotDelivered`."""
    done = threading.Event()
    outcome: dict[str, Any] = {}

    def delivered(err: Any, msg: Any) -> None:
        outcome["error"] = err
        if err is None:
            outcome["at"] = (int(msg.partition()), int(msg.offset()))
        done.set()

    try:
        producer.produce(topic, key=key.encode(), value=value, on_delivery=delivered)
    except (KafkaException, BufferError) as exc:
        raise NotDelivered(str(exc)) from exc
    producer.flush(flush_s)
    if not done.wait(grace_s):
        raise NotDelivered("delivery timed out")
    if outcome["error"] is not None:
        raise NotDelivered(str(outcome["error"]))
    at: tuple[int, int] = outcome["at"]
    return at
