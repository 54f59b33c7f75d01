"""The compacted jobs topic on the real Kafka: the jobs stage rebuilds its state from it, and the
query side's view reads it and follows it. Each test uses a topic of its own."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

from agents.jobs.log import read_jobs
from agents.jobs.store import JobStore
from query_service.jobs import JobsView
from streams.records import JobState, UploadProgress, encode
from tests.integration.conftest import poll
from vip.settings import Settings
from vip.stack.kafka_admin import ensure_topics

pytestmark = pytest.mark.stack


@pytest.fixture
def jobs_topic(running_stack: Settings) -> Iterator[str]:
    name = f"test-jobs-{uuid.uuid4().hex[:8]}"
    ensure_topics(
        running_stack,
        {name: running_stack.kafka_partitions},
        configs={name: {"cleanup.policy": "compact"}},
    )
    yield name
    AdminClient({"bootstrap.servers": running_stack.kafka_bootstrap}).delete_topics([name])


def state(video_id: str, status: str, upload_id: str = "up-1") -> JobState:
    at = datetime(2025, 5, 1, tzinfo=UTC)
    return JobState(
        video_id=video_id,
        event_id=video_id,
        occurred_at=at,
        status=status,
        upload=UploadProgress(upload_id=upload_id, source=f"/m/{video_id}.mp4", started_at=at),
    )


def send(settings: Settings, topic: str, messages: list[tuple[str, JobState | None]]) -> None:
    producer = Producer(
        {"bootstrap.servers": settings.kafka_bootstrap, "partitioner": "murmur2_random"}
    )
    for video_id, job in messages:
        producer.produce(topic, key=video_id.encode(), value=encode(job) if job else None)
    assert producer.flush(10) == 0


def test_the_latest_state_per_video_is_read_back_and_tombstones_delete(
    running_stack: Settings, jobs_topic: str
):
    newest = state("va", "completed")
    send(
        running_stack,
        jobs_topic,
        [("va", state("va", "processing")), ("vb", state("vb", "failed")), ("va", newest)],
    )
    send(running_stack, jobs_topic, [("vb", None)])

    stored = read_jobs(running_stack.kafka_bootstrap, jobs_topic)
    store = JobStore(lambda: read_jobs(running_stack.kafka_bootstrap, jobs_topic))
    loaded = store.reload()

    assert {video_id: s.state for video_id, s in stored.items()} == {"va": newest}
    assert loaded == 1 and store.get("va") == newest and store.get("vb") is None
    assert store.stale is False


def test_the_view_loads_the_topic_then_follows_it(running_stack: Settings, jobs_topic: str):
    send(running_stack, jobs_topic, [("va", state("va", "processing"))])
    view = JobsView(running_stack.kafka_bootstrap, jobs_topic)
    view.start()
    try:
        assert view.wait_loaded(30), view.last_error
        assert view.get("va") == state("va", "processing")

        send(
            running_stack,
            jobs_topic,
            [("va", state("va", "completed")), ("vc", state("vc", "queued"))],
        )
        poll(lambda: view.get("vc"), 30, "the view to follow the topic")
        assert view.get("va") == state("va", "completed")
        page, total = view.page(status="completed")
        assert total == 1 and page == [state("va", "completed")]
        send(running_stack, jobs_topic, [("vc", None)])
        poll(lambda: view.get("vc") is None, 30, "the tombstone to delete the job")
    finally:
        view.close()
