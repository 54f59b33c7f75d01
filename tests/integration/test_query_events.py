"""The query service's change feed on the real stack: a cached read is dropped when its video
changes on Kafka, the counters move, and a bad event does not stop the feed.

The API reads ``embeddings`` and ``graph.updates``; it never polls Milvus or Neo4j for
changes, so a fresh answer after a change can only come from an event.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from confluent_kafka import Producer
from fastapi.testclient import TestClient

from query_service.main import create_app
from streams import topics
from streams.records import ChunkSpan, GraphUpdated, MomentEmbedded, NodeDelta, encode
from tests.integration.conftest import poll, wait_for_job
from tests.integration.media_copies import unique_copy
from vip.settings import Settings
from vip.upload import build_event, publish

pytestmark = pytest.mark.stack

MEDIA = Path(__file__).resolve().parents[2].parent / "shared" / "media" / "video"
INGEST_DEADLINE_S = 90.0
CHANGE_DEADLINE_S = 45.0


def feed(api: httpx.Client) -> dict[str, Any]:
    events: dict[str, Any] = api.get("/v1/health").json()["events"]
    return events


def moments(api: httpx.Client, video_id: str) -> tuple[str, dict[str, Any]]:
    response = api.get(f"/v1/videos/{video_id}/moments")
    assert response.status_code == 200, response.text
    return response.headers["x-cache"], response.json()


def activity(api: httpx.Client, video_id: str) -> dict[str, Any]:
    response = api.get(f"/v1/stats/videos/{video_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def cached(api: httpx.Client, video_id: str) -> dict[str, Any]:
    """The video's moments once they are served from the cache."""

    def hit() -> dict[str, Any] | None:
        source, body = moments(api, video_id)
        return body if source == "hit" else None

    body: dict[str, Any] = poll(hit, CHANGE_DEADLINE_S, f"a cached read of {video_id}", 0.2)
    return body


@pytest.fixture(scope="module")
def counter_clip(
    running_stack: Settings, api: httpx.Client, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, str]:
    """A fresh 3 s clip, ingested as one 10 s chunk while the change feed runs."""
    poll(lambda: feed(api)["state"] == "running", 30, "the change feed to run")
    copy = unique_copy(MEDIA / "counter.mp4", tmp_path_factory.mktemp("query-events"))
    event = build_event(str(copy), running_stack)
    publish(event, running_stack)
    assert wait_for_job(api, event.video_id, INGEST_DEADLINE_S)["status"] == "completed"
    return copy, event.video_id


def test_a_cached_read_is_dropped_when_its_video_changes_on_kafka(
    running_stack: Settings, api: httpx.Client, counter_clip: tuple[Path, str]
) -> None:
    copy, video_id = counter_clip
    before = cached(api, video_id)
    assert before["count"] == 1 and before["data"][0]["end"] == pytest.approx(3.0, abs=0.1)
    assert moments(api, video_id)[0] == "hit"
    seen = activity(api, video_id)
    assert seen["moments_indexed"] == 1 and seen["graph_deltas"] >= 2

    # The same bytes in 1 s chunks: the same video (its id is its content), re-cut.
    again = build_event(str(copy), running_stack, chunk_seconds=1.0)
    publish(again, running_stack)

    def recut() -> dict[str, Any] | None:
        job = api.get(f"/v1/videos/{video_id}").json()
        done = job["upload_id"] == again.event_id and job["status"] == "completed"
        return job if done else None

    cuts = poll(recut, CHANGE_DEADLINE_S, f"{video_id} re-cut", 0.2)["chunk_count"]
    assert cuts > 1
    after = poll(
        lambda: (body := moments(api, video_id)[1])["count"] == cuts and body,
        5,
        f"the moments to show the {cuts} new chunks",
        0.2,
    )
    starts, ends = [m["start"] for m in after["data"]], [m["end"] for m in after["data"]]
    assert starts[0] == 0.0 and starts[1:] == ends[:-1] and ends[-1] == before["data"][0]["end"]
    assert cached(api, video_id)["count"] == cuts  # cached again once the graph sink wrote it

    def counted() -> dict[str, Any] | None:
        now = activity(api, video_id)
        return now if now["embedding_events"] == seen["embedding_events"] + cuts else None

    now = poll(counted, CHANGE_DEADLINE_S, f"{cuts} more embedded moments of {video_id}", 0.2)
    assert now["moments_indexed"] == cuts  # moment 0 again, and the new ones
    assert now["graph_deltas"] >= seen["graph_deltas"] + 1 + cuts  # the new cut, each moment
    assert now["last_event_at"] > seen["last_event_at"]


