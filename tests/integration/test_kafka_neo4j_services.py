"""Kafka and Neo4j started through their Service classes, as `vip stack up` starts them.

Each server runs in its own process group on free loopback ports with its state in a temporary
directory; jars come from the shared cache (the first run fetches them with Maven).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka import Consumer, Producer
from neo4j import GraphDatabase

from tests.integration.services import (
    RunningService,
    make_settings,
    started,
)
from vip.settings import Settings
from vip.stack.kafka import KafkaService
from vip.stack.kafka_admin import TopicPartitionsMismatch, ensure_topics
from vip.stack.neo4j import Neo4jService

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def isolated(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A stack of this module's own: free ports, a temporary state dir, the shared jar cache."""
    return make_settings(tmp_path_factory.mktemp("stack"))


@pytest.fixture(scope="module")
def kafka(isolated: Settings) -> Iterator[RunningService]:
    running = started(KafkaService(isolated), isolated.state_dir / "kafka.log")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def neo4j(isolated: Settings) -> Iterator[RunningService]:
    running = started(Neo4jService(isolated), isolated.state_dir / "neo4j.log")
    yield running
    running.stop()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def partition_counts(settings: Settings, names: list[str]) -> dict[str, int]:
    from confluent_kafka.admin import AdminClient

    metadata = AdminClient({"bootstrap.servers": settings.kafka_bootstrap}).list_topics(timeout=10)
    return {name: len(metadata.topics[name].partitions) for name in names}


# Kafka ---------------------------------------------------------------------------------------
def test_ensure_topics_creates_topics_with_requested_partitions(
    kafka: RunningService, isolated: Settings
) -> None:
    chunks, moments = unique("chunks"), unique("moments")

    ensure_topics(isolated, {chunks: 3, moments: 1})

    assert partition_counts(isolated, [chunks, moments]) == {chunks: 3, moments: 1}


def test_ensure_topics_is_idempotent(kafka: RunningService, isolated: Settings) -> None:
    topic = unique("idempotent")
    ensure_topics(isolated, {topic: 2})

    ensure_topics(isolated, {topic: 2})

    assert partition_counts(isolated, [topic]) == {topic: 2}


def test_ensure_topics_rejects_a_partition_mismatch(
    kafka: RunningService, isolated: Settings
) -> None:
    topic = unique("mismatch")
    ensure_topics(isolated, {topic: 3})

    with pytest.raises(TopicPartitionsMismatch) as raised:
        ensure_topics(isolated, {topic: 2})

    assert str(raised.value) == (
        f"topic {topic!r} has 3 partitions, expected 2. Stream processors refuse to join topics "
        "whose partition count differs; delete the topic or change the configured count."
    )
    assert raised.value.mismatches == {topic: (3, 2)}


def test_a_produced_message_is_consumed_back_with_its_key_and_value(
    kafka: RunningService, isolated: Settings
) -> None:
    topic = unique("roundtrip")
    ensure_topics(isolated, {topic: 2})
    producer = Producer({"bootstrap.servers": isolated.kafka_bootstrap})
    producer.produce(topic, key=b"video-42", value=b'{"event": "VideoUploaded"}')
    assert producer.flush(15) == 0

    consumer = Consumer(
        {
            "bootstrap.servers": isolated.kafka_bootstrap,
            "group.id": unique("group"),
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])
    try:
        deadline = time.monotonic() + 30
        message = None
        while message is None and time.monotonic() < deadline:
            polled = consumer.poll(0.5)
            if polled is not None and polled.error() is None:
                message = polled
    finally:
        consumer.close()

    assert message is not None, "no message consumed within 30 s"
    assert (message.key(), message.value()) == (b"video-42", b'{"event": "VideoUploaded"}')


def test_kafka_listens_on_loopback_only(kafka: RunningService, isolated: Settings) -> None:
    addresses = kafka.listening_addresses()

    assert {ip for ip, _ in addresses} == {"127.0.0.1"}
    assert {isolated.kafka_port, isolated.kafka_controller_port} <= {port for _, port in addresses}


def test_kafka_version_comes_from_the_broker_jar(kafka: RunningService) -> None:
    assert kafka.service.version().startswith("4.")


# Neo4j ---------------------------------------------------------------------------------------
def count_videos(settings: Settings, video_id: str) -> int:
    with GraphDatabase.driver(settings.neo4j_uri, auth=None) as driver:
        records, _, _ = driver.execute_query(
            "MATCH (v:Video {id: $id}) RETURN count(v) AS n", id=video_id
        )
    return int(records[0]["n"])


def merge_video(settings: Settings, video_id: str) -> None:
    with GraphDatabase.driver(settings.neo4j_uri, auth=None) as driver:
        driver.execute_query("MERGE (v:Video {id: $id}) SET v.seen = true", id=video_id)


def test_a_parameterised_merge_run_twice_leaves_one_node(
    neo4j: RunningService, isolated: Settings
) -> None:
    video_id = unique("video")

    merge_video(isolated, video_id)
    merge_video(isolated, video_id)

    assert count_videos(isolated, video_id) == 1


def test_neo4j_reports_version_5_26(neo4j: RunningService) -> None:
    assert neo4j.service.version().startswith("5.26")


def test_bolt_listens_on_loopback_only(neo4j: RunningService, isolated: Settings) -> None:
    addresses = neo4j.listening_addresses()

    assert {ip for ip, _ in addresses} == {"127.0.0.1"}
    assert isolated.neo4j_port in {port for _, port in addresses}


def test_neo4j_writes_its_files_under_the_data_dir(
    neo4j: RunningService, isolated: Settings
) -> None:
    home = isolated.data_dir / "neo4j"

    assert (home / "logs" / "debug.log").is_file()
    assert (home / "data" / "databases" / "neo4j").is_dir()


def test_sigterm_stops_neo4j_cleanly_and_a_restart_keeps_the_data(
    neo4j: RunningService, isolated: Settings
) -> None:
    video_id = unique("durable")
    merge_video(isolated, video_id)

    exit_code = neo4j.stop()
    neo4j.start()

    assert exit_code in (0, 143)
    assert count_videos(isolated, video_id) == 1
