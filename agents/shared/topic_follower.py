"""A daemon thread that follows every partition of some topics without joining a consumer group.

Each API replica and each worker that holds a view needs every record (every job, feed, rule
and alert), so none may be shared out by a group. It reads from the start (a compacted topic
read into memory: the jobs and feeds views, the alert rulebook) or from the end (only what
happens from now on: the alert feed). Until it has read up to the end offsets the topics had
when it was assigned, it is not ``caught_up``: a view says it is loading rather than answer
"no such …". ``on_messages`` runs on the thread with each batch of good records.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any, Literal

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

from agents.jobs.log import unjoined_consumer

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
        topics: str | Sequence[str],
        on_messages: Messages,
        start: Literal["beginning", "end"],
        purpose: str,
    ) -> None:
        self._bootstrap = bootstrap
        self._topics = (topics,) if isinstance(topics, str) else tuple(topics)
        self._on_messages = on_messages
        self._start = start
        self._purpose = purpose
        self._stop = threading.Event()
        self._assigned = threading.Event()
        self._caught_up = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None

    def start(self) -> None:
        """Start reading in a daemon thread; returns at once (Kafka may be down for now)."""
        if self._thread is not None:
            raise RuntimeError(f"already following {', '.join(self._topics)}")
        name = f"vip-{self._purpose}"
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def close(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    @property
    def assigned(self) -> bool:
        """Whether the topics' partitions are assigned: what happens from now on is seen."""
        return self._assigned.is_set()

    @property
    def caught_up(self) -> bool:
        """Whether what the topics held when the follower was assigned has been read."""
        return self._caught_up.is_set()

    def wait_caught_up(self, timeout_s: float) -> bool:
        return self._caught_up.wait(timeout_s)

    def wait_assigned(self, timeout_s: float) -> bool:
        return self._assigned.wait(timeout_s)

    def _run(self) -> None:
        consumer = unjoined_consumer(self._bootstrap, self._purpose)
        try:
            ends: dict[tuple[str, int], int] | None = None
            while ends is None and not self._stop.is_set():
                ends = self._assign(consumer)
                if ends is None:
                    self._stop.wait(RETRY_S)
            positions: dict[tuple[str, int], int] = {}
            while not self._stop.is_set():
                if ends is not None and all(positions.get(k, 0) >= e for k, e in ends.items()):
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
                    key = (message.topic() or "", message.partition() or 0)
                    positions[key] = (message.offset() or 0) + 1
                    good.append(message)
                if good:
                    self._on_messages(good)
        except Exception as exc:
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.exception("%s: stopped following %s", self._purpose, ", ".join(self._topics))
        finally:
            consumer.close()

    def _assign(self, consumer: Consumer) -> dict[tuple[str, int], int] | None:
        """Assign every partition of every topic; the end offsets "caught up" is measured
        against (only partitions that hold records: a compacted-away one never delivers)."""
        ends: dict[tuple[str, int], int] = {}
        assignment: list[TopicPartition] = []
        try:
            for topic in self._topics:
                found = consumer.list_topics(topic, timeout=KAFKA_TIMEOUT_S).topics.get(topic)
                if found is None or found.error is not None or not found.partitions:
                    self._note(f"topic {topic} is not available yet")
                    return None
                for partition in sorted(found.partitions):
                    low, high = consumer.get_watermark_offsets(
                        TopicPartition(topic, partition), timeout=KAFKA_TIMEOUT_S
                    )
                    if high > low:
                        ends[(topic, partition)] = int(high)
                    start = OFFSET_BEGINNING if self._start == "beginning" else int(high)
                    assignment.append(TopicPartition(topic, partition, start))
            consumer.assign(assignment)
        except KafkaException as exc:
            self._note(f"cannot reach Kafka: {exc}")
            return None
        self._assigned.set()
        log.info("%s: following %d partitions of %s", self._purpose, len(assignment),
                 ", ".join(self._topics))  # fmt: skip
        return ends if self._start == "beginning" else {}

    def _note(self, error: str) -> None:
        if error != self.last_error:
            log.warning("%s: %s", self._purpose, error)
        self.last_error = error
