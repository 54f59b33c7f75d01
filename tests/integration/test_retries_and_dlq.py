"""A poisoned event lands in the dead-letter topic with its reason, and `vip dlq replay`
completes its job once the cause is fixed (the real stack; nothing is disrupted)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka import Producer

from agents.shared.milvus_store import MilvusMoments
from streams import topics
from streams.records import encode
from tests.integration.conftest import poll
from tests.integration.media_copies import unique_copy
from tests.integration.test_pipeline_end_to_end import vip
from vip.settings import Settings
from vip.upload import build_event

pytestmark = pytest.mark.stack


def dead_letters(video_id: str) -> list[dict[str, Any]]:
    result = vip("dlq", "list", "--json", "--video", video_id)
    assert result.returncode == 0, result.stderr
    letters: list[dict[str, Any]] = json.loads(result.stdout)
    return letters


def publish(settings: Settings, key: bytes, value: bytes) -> tuple[int, int]:
    """Publish one message to videos.uploaded; returns its (partition, offset)."""
    delivered: list[tuple[int, int]] = []
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, "acks": "all"})
    producer.produce(
        topics.VIDEOS_UPLOADED,
        key=key,
        value=value,
        on_delivery=lambda err, msg: err or delivered.append((msg.partition(), msg.offset())),
    )
    assert producer.flush(15) == 0 and delivered
    return delivered[0]


def job_status(api: httpx.Client, video_id: str) -> dict[str, Any] | None:
    response = api.get(f"/v1/videos/{video_id}")
    return response.json() if response.status_code == 200 else None


def test_a_poisoned_upload_is_dead_lettered_and_its_replay_after_the_fix_completes_the_job(
    running_stack: Settings, api: httpx.Client, tmp_path: Path, media: Path
):
    video = unique_copy(media / "video" / "bikes.mp4", tmp_path)
    upload = build_event(str(video), running_stack)
    moved = video.rename(tmp_path / "not-there-yet.mp4")  # the upload's file goes missing
    partition, offset = publish(running_stack, upload.video_id.encode(), encode(upload))

    [letter] = poll(lambda: dead_letters(upload.video_id), 90, "the upload's dead letter")
    assert letter["stage"] == "chunking"
    assert letter["reason"] == f"{video.resolve()}: no such file"
    assert letter["error_type"] == "agents.shared.sources.SourceError"
    assert letter["attempts"] == 1  # a missing file is not worth retrying
    assert (letter["original_topic"], letter["original_partition"], letter["original_offset"]) == (
        topics.VIDEOS_UPLOADED,
        partition,
        offset,
    )
    assert letter["replayed"] is False
    failed = poll(
        lambda: (job := job_status(api, upload.video_id)) and job["status"] == "failed" and job,
        60,
        "the job to be marked failed",
    )
    assert failed["error"] == letter["reason"]

    moved.rename(video)  # the fix
    replayed = vip("dlq", "replay", "--video", upload.video_id)

    assert replayed.returncode == 0, replayed.stderr
    assert replayed.stdout.strip().endswith("replayed 1 letter(s)")
    job = poll(
        lambda: (job := job_status(api, upload.video_id)) and job["status"] == "completed" and job,
        240,
        "the replayed job to complete",
    )
    assert job["error"] is None and job["indexed_chunks"] == job["chunk_count"] >= 1
    moments = MilvusMoments(running_stack.milvus_uri, running_stack.milvus_collection)
    try:
        assert moments.count(upload.video_id) == job["chunk_count"]
    finally:
        moments.close()
    [letter] = dead_letters(upload.video_id)
    assert letter["replayed"] is True
    again = vip("dlq", "replay", "--video", upload.video_id)
    assert again.returncode == 0 and again.stdout.strip().endswith("replayed 0 letter(s)")
