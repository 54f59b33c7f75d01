"""The feeds view: every feed's registration and latest status, read from the compacted
``feeds`` and ``feeds.status`` topics.

A daemon thread reads every partition of both from its start and then follows them. Like the
jobs view it joins no consumer group, so every API replica holds every feed and answers the
same. Until it has read up to the ends the topics had when it started, it says it is loading
rather than answer "no such feed". A replica that wrote a record waits until it has read it
back (:meth:`FeedsView.wait_until_read`), so a client sees its own writes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, KafkaException, TopicPartition

from agents.jobs.log import unjoined_consumer
from streams.records import FeedRegistered, FeedStatusChanged
from vip.feeds.log import FeedTopics, read_record

log = logging.getLogger(__name__)

BATCH = 500
POLL_S = 0.5
RETRY_S = 2.0
KAFKA_TIMEOUT_S = 5.0
Feed = tuple[FeedRegistered, FeedStatusChanged | None]


class FeedsView:
    def __init__(self, bootstrap: str, names: FeedTopics = FeedTopics()) -> None:  # noqa: B008
        self._bootstrap = bootstrap
        self._registry_topic = names.registry
        self._status_topic = names.status
        self._feeds: dict[str, FeedRegistered] = {}
        self._statuses: dict[str, FeedStatusChanged] = {}
        self._read_to: dict[tuple[str, int], int] = {}
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._loaded = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None

    # Life cycle ------------------------------------------------------------------------------
    def start(self) -> None:
        """Start reading in a daemon thread; returns at once (Kafka may be down for now)."""
        if self._thread is not None:
            raise RuntimeError("the feeds view is already started")
        self._thread = threading.Thread(target=self._run, name="vip-feeds-view", daemon=True)
        self._thread.start()

    def close(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    @property
    def loaded(self) -> bool:
        return self._loaded.is_set()

    # Reads -----------------------------------------------------------------------------------
    def get(self, feed_id: str) -> Feed | None:
        with self._changed:
            registration = self._feeds.get(feed_id)
            return None if registration is None else (registration, self._statuses.get(feed_id))

    def status(self, feed_id: str) -> FeedStatusChanged | None:
        """The latest status a runner gave the feed, registered or not (a deleted feed's last
        status says how it stopped)."""
        with self._changed:
            return self._statuses.get(feed_id)

    def page(self, skip: int = 0, limit: int = 50) -> tuple[list[Feed], int]:
        """Feeds, most recently registered first, and how many there are."""
        with self._changed:
            feeds = [(r, self._statuses.get(f)) for f, r in self._feeds.items()]
        feeds.sort(key=lambda feed: (feed[0].occurred_at, feed[0].video_id), reverse=True)
        return feeds[skip : skip + limit], len(feeds)

    def wait_until_read(self, topic: str, partition: int, offset: int, timeout_s: float) -> bool:
        """Wait until the record at ``offset`` has been read (and applied)."""
        with self._changed:
            return self._changed.wait_for(
                lambda: self._read_to.get((topic, partition), 0) > offset, timeout_s
            )

    # The thread ------------------------------------------------------------------------------
    def _run(self) -> None:
        consumer = unjoined_consumer(self._bootstrap, "feeds-view")
        try:
            ends: dict[tuple[str, int], int] | None = None
            while ends is None and not self._stop.is_set():
                ends = self._assign(consumer)
                if ends is None:
                    self._stop.wait(RETRY_S)
            while not self._stop.is_set():
                try:
                    messages = consumer.consume(BATCH, timeout=POLL_S)
                except KafkaException as exc:
                    self._note(f"Kafka: {exc}")
                    self._stop.wait(1.0)
                    continue
                self._apply(messages)
                if ends is not None and all(self._read_to.get(k, 0) >= e for k, e in ends.items()):
                    self._loaded.set()
                    ends = None
        except Exception as exc:
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.exception("feeds view stopped")
        finally:
            consumer.close()

    def _assign(self, consumer: Any) -> dict[tuple[str, int], int] | None:
        """Assign every partition of both topics from its start; the ends to read up to."""
        ends: dict[tuple[str, int], int] = {}
        starts: list[TopicPartition] = []
        try:
            for topic in (self._registry_topic, self._status_topic):
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
                    starts.append(TopicPartition(topic, partition, OFFSET_BEGINNING))
            consumer.assign(starts)
        except KafkaException as exc:
            self._note(f"cannot reach Kafka: {exc}")
            return None
        log.info("feeds view: reading %s and %s", self._registry_topic, self._status_topic)
        return ends

    def _apply(self, messages: Sequence[Any]) -> None:
        with self._changed:
            for message in messages:
                if message.error() is not None:
                    self._note(f"Kafka: {message.error()}")
                    continue
                topic = message.topic()
                self._read_to[(topic, message.partition())] = message.offset() + 1
                if topic == self._registry_topic:
                    self._apply_registration(message)
                else:
                    self._apply_status(message)
            self._changed.notify_all()

    def _apply_registration(self, message: Any) -> None:
        read = read_record(message.key(), message.value(), FeedRegistered)
        if read is None:
            return
        feed_id, record = read
        if record is None:
            self._feeds.pop(feed_id, None)
        else:
            self._feeds[feed_id] = record

    def _apply_status(self, message: Any) -> None:
        read = read_record(message.key(), message.value(), FeedStatusChanged)
        if read is None:
            return
        feed_id, status = read
        if status is None:
            self._statuses.pop(feed_id, None)
        else:
            self._statuses[feed_id] = status

    def _note(self, error: str) -> None:
        if error != self.last_error:
            log.warning("feeds view: %s", error)
        self.last_error = error
