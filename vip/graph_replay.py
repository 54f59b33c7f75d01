"""Rebuild Neo4j from the ``graph.updates`` topic: the graph is a materialised view of it.

The topic is read from its first retained offset to the end it had when the replay began,
partition by partition; each delta is applied exactly as the graph sink applies it (deltas of
one video share a partition, so their order is kept). The topic keeps its deltas forever
(``retention.ms = -1``, set when `vip stack` creates it), so nothing the graph holds is lost
from it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaException, TopicPartition

from agents.shared.graph_store import Neo4jGraph
from streams import topics
from streams.errors import MalformedEvent, UnknownEventVersion
from streams.records import GraphUpdated, decode


@dataclass(frozen=True)
class ReplayResult:
    applied: int
    skipped: int  # malformed or unknown-version messages (their originals are dead letters)


def replay_graph_updates(
    bootstrap: str, graph: Neo4jGraph, topic: str = topics.GRAPH_UPDATES, poll_s: float = 5.0
) -> ReplayResult:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"vip-replay-{uuid.uuid4().hex}",  # never commits: leaves no trace
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "log_level": 3,
        }
    )
    applied = skipped = 0
    try:
        metadata = consumer.list_topics(topic, timeout=10)
        partitions = metadata.topics[topic].partitions
        if metadata.topics[topic].error is not None or not partitions:
            raise KafkaException(f"topic {topic} is not available")
        for partition in sorted(partitions):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), 10)
            if high <= low:
                continue
            consumer.assign([TopicPartition(topic, partition, low)])
            offset = low
            while offset < high:
                message = consumer.poll(poll_s)
                if message is None:
                    raise TimeoutError(f"{topic}[{partition}] stopped at offset {offset} of {high}")
                if message.error():
                    raise KafkaException(message.error())
                offset = (message.offset() or offset) + 1
                try:
                    update = decode(message.value(), GraphUpdated)
                except (MalformedEvent, UnknownEventVersion):
                    skipped += 1
                    continue
                graph.apply(update)
                applied += 1
    finally:
        consumer.close()
    return ReplayResult(applied=applied, skipped=skipped)