def test_a_malformed_event_is_skipped_and_the_feed_reads_on(
    running_stack: Settings, api: httpx.Client, counter_clip: tuple[Path, str]
) -> None:
    _, video_id = counter_clip
    rejected = feed(api)["rejected"]
    newer = orjson.loads(encode(_moment(video_id)))
    producer = Producer({"bootstrap.servers": running_stack.kafka_bootstrap})
    # No key: the graph stage dead-letters them without failing any video.
    producer.produce(topics.EMBEDDINGS, value=b'{"type": "MomentEmbedded", "vers')
    producer.produce(topics.EMBEDDINGS, value=orjson.dumps({**newer, "version": 2}))
    assert producer.flush(10) == 0

    poll(lambda: feed(api)["rejected"] >= rejected + 2, 30, "the feed to skip both", 0.2)
    assert feed(api)["state"] == "running"

    cached(api, video_id)
    deltas = activity(api, video_id)["graph_deltas"]
    # A delta that changes nothing in the graph (the sink MERGEs the node as it is).
    touch = GraphUpdated(video_id=video_id, nodes=(NodeDelta(label="Video", key=video_id),))
    producer.produce(topics.GRAPH_UPDATES, key=video_id.encode(), value=encode(touch))
    assert producer.flush(10) == 0

    poll(
        lambda: activity(api, video_id)["graph_deltas"] == deltas + 1,
        30,
        "the feed to read the valid delta after the bad events",
        0.2,
    )
    assert moments(api, video_id)[0] == "miss"  # dropped, and held until the sink wrote it
    assert cached(api, video_id)["count"] >= 1
    assert feed(api)["state"] == "running"


def feed_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "vip-change-feed" and t.is_alive()]


def test_the_feed_starts_and_stops_with_the_app(running_stack: Settings) -> None:
    app = create_app(running_stack)
    with TestClient(app) as client:
        poll(lambda: feed(client)["state"] == "running", 30, "the in-process feed to run", 0.2)
        assert len(feed_threads()) == 1
        stopping = time.monotonic()

    assert time.monotonic() - stopping < 5.0
    assert feed_threads() == []
    assert app.state.tracking.health().state == "stopped"
    assert app.state.tracking.cache.enabled is False


def test_without_kafka_the_cache_stays_off_and_reads_go_to_the_stores(
    running_stack: Settings, counter_clip: tuple[Path, str]
) -> None:
    _, video_id = counter_clip
    app = create_app(running_stack.model_copy(update={"kafka_servers": "127.0.0.1:1"}))
    with TestClient(app) as client:
        poll(lambda: feed(client)["last_error"], 30, "the feed to report Kafka unreachable", 0.2)
        assert feed(client)["state"] == "connecting"
        assert "cannot reach Kafka" in feed(client)["last_error"]
        assert [moments(client, video_id)[0] for _ in range(3)] == ["miss"] * 3
        assert client.get("/v1/stats").json()["cache"]["entries"] == 0
        stopping = time.monotonic()

    assert time.monotonic() - stopping < 10.0
    assert feed_threads() == []


def _moment(video_id: str) -> MomentEmbedded:
    span = ChunkSpan(
        source="/nowhere.mp4",
        upload_id="u",
        chunk_index=0,
        chunk_count=1,
        start=0.0,
        end=1.0,
        video_duration=1.0,
    )
    return MomentEmbedded(
        video_id=video_id,
        moment_id=f"{video_id}:00000",
        span=span,
        text="x",
        model="m",
        vector=(1.0,),
    )
