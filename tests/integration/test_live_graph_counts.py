"""A live feed's Video node on the running stack's graph sink: a late delta of an earlier chunk
(which says one more chunk follows it) does not lower the count the final segment set, so the
feed completes only once its last chunk is indexed. The deltas go through ``graph.updates``,
as the live and graph stages send them, so the shared graph stays a replay of that topic."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from confluent_kafka import Producer

from agents.graph.core import moment_delta
from agents.live.core import feed_video_delta, segment_span
from streams import topics
from streams.records import GraphUpdated, LiveSegmentRecorded, MomentEmbedded, encode
from tests.integration.conftest import poll
from vip.settings import Settings

pytestmark = pytest.mark.stack

BOUNDS = [(0.0, 3.04), (3.04, 7.48), (7.48, 10.0)]
T0 = datetime(2026, 11, 29, 13, 0, tzinfo=UTC)


def segment(feed_id: str, index: int, final: bool = False) -> LiveSegmentRecorded:
    start, end = BOUNDS[index]
    return LiveSegmentRecorded(
        video_id=feed_id,
        segment_index=index,
        start=start,
        end=end,
        started_at=T0 + timedelta(seconds=start),
        uri=f"file:///blobs/live/{feed_id}/{index:05d}.mp4",
        source="rtsp://camera.example.com/stream",
        final=final,
    )


def chunk_delta(feed_id: str, index: int, final: bool = False) -> GraphUpdated:
    return moment_delta(
        MomentEmbedded(
            video_id=feed_id,
            moment_id=f"{feed_id}:{index:05d}",
            span=segment_span(segment(feed_id, index, final)),
            text="cyclists on a road",
            model="text_embedding:1",
            vector=(0.1, 0.2),
        )
    )


def send(settings: Settings, deltas: list[GraphUpdated]) -> None:
    producer = Producer(
        {"bootstrap.servers": settings.kafka_bootstrap, "partitioner": "murmur2_random"}
    )
    failures: list[str] = []
    done = threading.Semaphore(0)

    def delivered(err: Any, msg: Any) -> None:
        if err is not None:
            failures.append(str(err))
        done.release()

    for delta in deltas:
        producer.produce(
            topics.GRAPH_UPDATES, key=delta.video_id.encode(), value=encode(delta),
            on_delivery=delivered,
        )  # fmt: skip
    producer.flush(15)
    assert all(done.acquire(timeout=1) for _ in deltas) and not failures, failures


def test_a_late_chunk_delta_does_not_complete_a_live_feed_early(
    running_stack: Settings, api: httpx.Client
) -> None:
    feed_id = f"test-live-count-{uuid.uuid4().hex[:8]}"

    def video() -> dict[str, Any] | None:
        response = api.get(f"/v1/videos/{feed_id}")
        return response.json() if response.status_code == 200 else None

    send(
        running_stack,
        [
            feed_video_delta(segment(feed_id, 0), 640, 360, "h264"),
            feed_video_delta(segment(feed_id, 1), 640, 360, "h264"),
            chunk_delta(feed_id, 1),  # says 3 chunks
            feed_video_delta(segment(feed_id, 2, final=True), 640, 360, "h264"),
            chunk_delta(feed_id, 0),  # late: says 2 chunks, and 2 are now indexed
        ],
    )
    waiting = poll(
        lambda: (body := video()) and body["indexed_chunks"] == 2 and body,
        60,
        f"{feed_id}'s first two chunks in the graph",
    )
    send(running_stack, [chunk_delta(feed_id, 2, final=True)])
    done = poll(
        lambda: (body := video()) and body["status"] == "completed" and body,
        60,
        f"{feed_id} to complete",
    )

    assert (waiting["status"], waiting["chunk_count"]) == ("processing", 3)
    assert (done["chunk_count"], done["indexed_chunks"]) == (3, 3)
