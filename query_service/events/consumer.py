"""The change feed: a Kafka consumer thread that reads ``embeddings`` and ``graph.updates``.

Every API replica needs every event (each has its own cache), and a cache has no use for what
happened before it existed: so the feed joins no consumer group and commits nothing. It
assigns itself every partition of both topics at their end offsets and reads from there;
rebalances, stale groups left behind by dead replicas and shared offsets do not arise. The
client library insists on a ``group.id``; the one given is never joined or committed to.
Partitions added later are picked up from their start by a metadata refresh.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    ConsumerGroupTopicPartitions,
    KafkaException,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient
from pydantic import BaseModel, Field

from query_service.cache import EVERYTHING
from query_service.events.changes import VideoChange, read_change
from query_service.events.freshness import Freshness
from streams import topics
from vip.settings import Settings

log = logging.getLogger(__name__)

FeedState = Literal["connecting", "waiting_for_sink", "running", "stopped", "failed"]
FOLLOWED = (topics.EMBEDDINGS, topics.GRAPH_UPDATES)
BATCH = 500
POLL_S = 0.5
SINK_CHECK_S = 0.5
LAG_CHECK_S = 1.0
METADATA_REFRESH_S = 30.0
KAFKA_TIMEOUT_S = 5.0
# librdkafka logs every failed reconnect as an error; the feed reports Kafka errors itself
# (once per distinct error, and in its health), so only the client's critical logs pass.
_QUIET: dict[str, Any] = {"logger": log, "log_level": 2}


class FeedHealth(BaseModel):
    state: FeedState
    started_at: datetime
    last_event_at: datetime | None = Field(description="When the latest valid event arrived")
    events: int = Field(description="Valid events read")
    rejected: int = Field(description="Malformed or unknown-version events skipped")
    lag: dict[str, int] = Field(description="Messages not yet read, per topic")
    partitions: int = Field(description="Partitions read")
    waiting_for_sink: list[str] = Field(
        description="Scopes (video ids, * for all) whose graph delta Neo4j has yet to get"
    )
    last_error: str | None = None


class ChangeFeed:
    def __init__(self, settings: Settings, freshness: Freshness, sink_group: str) -> None:
        self._settings = settings
        self._freshness = freshness
        self._sink_group = sink_group
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._state: FeedState = "connecting"
        self._started_at = datetime.now(UTC)
        self._events = 0
        self._last_event_at: datetime | None = None
        self._lag: dict[str, int] = {}
        # (topic, partition) -> the next offset to read there
        self._positions: dict[tuple[str, int], int] = {}
        self._last_error: str | None = None

    # Life cycle ------------------------------------------------------------------------------
    def start(self) -> None:
        """Start reading in a daemon thread; returns at once (Kafka may be down for now)."""
        if self._thread is not None:
            raise RuntimeError("the change feed is already started")
        self._thread = threading.Thread(target=self._run, name="vip-change-feed", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                log.warning("change feed: still stopping after %.0fs", timeout_s)

    def health(self) -> FeedHealth:
        return FeedHealth(
            state=self._state,
            started_at=self._started_at,
            last_event_at=self._last_event_at,
            events=self._events,
            rejected=self._freshness.activity.rejected(),
            lag=dict(self._lag),
            partitions=len(self._positions),
            waiting_for_sink=self._freshness.pending(),
            last_error=self._last_error,
        )

    # The thread ------------------------------------------------------------------------------
    def _config(self) -> dict[str, Any]:
        client = f"vip-query-{socket.gethostname()}-{os.getpid()}"
        return {
            "bootstrap.servers": self._settings.kafka_bootstrap,
            "client.id": client,
            "group.id": f"{client}-unjoined",  # required by the client; never joined
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "socket.connection.setup.timeout.ms": 3000,
            **_QUIET,
        }

    def _run(self) -> None:
        """Kafka errors are waited out; anything else stops the feed (and so the cache)."""
        consumer: Consumer | None = None
        try:
            consumer = Consumer(self._config())
            admin_config: dict[str, Any] = {
                "bootstrap.servers": self._settings.kafka_bootstrap,
                **_QUIET,
            }
            admin = AdminClient(admin_config)
            while not self._stop.is_set() and not self._assign_at_end(consumer):
                self._stop.wait(2.0)
            self._loop(consumer, admin)
            self._state = "stopped"
        except Exception as exc:
            self._state = "failed"
            self._last_error = f"{type(exc).__name__}: {exc}"
            log.exception("change feed failed; the query cache is off from now on")
        finally:
            self._freshness.stopped()
            if consumer is not None:
                consumer.close()

    def _assign_at_end(self, consumer: Consumer) -> bool:
        try:
            ends = self._partitions(consumer, self._end)
            consumer.assign([TopicPartition(t, p, offset) for (t, p), offset in ends.items()])
        except KafkaException as exc:
            self._note_error(f"cannot reach Kafka: {exc}")
            return False
        self._positions = dict(ends)
        self._freshness.started(
            {p: offset for (t, p), offset in ends.items() if t == topics.GRAPH_UPDATES}
        )
        log.info("change feed: reading %d partitions of %s from their end", len(ends), FOLLOWED)
        return True

    def _end(self, consumer: Consumer, tp: TopicPartition) -> int:
        _, high = consumer.get_watermark_offsets(tp, timeout=KAFKA_TIMEOUT_S)
        return int(high)

    def _partitions(self, consumer: Consumer, offset_of: Any) -> dict[tuple[str, int], int]:
        metadata = consumer.list_topics(timeout=KAFKA_TIMEOUT_S)
        found = {}
        for topic in FOLLOWED:
            if topic not in metadata.topics:
                continue
            for partition in sorted(metadata.topics[topic].partitions):
                key = (topic, partition)
                if key not in self._positions:
                    found[key] = offset_of(consumer, TopicPartition(topic, partition))
        return found

    def _loop(self, consumer: Consumer, admin: AdminClient) -> None:
        next_sink = next_lag = 0.0
        next_metadata = time.monotonic() + METADATA_REFRESH_S
        while not self._stop.is_set():
            try:
                messages = consumer.consume(BATCH, timeout=POLL_S)
            except KafkaException as exc:
                self._note_error(f"Kafka: {exc}")
                self._stop.wait(1.0)
                continue
            self._handle(messages)
            now = time.monotonic()
            if self._freshness.waiting_for_sink and now >= next_sink:
                next_sink = now + SINK_CHECK_S
                self._check_sink(admin)
            if now >= next_lag:
                next_lag = now + LAG_CHECK_S
                self._measure_lag(consumer)
            if now >= next_metadata:
                next_metadata = now + METADATA_REFRESH_S
                self._add_new_partitions(consumer)
            catching_up = EVERYTHING in self._freshness.pending()
            self._state = "waiting_for_sink" if catching_up else "running"

    def _handle(self, messages: Sequence[Any]) -> None:
        changes: list[VideoChange] = []
        for message in messages:
            if message.error() is not None:
                self._note_error(f"Kafka: {message.error()}")
                continue
            self._positions[(message.topic(), message.partition())] = message.offset() + 1
            try:
                change = read_change(
                    message.topic(), message.partition(), message.offset(), message.value()
                )
            except Exception as exc:  # a bad event must never stop the feed
                self._freshness.reject(message.topic())
                log.warning(
                    "change feed: skipped %s@%s/%s: %s: %s",
                    message.topic(),
                    message.partition(),
                    message.offset(),
                    type(exc).__name__,
                    exc,
                )
                continue
            changes.append(change)
        if changes:
            self._freshness.apply(changes)
            self._events += len(changes)
            self._last_event_at = datetime.now(UTC)

    def _check_sink(self, admin: AdminClient) -> None:
        partitions = sorted(p for t, p in self._positions if t == topics.GRAPH_UPDATES)
        request = [
            ConsumerGroupTopicPartitions(
                self._sink_group, [TopicPartition(topics.GRAPH_UPDATES, p) for p in partitions]
            )
        ]
        try:
            future = admin.list_consumer_group_offsets(request, request_timeout=KAFKA_TIMEOUT_S)
            result = future[self._sink_group].result(timeout=KAFKA_TIMEOUT_S)
        except Exception as exc:  # the sink's progress is unknown for now: stay held
            self._note_error(f"cannot read the graph sink's offsets: {exc}")
            return
        committed = {tp.partition: tp.offset for tp in result.topic_partitions or []}
        self._freshness.settle(committed)

    def _measure_lag(self, consumer: Consumer) -> None:
        """From the end offsets the last fetches brought back (no request to the broker)."""
        lag: dict[str, int] = dict.fromkeys(FOLLOWED, 0)
        for (topic, partition), position in list(self._positions.items()):
            try:
                _, high = consumer.get_watermark_offsets(
                    TopicPartition(topic, partition), cached=True
                )
            except KafkaException:
                continue
            if position >= 0 and high >= 0:
                lag[topic] += max(0, high - position)
        self._lag = lag

    def _add_new_partitions(self, consumer: Consumer) -> None:
        try:
            added = self._partitions(consumer, lambda _c, _tp: OFFSET_BEGINNING)
            if added:
                consumer.incremental_assign(
                    [TopicPartition(t, p, o) for (t, p), o in added.items()]
                )
        except KafkaException as exc:
            self._note_error(f"cannot refresh partitions: {exc}")
            return
        if added:
            self._positions.update(dict.fromkeys(added, 0))
            log.info("change feed: new partitions %s, read from their start", sorted(added))

    def _note_error(self, error: str) -> None:
        if error != self._last_error:
            log.warning("change feed: %s", error)
        self._last_error = error
