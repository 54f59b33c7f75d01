"""Create the platform's topics with the partition counts the stream processors expect.

Kept apart from :mod:`vip.stack.kafka` (the local broker) because it is a client concern: the
agents call it against whichever broker ``settings.kafka_bootstrap`` names, local or remote.
:mod:`vip.stack.kafka` re-exports it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ClusterMetadata,
    ConfigEntry,
    ConfigResource,
    NewTopic,
    ResourceType,
)

from vip.settings import Settings
from vip.stack.errors import StackError

POLL_INTERVAL_S = 0.2


class TopicSetupFailed(StackError):
    """A topic could not be created, or its metadata could not be read."""


class TopicPartitionsMismatch(TopicSetupFailed):
    """An existing topic has a different partition count from the one requested."""

    def __init__(self, mismatches: Mapping[str, tuple[int, int]]) -> None:
        details = "; ".join(
            f"topic {name!r} has {actual} partitions, expected {wanted}"
            for name, (actual, wanted) in sorted(mismatches.items())
        )
        super().__init__(
            f"{details}. Stream processors refuse to join topics whose partition count differs; "
            "delete the topic or change the configured count."
        )
        self.mismatches = dict(mismatches)


def _partition_counts(metadata: ClusterMetadata, names: set[str]) -> dict[str, int]:
    return {
        name: len(topic.partitions)
        for name, topic in metadata.topics.items()
        if name in names and topic.error is None
    }


def ensure_topics(
    settings: Settings,
    topics: Mapping[str, int],
    timeout_s: float = 30.0,
    configs: Mapping[str, Mapping[str, str]] | None = None,
) -> None:
    """Create each missing topic (name -> partitions) with replication factor 1, and set the
    given topic configs (name -> {key: value}) on new and existing topics alike.

    Existing topics are left alone when their partition count matches; any mismatch raises
    :class:`TopicPartitionsMismatch` naming every offending topic. Safe to call concurrently:
    a topic another process created first counts as existing.
    """
    for name, partitions in topics.items():
        if partitions < 1:
            raise ValueError(f"topic {name!r}: partitions must be at least 1, got {partitions}")
    if not topics:
        return
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    wanted = set(topics)
    try:
        existing = _partition_counts(admin.list_topics(timeout=timeout_s), wanted)
    except KafkaException as error:
        raise TopicSetupFailed(
            f"cannot read topic metadata from {settings.kafka_bootstrap}: {error}"
        ) from error

    configs = configs or {}
    missing = [
        NewTopic(
            name,
            num_partitions=topics[name],
            replication_factor=1,
            config=dict(configs.get(name, {})),
        )
        for name in sorted(wanted - existing.keys())
    ]
    raced: set[str] = set()
    if missing:
        futures = admin.create_topics(
            missing, operation_timeout=timeout_s, request_timeout=timeout_s
        )
        for name, future in futures.items():
            try:
                future.result()
            except KafkaException as error:
                if error.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise TopicSetupFailed(f"creating topic {name!r} failed: {error}") from error
                raced.add(name)
    if raced:
        existing.update(_await_metadata(admin, raced, timeout_s))

    mismatches = {
        name: (actual, topics[name]) for name, actual in existing.items() if actual != topics[name]
    }
    if mismatches:
        raise TopicPartitionsMismatch(mismatches)
    _set_configs(admin, {name: configs[name] for name in existing if name in configs}, timeout_s)


def _set_configs(
    admin: AdminClient, configs: Mapping[str, Mapping[str, str]], timeout_s: float
) -> None:
    """Set configs on topics that already existed (a stack made by an older version)."""
    resources = [
        ConfigResource(
            ResourceType.TOPIC,
            name,
            incremental_configs=[
                ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET)
                for key, value in sorted(entries.items())
            ],
        )
        for name, entries in sorted(configs.items())
        if entries
    ]
    if not resources:
        return
    futures = admin.incremental_alter_configs(resources, request_timeout=timeout_s)
    for resource, future in futures.items():
        try:
            future.result()
        except KafkaException as error:
            message = f"setting configs of {resource.name!r} failed: {error}"
            raise TopicSetupFailed(message) from error


def _await_metadata(admin: AdminClient, names: set[str], timeout_s: float) -> dict[str, int]:
    """Partition counts of topics that were created elsewhere, once metadata shows them."""
    deadline = time.monotonic() + timeout_s
    while True:
        counts = _partition_counts(admin.list_topics(timeout=timeout_s), names)
        if counts.keys() == names:
            return counts
        if time.monotonic() > deadline:
            raise TopicSetupFailed(
                f"topics {sorted(names - counts.keys())} exist but their metadata did not appear "
                f"within {timeout_s:.0f}s"
            )
        time.sleep(POLL_INTERVAL_S)
