"""The feed runner (`vip feeds run`): one live feed publisher (vip.live.run_feed) per
registered feed, each in its own thread, started, stopped and restarted as the pure core
(vip/feeds/core.py) says. A segment counts once the publisher has it stored on Kafka.

Runners share the registry through one consumer group: each owns the feeds of the registry
partitions Kafka assigns it (cooperative-sticky, so a runner joining does not stop the others'
feeds). A runner never commits: each partition it gets is read from its start, and its feeds
are started once it has read up to the end the partition had, so a feed deleted since it was
registered is never started. Statuses go to the compacted ``feeds.status`` topic.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

from agents.shared.delivery import keyed_producer
from streams.records import FeedRegistered, encode
from vip.feeds.core import Command, FeedSupervisor, PublishStatus, StartRun, StopRun
from vip.feeds.log import FeedTopics, read_record
from vip.feeds.runs import FeedFunction, FeedRuns, SegmentSeen
from vip.live.publisher import run_feed
from vip.live.timeline import Backoff
from vip.settings import Settings

log = logging.getLogger(__name__)

GROUP_ID = "vip-feeds"
POLL_S = 0.2
# Runs get this long to stop on SIGTERM; `vip stack down` kills the process at 30 s.
STOP_GRACE_S = 15.0
KAFKA_TIMEOUT_S = 5.0
UNKNOWN_END = -1


def runner_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _now() -> datetime:
    return datetime.now(UTC)


class FeedRunner:
    def __init__(
        self,
        settings: Settings,
        *,
        feed_function: FeedFunction = run_feed,
        group_id: str = GROUP_ID,
        names: FeedTopics = FeedTopics(),  # noqa: B008 - frozen
        name: str | None = None,
    ) -> None:
        self._settings = settings
        self._group_id = group_id
        self._topics = names
        self.name = name or runner_name()
        # A crash after feeds_max_restarts restarts in a row is the one that fails the feed.
        backoff = Backoff(
            settings.feeds_restart_backoff_s,
            max(settings.feeds_restart_max_backoff_s, settings.feeds_restart_backoff_s),
            settings.feeds_max_restarts + 1,
        )
        self.core = FeedSupervisor(self.name, backoff, random.random)
        self._runs = FeedRuns(settings, feed_function)
        # Partitions being read up to the end they had when assigned, and what they held.
        self._catching_up: dict[int, int] = {}
        self._pending: dict[int, dict[str, FeedRegistered | None]] = {}
        self._producer: Any = None
        self._consumer: Any = None
        self.ready = threading.Event()
        self.last_error: str | None = None

    # The loop -------------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        """Run feeds until ``stop`` is set, then stop them all and say so."""
        settings = self._settings
        self._producer = keyed_producer(settings.kafka_bootstrap, timeout_s=10.0)
        self._consumer = Consumer(
            {
                "bootstrap.servers": settings.kafka_bootstrap,
                "group.id": self._group_id,
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "auto.offset.reset": "earliest",
                "partition.assignment.strategy": "cooperative-sticky",
                "session.timeout.ms": 10000,
                "socket.connection.setup.timeout.ms": 3000,
                "log_level": 3,
            }
        )
        try:
            self._consumer.subscribe(
                [self._topics.registry],
                on_assign=self._assigned,
                on_revoke=self._revoked,
                on_lost=self._revoked,
            )
            log.info("feed runner %s: following %s", self.name, self._topics.registry)
            while not stop.is_set():
                self._registry_step()
                self._take_reports()
                self._execute(self.core.tick(_now()))
                self._producer.poll(0)
        finally:
            self._shutdown()
            self._consumer.close()
            self._producer.flush(10.0)

    def _registry_step(self) -> None:
        try:
            messages = self._consumer.consume(200, timeout=POLL_S)
        except KafkaException as exc:
            self._note(f"Kafka: {exc}")
            time.sleep(POLL_S)
            return
        for message in messages:
            if message.error() is not None:
                self._note(f"{self._topics.registry}: {message.error()}")
                continue
            read = read_record(message.key(), message.value(), FeedRegistered)
            if read is None:
                continue
            feed_id, record = read
            partition = int(message.partition())
            if partition in self._catching_up:
                self._pending.setdefault(partition, {})[feed_id] = record
            elif record is None:
                self._execute(self.core.deregistered(feed_id, _now()))
            else:
                self._execute(self.core.registered(record, partition, _now()))
        self._release_caught_up()
        if self._consumer.assignment() and not self._catching_up:
            self.ready.set()

    def _end_of(self, partition: int) -> int:
        """The partition's end offset: 0 when there is nothing to read (never written, or
        compacted empty), UNKNOWN_END when Kafka did not say (asked again on the next step)."""
        tp = TopicPartition(self._topics.registry, partition)
        try:
            low, high = self._consumer.get_watermark_offsets(
                tp, timeout=KAFKA_TIMEOUT_S, cached=False
            )
        except KafkaException as exc:
            self._note(f"the end of {self._topics.registry}[{partition}] is unknown: {exc}")
            return UNKNOWN_END
        return int(high) if high > low else 0

    def _release_caught_up(self) -> None:
        if not self._catching_up:
            return
        for partition, end in list(self._catching_up.items()):
            if end == UNKNOWN_END:
                self._catching_up[partition] = self._end_of(partition)
        tps = [TopicPartition(self._topics.registry, p) for p in self._catching_up]
        for tp in self._consumer.position(tps):
            end = self._catching_up[tp.partition]
            if end == UNKNOWN_END or (end > 0 and (tp.offset is None or tp.offset < end)):
                continue
            del self._catching_up[tp.partition]
            for feed_id, record in self._pending.pop(tp.partition, {}).items():
                if record is not None:
                    self._execute(self.core.registered(record, tp.partition, _now()))
                    log.info("feed runner: %s is ours (partition %d)", feed_id, tp.partition)

    # Rebalances (called from inside consume) ------------------------------------------------
    def _assigned(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            self._catching_up[tp.partition] = self._end_of(tp.partition)
            self._pending[tp.partition] = {}
        consumer.incremental_assign(
            [TopicPartition(tp.topic, tp.partition, OFFSET_BEGINNING) for tp in partitions]
        )
        log.info("feed runner: assigned %s", sorted(tp.partition for tp in partitions))

    def _revoked(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        lost = [tp.partition for tp in partitions]
        for partition in lost:
            self._catching_up.pop(partition, None)
            self._pending.pop(partition, None)
        self._execute(self.core.revoked(lost, _now()))
        consumer.incremental_unassign(partitions)
        log.info("feed runner: gave up %s", sorted(lost))

    # Runs -----------------------------------------------------------------------------------
    def _execute(self, commands: list[Command]) -> None:
        for command in commands:
            if isinstance(command, StartRun):
                self._runs.start(command)
            elif isinstance(command, StopRun):
                self._runs.stop(command)
            elif isinstance(command, PublishStatus):
                self._publish(command)

    def _take_reports(self) -> None:
        for report in self._runs.reports():
            if isinstance(report, SegmentSeen):
                segment = report.record
                self._execute(
                    self.core.segment_published(
                        report.feed_id,
                        report.generation,
                        segment.segment_index,
                        segment.started_at,
                        _now(),
                    )
                )
            else:
                self._execute(self.core.run_ended(report, _now()))

    def _publish(self, command: PublishStatus) -> None:
        status = command.status
        log.info(
            "feed %s: %s (%d segments)%s",
            status.video_id,
            status.state,
            status.segments_published,
            f": {status.detail}" if status.detail else "",
        )

        def delivered(err: Any, msg: Any) -> None:
            if err is not None:
                log.warning("feed %s: status not stored: %s", status.video_id, err)

        try:
            self._producer.produce(
                self._topics.status,
                key=status.video_id.encode(),
                value=encode(status),
                on_delivery=delivered,
            )
        except (KafkaException, BufferError) as exc:
            log.warning("feed %s: status not sent: %s", status.video_id, exc)

    def _shutdown(self) -> None:
        self._execute(self.core.shutdown(_now()))
        stuck = self._runs.join(STOP_GRACE_S)
        self._take_reports()
        for ended in stuck:
            self._execute(self.core.run_ended(ended, _now()))

    def _note(self, error: str) -> None:
        """Log a Kafka problem once, not on every poll while it lasts."""
        if error != self.last_error:
            log.warning("feed runner: %s", error)
        self.last_error = error
