"""One consumer group per stage replaced the single group ``vip`` that ran every stage. A stage
group that has never committed would start from the topics' beginning (Faust reads from the
earliest offset) and redo every video ever ingested; instead it adopts where ``vip`` had got to
on the stage's own topics. Run before the workers start (`vip stack up`); a no-op once each
stage group has committed, or where ``vip`` never did."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient

from streams.app import STAGE_INPUTS, WORKER_STAGES, app_id_for

__all__ = ["LEGACY_GROUP", "adopt_legacy_offsets", "stage_reads"]

log = logging.getLogger(__name__)

LEGACY_GROUP = "vip"
_TIMEOUT_S = 10.0


def stage_reads(stage: str, topic: str) -> bool:
    """Whether ``stage``'s worker consumes ``topic`` (its inputs and their retry levels)."""
    if stage == "jobs":
        from agents.jobs.core import RECORDS

        return topic in RECORDS
    inputs = STAGE_INPUTS.get(stage, ())
    return any(topic == name or topic.startswith(f"{name}.retry.") for name in inputs)


def _committed(admin: AdminClient, group: str) -> list[TopicPartition]:
    request = [ConsumerGroupTopicPartitions(group)]
    result = admin.list_consumer_group_offsets(request, request_timeout=_TIMEOUT_S)
    answer = result[group].result(timeout=_TIMEOUT_S)
    return [tp for tp in answer.topic_partitions if tp.offset >= 0 and not tp.error]


def adopt_legacy_offsets(
    bootstrap: str,
    stages: Iterable[str] = WORKER_STAGES,
    group_of: Callable[[str], str] = app_id_for,
    legacy: str = LEGACY_GROUP,
) -> dict[str, int]:
    """Give each stage group without commits ``legacy``'s commits on the stage's topics;
    returns how many partitions each group adopted."""
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 3})
    inherited = _committed(admin, legacy)
    adopted: dict[str, int] = {}
    if not inherited:
        return adopted
    for stage in stages:
        group = group_of(stage)
        if _committed(admin, group):
            continue
        offsets = [
            TopicPartition(tp.topic, tp.partition, tp.offset)
            for tp in inherited
            if stage_reads(stage, tp.topic)
        ]
        if not offsets:
            continue
        request = [ConsumerGroupTopicPartitions(group, offsets)]
        admin.alter_consumer_group_offsets(request, request_timeout=_TIMEOUT_S)[group].result(
            timeout=_TIMEOUT_S
        )
        adopted[group] = len(offsets)
        log.info("%s starts where %s was on %d partitions", group, legacy, len(offsets))
    return adopted
