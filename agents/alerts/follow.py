"""A daemon thread that follows every partition of one topic without joining a consumer group:
each worker and each API replica needs every record (every rule, every alert), so none may be
shared out by a group. From the start (a compacted topic read into memory) or from the end (only
what happens from now on)."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Sequence
from typing import Any, Literal

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

log = logging.getLogger(__name__)

BATCH = 500
POLL_S = 0.25
RETRY_S = 2.0
KAFKA_TIMEOUT_S = 5.0

Messages = Callable[[Sequence[Any]], None]


class TopicFollower:
    def __init__(
        self,
        bootstrap: str,
        topic: str,
        on_messages: Messages,
        start: Literal["beginning", "end"],
        purpose: str,
    ) -> None:
        self._bootstrap = bootstrap
        self._topic = topic
        self._on_messages = on_messages
        self._start = start
        self._purpose = purpose
        self._stop = threading.Event()
        self._assigned = threading.Event()
        self._caught_up = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError(f"already following {self._topic}")
        name = f"vip-{self._purpose}"
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def close(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    @property
    def assigned(self) -> bool:
        """Whether the topic's partitions are assigned: what happens from now on is seen."""
        return self._assigned.is_set()

    @property
    def caught_up(self) -> bool:
        """Whether what the topic held when the follower started has been read."""
        return self._caught_up.is_set()

    def wait_caught_up(self, timeout_s: float) -> bool:
        return self._caught_up.wait(timeout_s)

    def wait_assigned(self, timeout_s: float) -> bool:
        return self._assigned.wait(timeout_s)

    def _run(self) -> None:
        consumer = Consumer(
            {
                "bootstrap.servers": self._bootstrap,
                "group.id": f"vip-{self._purpose}-{uuid.uuid4().hex}",  # never joined
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "socket.connection.setup.timeout.ms": 3000,
                "log_level": 3,
            }
        )
        try:
            ends: dict[int, int] | None = None
            while ends is None and not self._stop.is_set():
                ends = self._assign(consumer)
                if ends is None:
                    self._stop.wait(RETRY_S)
            positions: dict[int, int] = {}
            while not self._stop.is_set():
                if ends is not None and all(positions.get(p, 0) >= e for p, e in ends.items()):
                    self._caught_up.set()
                    ends = None
                try:
                    messages = consumer.consume(BATCH, timeout=POLL_S)
                except KafkaException as exc:
                    self._note(f"Kafka: {exc}")
                    self._stop.wait(1.0)
                    continue
                good = []
                for message in messages:
                    if message.error() is not None:
                        self._note(f"Kafka: {message.error()}")
                        continue
                    positions[message.partition() or 0] = (message.offset() or 0) + 1
                    good.append(message)
                if good:
                    self._on_messages(good)
        except Exception as exc:
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.exception("%s: stopped following %s", self._purpose, self._topic)
        finally:
            consumer.close()

    def _assign(self, consumer: Consumer) -> dict[int, int] | None:
        """Assign every partition; the end offsets that "caught up" is measured against."""
        try:
            metadata = consumer.list_topics(self._topic, timeout=KAFKA_TIMEOUT_S)
            found = metadata.topics.get(self._topic)
            if found is None or found.error is not None or not found.partitions:
                self._note(f"topic {self._topic} is not available yet")
                return None
            ends: dict[int, int] = {}
            for partition in sorted(found.partitions):
                _, high = consumer.get_watermark_offsets(
                    TopicPartition(self._topic, partition), timeout=KAFKA_TIMEOUT_S
                )
                ends[partition] = int(high)
            consumer.assign(
                [
                    TopicPartition(
                        self._topic, p, OFFSET_BEGINNING if self._start == "beginning" else end
                    )
                    for p, end in ends.items()
                ]
            )
        except KafkaException as exc:
            self._note(f"cannot reach Kafka: {exc}")
            return None
        self._assigned.set()
        log.info("%s: following %d partitions of %s", self._purpose, len(ends), self._topic)
        return ends if self._start == "beginning" else {}

    def _note(self, error: str) -> None:
        if error != self.last_error:
            log.warning("%s: %s", self._purpose, error)
        self.last_error = error
