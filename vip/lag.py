"""Consumer lag: how far a consumer group's committed offsets trail each partition's end."""

from __future__ import annotations

from collections.abc import Sequence

from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec


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
    request = [ConsumerGroupTopicPartitions(group, partitions)]
    future = admin.list_consumer_group_offsets(request, request_timeout=timeout_s)[group]
    committed = {
        (tp.topic, tp.partition): tp.offset for tp in future.result().topic_partitions or []
    }
    lag = {}
    for key, end in ends.items():
        done = committed.get(key, -1)
        lag[key] = max(0, end - (done if done >= 0 else starts[key]))
    return lag


def _offsets(
    admin: AdminClient, partitions: list[TopicPartition], spec: OffsetSpec, timeout_s: float
) -> dict[tuple[str, int], int]:
    futures = admin.list_offsets({tp: spec for tp in partitions}, request_timeout=timeout_s)
    return {(tp.topic, tp.partition): f.result().offset for tp, f in futures.items()}


def caught_up(bootstrap: str, group: str, topics: Sequence[str]) -> bool:
    """Whether ``group`` has committed everything on ``topics`` (and the topics exist)."""
    lag = consumer_lag(bootstrap, group, topics)
    return bool(lag) and not any(lag.values())
