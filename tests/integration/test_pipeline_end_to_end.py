"""One real video through every topic into Milvus and Neo4j, and a bad one beside it."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import orjson
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from agents.shared.graph_store import Neo4jGraph
from agents.shared.milvus_store import MilvusMoments
from streams import topics
from tests.integration.conftest import poll, wait_for_job
from tests.integration.media_copies import truncated_copy, unique_copy
from tests.integration.services import end_offsets
from vip.settings import Settings

pytestmark = pytest.mark.stack


def vip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vip", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def upload(path: Path) -> str:
    result = vip("upload", str(path))
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def read_topic(settings: Settings, topic: str) -> list[tuple[bytes | None, bytes]]:
    """Every message currently in the topic, read from the start by a throwaway group."""
    ends = end_offsets(settings, topic)
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"test-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.assign([TopicPartition(topic, p, 0) for p in ends])
    seen: list[tuple[bytes | None, bytes]] = []
    positions = dict.fromkeys(ends, 0)
    try:
        while any(positions[p] < ends[p] for p in ends):
            message = consumer.poll(5)
            if message is None:
                break
            if message.error():
                continue
            positions[message.partition()] = message.offset() + 1
            seen.append((message.key(), message.value()))
    finally:
        consumer.close()
    return seen


def test_a_real_video_is_chunked_analysed_embedded_graphed_and_searchable(
    running_stack: Settings, api: httpx.Client, tmp_path: Path, media: Path
):
    video = unique_copy(media / "video" / "car-detection.mp4", tmp_path)
    video_id = upload(video)

    job = wait_for_job(api, video_id)

    assert job["status"] == "completed", job
    assert job["source"] == str(video.resolve())
    assert job["duration"] == pytest.approx(30.16, abs=0.05)
    assert [(c["start"], c["end"]) for c in job["chunks"]] == [(0.0, 14.4), (14.4, 30.16)]
    moments = MilvusMoments(running_stack.milvus_uri, running_stack.milvus_collection)
    graph = Neo4jGraph(running_stack.neo4j_uri)
    try:
        assert moments.count(video_id) == 2
        assert graph.counts(video_id) == {"chunks": 2, "next": 1}
    finally:
        moments.close()
        graph.close()
    labels = {label for chunk in job["chunks"] for label in chunk["labels"]}
    assert "car" in labels, job["chunks"]

    response = api.post(
        "/v1/search",
        json={"query": "a car driving on the road", "top_k": 5, "video_ids": [video_id]},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["count"] == len(body["data"]) == 2
    best = body["data"][0]
    assert best["video_id"] == video_id and best["source"] == str(video.resolve())
    assert (best["start"], best["end"]) in {(0.0, 14.4), (14.4, 30.16)}
    assert 0 < best["score"] <= 1 and "car" in best["text"]


def test_redelivering_an_upload_duplicates_nothing(
    running_stack: Settings, api: httpx.Client, tmp_path: Path, media: Path
):
    video = unique_copy(media / "video" / "bikes.mp4", tmp_path)
    first = upload(video)
    assert wait_for_job(api, first)["status"] == "completed"
    again = upload(video)
    assert again == first
    # The second event is processed too: wait until it has passed through the graph sink by
    # checking the stores stay exact while the consumer group catches up.
    poll(lambda: consumer_group_caught_up(running_stack), 120, "the worker to catch up")
    moments = MilvusMoments(running_stack.milvus_uri, running_stack.milvus_collection)
    graph = Neo4jGraph(running_stack.neo4j_uri)
    try:
        detail = api.get(f"/v1/videos/{first}").json()
        n = detail["chunk_count"]
        assert n >= 1 and detail["indexed_chunks"] == n
        assert moments.count(first) == n
        assert graph.counts(first) == {"chunks": n, "next": n - 1}
    finally:
        moments.close()
        graph.close()


def consumer_group_caught_up(settings: Settings) -> bool:
    from vip.stage_lag import pipeline_caught_up

    return pipeline_caught_up(settings.kafka_bootstrap)


@pytest.mark.allow_error_logs
def test_a_truncated_video_fails_cleanly_while_a_good_one_beside_it_succeeds(
    running_stack: Settings, api: httpx.Client, tmp_path: Path, media: Path
):
    broken = truncated_copy(media / "video" / "car-detection.mp4", tmp_path, keep_fraction=0.4)
    good = unique_copy(media / "video" / "bikes.mp4", tmp_path)
    broken_id = upload(broken)
    good_id = upload(good)

    failed = wait_for_job(api, broken_id)
    succeeded = wait_for_job(api, good_id)

    assert failed["status"] == "failed"
    assert "truncated" in failed["error"] and "of a declared 30.16s" in failed["error"]
    assert succeeded["status"] == "completed" and succeeded["indexed_chunks"] >= 1
    letters = [
        orjson.loads(value)
        for key, value in read_topic(
            running_stack, topics.dead_letter_topic(topics.VIDEOS_UPLOADED)
        )
        if key == broken_id.encode()
    ]
    assert letters, "the truncated upload is not in the dead-letter topic"
    letter = letters[-1]
    assert letter["stage"] == "chunking"
    assert letter["error_type"] == "agents.chunking.decoder.TruncatedVideo"
    assert orjson.loads(letter["payload"])["video_id"] == broken_id
    assert letter["original_offset"] is not None


@pytest.mark.allow_error_logs
def test_a_malformed_event_is_dead_lettered_with_its_reason(running_stack: Settings):
    key = f"vbad{uuid.uuid4().hex[:12]}".encode()
    producer = Producer({"bootstrap.servers": running_stack.kafka_bootstrap})
    producer.produce(topics.VIDEOS_UPLOADED, key=key, value=b'{"type": "VideoUploaded", "vers')
    assert producer.flush(10) == 0

    def dead_lettered() -> dict[str, object] | None:
        for k, value in read_topic(running_stack, topics.dead_letter_topic(topics.VIDEOS_UPLOADED)):
            if k == key:
                letter: dict[str, object] = orjson.loads(value)
                return letter
        return None

    letter = poll(dead_lettered, 60, "the malformed event in the DLQ")
    assert str(letter["reason"]).startswith("value is not JSON")
    assert letter["payload"] == '{"type": "VideoUploaded", "vers'


@pytest.mark.parametrize(
    ("make_source", "message"),
    [
        (lambda tmp: str(tmp / "missing.mp4"), "no such file"),
        (
            lambda tmp: (tmp / "notes.mp4").write_text("not a video") and str(tmp / "notes.mp4"),
            "not a readable video",
        ),
        (lambda tmp: "http://169.254.169.254/latest", "unsupported source scheme 'http'"),
    ],
)
def test_bad_uploads_get_a_clear_error_and_publish_nothing(
    running_stack: Settings, tmp_path: Path, make_source, message
):
    before = end_offsets(running_stack, topics.VIDEOS_UPLOADED)
    result = vip("upload", make_source(tmp_path))
    assert result.returncode == 1
    assert message in result.stderr
    assert end_offsets(running_stack, topics.VIDEOS_UPLOADED) == before
