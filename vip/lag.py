"""Consumer lag: how far a consumer group's committed offsets trail each partition's end.

:func:`consumer_lag` and :func:`caught_up` answer one group's lag in messages (what tests wait
on). :class:`LagReader` reads a full :class:`LagSnapshot` for monitoring: per group, topic and
partition the committed offset, the end offset, the lag, the time lag (the age of the oldest
message not yet committed) and whether a live member of the group owns the partition. The
statuses over a window of snapshots are :mod:`vip.lag_status`'s.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import NamedTuple

from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, ClusterMetadata, OffsetSpec

from streams import topics as pipeline

# Groups Kafka reports as gone or never seen.
ABSENT_STATES = frozenset({"DEAD", "UNKNOWN"})
_TIME_LAG_READ_S = 3.0
# librdkafka's syslog level: critical only (it logs each failed reconnect as an error).
_QUIET = 2


def consumer_lag(
    bootstrap: str, group: str, topics: Sequence[str], timeout_s: float = 10.0
) -> dict[tuple[str, int], int]:
    """Messages not yet committed by ``group``, per (topic, partition). A partition the group
    never committed on counts from its first retained offset."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    metadata = admin.list_topics(timeout=timeout_s)
    partitions = [
        TopicPartition(topic, p)
        for topic in topics
        if topic in metadata.topics
        for p in sorted(metadata.topics[topic].partitions)
    ]
    if not partitions:
        return {}
    ends = _offsets(admin, partitions, OffsetSpec.latest(), timeout_s)
    starts = _offsets(admin, partitions, OffsetSpec.earliest(), timeout_s)
    committed = _committed(admin, group, partitions, timeout_s)
    return {key: _lag(end, committed.get(key), starts[key]) for key, end in ends.items()}


def caught_up(bootstrap: str, group: str, topics: Sequence[str]) -> bool:
    """Whether ``group`` has committed everything on ``topics`` (and the topics exist)."""
    lag = consumer_lag(bootstrap, group, topics)
    return bool(lag) and not any(lag.values())


@dataclass(frozen=True, slots=True)
class PartitionLag:
    topic: str
    partition: int
    # The next offset the group will read, as committed; None when it never committed here.
    committed: int | None
    # The log end offset: the offset the next message written will get.
    end: int
    lag: int
    # Seconds since the oldest message not yet committed was written; 0 when caught up, None
    # when it could not be read in time.
    time_lag_s: float | None
    # Whether a live member of the group has this partition assigned.
    owned: bool


@dataclass(frozen=True, slots=True)
class GroupLag:
    group: str
    # Kafka's state of the group (STABLE, EMPTY, PREPARING_REBALANCING, DEAD, ...).
    state: str
    members: int
    partitions: tuple[PartitionLag, ...]

    @property
    def known(self) -> bool:
        """Whether Kafka knows the group: it has members or committed offsets."""
        return self.state not in ABSENT_STATES or any(
            p.committed is not None for p in self.partitions
        )


@dataclass(frozen=True, slots=True)
class LagSnapshot:
    at: float  # unix time the offsets were read
    groups: tuple[GroupLag, ...]


class _Membership(NamedTuple):
    """A group as Kafka describes it: its state, its members and the partitions they own."""

    state: str
    members: int
    owned: frozenset[tuple[str, int]]


def is_pipeline_topic(topic: str) -> bool:
    """The pipeline's topics and those derived from them (``chunks.dlq``, retry topics)."""
    return any(topic == name or topic.startswith(f"{name}.") for name in pipeline.PIPELINE)


