"""Stage groups new to a Kafka adopt the former single group's commits on their own topics
(vip.stack.worker_groups), on the real broker, with throwaway group names."""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient

from streams import topics
from vip.settings import Settings
from vip.stack.worker_groups import adopt_legacy_offsets

pytestmark = pytest.mark.stack


def committed(admin: AdminClient, group: str) -> dict[tuple[str, int], int]:
    answer = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group]
    partitions = answer.result(timeout=10).topic_partitions
    return {(tp.topic, tp.partition): tp.offset for tp in partitions}


def test_new_stage_groups_start_where_the_single_group_was(running_stack: Settings) -> None:
    admin = AdminClient({"bootstrap.servers": running_stack.kafka_bootstrap})
    run = uuid.uuid4().hex[:8]
    legacy = f"test-legacy-{run}"
    # What the single group had committed: offsets 0 move nothing, and exist on any topic.
    legacy_offsets = [
        TopicPartition(topics.VIDEOS_UPLOADED, 0, 0),
        TopicPartition(topics.CHUNKS, 1, 0),
        TopicPartition(topics.retry_topic(topics.CHUNKS, 1), 0, 0),
        TopicPartition(topics.EMBEDDINGS, 0, 0),
        TopicPartition(topics.GRAPH_UPDATES, 1, 0),
    ]
    admin.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(legacy, legacy_offsets)])[
        legacy
    ].result(timeout=10)

    def group_of(stage: str) -> str:
        return f"test-{run}-{stage}"

    stages = ("chunking", "analysis", "embedding", "graph")
    try:
        adopted = adopt_legacy_offsets(running_stack.kafka_bootstrap, stages, group_of, legacy)

        assert adopted == {group_of("chunking"): 1, group_of("analysis"): 2, group_of("graph"): 2}
        assert committed(admin, group_of("analysis")) == {
            (topics.CHUNKS, 1): 0,
            (topics.retry_topic(topics.CHUNKS, 1), 0): 0,
        }
        assert committed(admin, group_of("graph")) == {
            (topics.EMBEDDINGS, 0): 0,
            (topics.GRAPH_UPDATES, 1): 0,
        }
        # Groups that have committed keep their own offsets: a second run adopts nothing.
        assert adopt_legacy_offsets(running_stack.kafka_bootstrap, stages, group_of, legacy) == {}
    finally:  # `vip lag` watches every group that commits on a pipeline topic
        groups = [legacy, *(group_of(stage) for stage in stages)]
        for done in admin.delete_consumer_groups(groups, request_timeout=10).values():
            done.exception(timeout=10)