class LagReader:
    """Reads lag snapshots from one Kafka cluster. Not thread-safe: one thread uses it.

    Without explicit groups, :meth:`snapshot` watches every group that commits on, or is
    assigned, a pipeline topic (the worker's groups, whatever they are called)."""

    def __init__(
        self,
        bootstrap: str,
        timeout_s: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.bootstrap = bootstrap
        self.timeout_s = timeout_s
        self._clock = clock
        # Connection failures surface as exceptions (and in the report), not as client logs.
        self._admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": _QUIET})
        self._consumer: Consumer | None = None

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None

    def discover_groups(self) -> list[str]:
        listed = self._admin.list_consumer_groups(request_timeout=self.timeout_s).result()
        if listed.errors and not listed.valid:
            raise KafkaException(listed.errors[0])
        return sorted(group.group_id for group in listed.valid)

    def snapshot(self, groups: Sequence[str] = ()) -> LagSnapshot:
        explicit = bool(groups)
        # Raises KafkaException when the cluster cannot be reached, rather than report nothing.
        metadata = self._admin.list_topics(timeout=self.timeout_s)
        names = list(groups) if explicit else self.discover_groups()
        described = self._describe(names)
        keep = (lambda topic: not topic.startswith("__")) if explicit else is_pipeline_topic
        committed = {name: _committed(self._admin, name, None, self.timeout_s) for name in names}
        touched = {
            name: {t for t, _ in [*committed[name], *described[name].owned] if keep(t)}
            for name in names
        }
        if not explicit:
            names = [name for name in names if touched[name]]
        layout = _partitions(metadata, set().union(*touched.values()))
        every = [TopicPartition(t, p) for t in sorted(layout) for p in layout[t]]
        ends = _offsets(self._admin, every, OffsetSpec.latest(), self.timeout_s)
        starts = _offsets(self._admin, every, OffsetSpec.earliest(), self.timeout_s)
        at = self._clock()
        drafts = {
            name: [
                PartitionLag(
                    topic=t,
                    partition=p,
                    committed=committed[name].get((t, p)),
                    end=ends[(t, p)],
                    lag=_lag(ends[(t, p)], committed[name].get((t, p)), starts[(t, p)]),
                    time_lag_s=0.0,
                    owned=(t, p) in described[name].owned,
                )
                for t in sorted(touched[name])
                for p in layout.get(t, [])
            ]
            for name in names
        }

        def first_unread(row: PartitionLag) -> tuple[str, int, int]:
            start = starts[(row.topic, row.partition)]
            return (row.topic, row.partition, max(row.committed or 0, start))

        lagging = {first_unread(row) for rows in drafts.values() for row in rows if row.lag}
        written_at = self._timestamps(lagging)
        now = self._clock()

        def aged(row: PartitionLag) -> PartitionLag:
            if not row.lag:
                return row
            stamp = written_at.get(first_unread(row))
            return replace(row, time_lag_s=None if stamp is None else max(0.0, now - stamp))

        return LagSnapshot(
            at=at,
            groups=tuple(
                GroupLag(
                    name,
                    described[name].state,
                    described[name].members,
                    tuple(aged(row) for row in drafts[name]),
                )
                for name in names
            ),
        )

    def _describe(self, names: Sequence[str]) -> dict[str, _Membership]:
        if not names:
            return {}
        futures = self._admin.describe_consumer_groups(list(names), request_timeout=self.timeout_s)
        described: dict[str, _Membership] = {}
        for name, future in futures.items():
            try:
                group = future.result()
            except KafkaException:
                described[name] = _Membership("UNKNOWN", 0, frozenset())
                continue
            owned = frozenset(
                (tp.topic, tp.partition)
                for member in group.members
                if member.assignment is not None
                for tp in member.assignment.topic_partitions or []
            )
            described[name] = _Membership(group.state.name, len(group.members), owned)
        return described

    def _timestamps(self, wanted: set[tuple[str, int, int]]) -> dict[tuple[str, int, int], float]:
        """The write time (unix seconds) of the message at each (topic, partition, offset), or
        of the first one after it where that one is gone. Partitions are read a round at a
        time, since one assignment holds one position per partition."""
        found: dict[tuple[str, int, int], float] = {}
        pending = sorted(wanted)
        while pending:
            this_round: dict[tuple[str, int], int] = {}
            later = []
            for topic, p, offset in pending:
                if (topic, p) in this_round:
                    later.append((topic, p, offset))
                else:
                    this_round[(topic, p)] = offset
            for (topic, p), stamp in self._read_first(this_round).items():
                found[(topic, p, this_round[(topic, p)])] = stamp
            pending = later
        return found

    def _read_first(self, positions: dict[tuple[str, int], int]) -> dict[tuple[str, int], float]:
        consumer = self._reader()
        consumer.assign([TopicPartition(t, p, offset) for (t, p), offset in positions.items()])
        stamps: dict[tuple[str, int], float] = {}
        give_up = time.monotonic() + _TIME_LAG_READ_S
        try:
            while len(stamps) < len(positions) and time.monotonic() < give_up:
                for message in consumer.consume(num_messages=100, timeout=0.2):
                    key = (message.topic(), message.partition())
                    if message.error() is None and key in positions and key not in stamps:
                        _, millis = message.timestamp()
                        if millis > 0:
                            stamps[key] = millis / 1000.0
        finally:
            consumer.unassign()
        return stamps

    def _reader(self) -> Consumer:
        if self._consumer is None:
            self._consumer = Consumer(
                {
                    "bootstrap.servers": self.bootstrap,
                    "log_level": _QUIET,
                    # Required by the client; this consumer only assigns, never joins or commits.
                    "group.id": "vip-lag-reader-unjoined",
                    "enable.auto.commit": False,
                    "enable.auto.offset.store": False,
                    "auto.offset.reset": "earliest",
                    "fetch.wait.max.ms": 100,
                    "max.partition.fetch.bytes": 262144,
                }
            )
        return self._consumer


def _partitions(metadata: ClusterMetadata, names: set[str]) -> dict[str, list[int]]:
    return {
        name: sorted(metadata.topics[name].partitions)
        for name in names
        if name in metadata.topics and metadata.topics[name].error is None
    }


def _lag(end: int, committed: int | None, start: int) -> int:
    return max(0, end - (committed if committed is not None else start))


def _offsets(
    admin: AdminClient, partitions: list[TopicPartition], spec: OffsetSpec, timeout_s: float
) -> dict[tuple[str, int], int]:
    if not partitions:
        return {}
    futures = admin.list_offsets({tp: spec for tp in partitions}, request_timeout=timeout_s)
    return {(tp.topic, tp.partition): f.result().offset for tp, f in futures.items()}


def _committed(
    admin: AdminClient, group: str, partitions: list[TopicPartition] | None, timeout_s: float
) -> dict[tuple[str, int], int]:
    """The group's committed offsets (all of them when ``partitions`` is None); partitions it
    never committed on are left out."""
    request = [ConsumerGroupTopicPartitions(group, partitions)]
    future = admin.list_consumer_group_offsets(request, request_timeout=timeout_s)[group]
    return {
        (tp.topic, tp.partition): tp.offset
        for tp in future.result().topic_partitions or []
        if tp.offset >= 0
    }
