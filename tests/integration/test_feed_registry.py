"""The feed registry on the real stack: feeds registered through the API (with its key and
source checks), run by a real feed runner with the real live publisher on a shared clip, their
segments on the real ``live.segments`` topic, deleted and stopped.

The registry's two topics are this module's own (uuid names) and so is the runner's consumer
group, so a `vip stack up feeds` runner on the stack's topics never sees these feeds. The API
is the real app in process, configured with a key and the shared media as its source root
(the stack's API has neither); its feed wiring is pointed at this module's topics.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka import TopicPartition
from confluent_kafka.admin import AdminClient
from fastapi.testclient import TestClient
from pydantic import SecretStr

from agents.jobs.log import unjoined_consumer
from query_service.feeds import Feeds, FeedsView, start_feeds
from query_service.main import create_app
from query_service.security import API_KEY_HEADER
from streams import topics
from streams.records import FeedRegistered, LiveSegmentRecorded, decode
from tests.integration.conftest import poll
from vip.feeds.core import DELETED, SHUT_DOWN, SOURCE_ENDED
from vip.feeds.log import FeedTopics, RecordWriter
from vip.feeds.runner import FeedRunner
from vip.settings import Settings
from vip.stack.kafka_admin import ensure_topics

pytestmark = pytest.mark.stack

API_KEY = f"feeds-test-{uuid.uuid4().hex}"
KEY = {API_KEY_HEADER: API_KEY}
# bikes.mp4 (10 s, keyframes at 0, 1.2, 3.04, 5.48, 7.48, 9.68) cut every 2 s: the cut at 9.68
# would leave a 0.32 s tail, so it is skipped.
BIKES_SEGMENTS = [(0.0, 3.04), (3.04, 5.48), (5.48, 7.48), (7.48, 10.0)]


@dataclass
class Registry:
    settings: Settings
    names: FeedTopics
    client: TestClient
    runner: FeedRunner


def feed_topics(settings: Settings) -> FeedTopics:
    tag = uuid.uuid4().hex[:8]
    names = FeedTopics(registry=f"test-feeds-{tag}", status=f"test-feeds.status-{tag}")
    compacted = {"cleanup.policy": "compact"}
    ensure_topics(
        settings,
        dict.fromkeys((names.registry, names.status), settings.kafka_partitions),
        configs={names.registry: compacted, names.status: compacted},
    )
    return names


@pytest.fixture(scope="module")
def feed_settings(running_stack: Settings, media: Path) -> Settings:
    return running_stack.model_copy(
        update={"api_key": SecretStr(API_KEY), "allowed_source_roots": (media / "video",)}
    )


def start_registry(settings: Settings) -> Iterator[Registry]:
    names = feed_topics(settings)
    app = create_app(settings)
    runner = FeedRunner(settings, names=names, group_id=f"vip-{names.registry}", name="test")
    stop = threading.Event()
    thread = threading.Thread(target=runner.run, args=(stop,), name="test-feed-runner")
    try:
        with TestClient(app) as client:
            app.state.feeds.close()
            app.state.feeds = start_feeds(settings, names)
            thread.start()
            poll(runner.ready.is_set, 30, "the runner to own the registry's partitions", 0.1)
            poll(lambda: app.state.feeds.view.loaded, 30, "the API to read the registry", 0.1)
            yield Registry(settings, names, client, runner)
            stop.set()
            thread.join(30)
            assert not thread.is_alive()
    finally:
        stop.set()
        admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
        admin.delete_topics([names.registry, names.status])


@pytest.fixture(scope="module")
def registry(feed_settings: Settings) -> Iterator[Registry]:
    yield from start_registry(feed_settings)


def feeds(registry: Registry) -> Feeds:
    wired: Feeds = registry.client.app.state.feeds  # type: ignore[attr-defined]
    return wired


def register(registry: Registry, **body: Any) -> dict[str, Any]:
    response = registry.client.post("/v1/feeds", json=body, headers=KEY)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def feed(registry: Registry, feed_id: str) -> dict[str, Any]:
    response = registry.client.get(f"/v1/feeds/{feed_id}")
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def segment_ends(settings: Settings) -> dict[int, int]:
    consumer = unjoined_consumer(settings.kafka_bootstrap, "test-feeds-ends")
    try:
        found = consumer.list_topics(topics.LIVE_SEGMENTS, timeout=10).topics[topics.LIVE_SEGMENTS]
        return {
            p: consumer.get_watermark_offsets(TopicPartition(topics.LIVE_SEGMENTS, p), 10)[1]
            for p in found.partitions
        }
    finally:
        consumer.close()


def segments_since(settings: Settings, starts: dict[int, int], feed_id: str) -> list[Any]:
    """The feed's LiveSegmentRecorded records on live.segments after ``starts``."""
    ends = segment_ends(settings)
    consumer = unjoined_consumer(settings.kafka_bootstrap, "test-feeds-read")
    records = []
    try:
        consumer.assign(
            [TopicPartition(topics.LIVE_SEGMENTS, p, o) for p, o in starts.items() if ends[p] > o]
        )
        left = {p: e for p, e in ends.items() if e > starts[p]}
        give_up = time.monotonic() + 30
        while left and time.monotonic() < give_up:
            message = consumer.poll(1.0)
            if message is None or message.error() is not None:
                continue
            if message.offset() + 1 >= left.get(message.partition(), 0):
                left.pop(message.partition(), None)
            record = decode(message.value(), LiveSegmentRecorded)
            if record.video_id == feed_id:
                records.append(record)
    finally:
        consumer.close()
    return sorted(records, key=lambda r: r.segment_index)


# The API -------------------------------------------------------------------------------------


def test_a_registered_feed_is_listed_and_every_replica_answers_the_same(registry: Registry):
    created = register(
        registry,
        source=str(registry.settings.allowed_source_roots[0] / "bikes.mp4"),
        segment_seconds=2,
        realtime=True,
        name="Bikes",
        labels={"site": "test"},
    )
    feed_id = created["feed_id"]
    other_replica = FeedsView(registry.settings.kafka_bootstrap, registry.names)
    other_replica.start()
    try:
        listed = registry.client.get("/v1/feeds").json()
        here = feeds(registry).view.get(feed_id)
        there = poll(lambda: other_replica.get(feed_id), 10, "the other replica to read it", 0.1)
    finally:
        other_replica.close()
        registry.client.delete(f"/v1/feeds/{feed_id}", headers=KEY)

    assert created["status"] == "registered"
    assert (created["name"], created["labels"], created["segment_seconds"]) == (
        "Bikes",
        {"site": "test"},
        2.0,
    )
    assert feed_id in [item["feed_id"] for item in listed["data"]]
    assert here is not None
    assert there[0] == here[0]


def test_a_feed_id_that_is_taken_is_refused_with_409(registry: Registry):
    source = str(registry.settings.allowed_source_roots[0] / "bikes.mp4")
    feed_id = f"taken-{uuid.uuid4().hex[:8]}"
    register(registry, feed_id=feed_id, source=source)

    again = registry.client.post(
        "/v1/feeds", json={"feed_id": feed_id, "source": source}, headers=KEY
    )
    registry.client.delete(f"/v1/feeds/{feed_id}", headers=KEY)

    assert (again.status_code, again.json()) == (
        409,
        {"detail": f"feed {feed_id} is already registered"},
    )


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            "http://169.254.169.254/latest/meta-data/",
            "http://169.254.169.254: refused, 169.254.169.254 is link-local or a cloud metadata "
            "address",
        ),
        (
            "rtsp://127.0.0.1:8554/cam",
            "rtsp://127.0.0.1: refused, 127.0.0.1 is loopback (allowed by "
            "feed_sources_allow_loopback)",
        ),
        ("/etc/passwd", "/etc/passwd is outside the allowed upload roots"),
        ("file:///etc/passwd", "unsupported feed scheme 'file'"),
    ],
)
def test_a_source_a_feed_may_not_read_is_refused_with_422(
    registry: Registry, source: str, message: str
):
    before = registry.client.get("/v1/feeds").json()["count"]

    refused = registry.client.post("/v1/feeds", json={"source": source}, headers=KEY)

    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "source"]
    assert message in refused.json()["detail"][0]["msg"]
    assert registry.client.get("/v1/feeds").json()["count"] == before


def test_writes_need_the_api_key(registry: Registry):
    body = {"source": "rtsp://camera.example.com/s"}

    missing = registry.client.post("/v1/feeds", json=body)
    wrong = registry.client.post("/v1/feeds", json=body, headers={API_KEY_HEADER: "nope"})
    deleting = registry.client.delete("/v1/feeds/anything")

    assert [r.status_code for r in (missing, wrong, deleting)] == [401, 401, 401]


def test_an_unknown_feed_is_404(registry: Registry):
    shown = registry.client.get("/v1/feeds/no-such-feed")
    deleted = registry.client.delete("/v1/feeds/no-such-feed", headers=KEY)

    assert (shown.status_code, shown.json()) == (404, {"detail": "no feed no-such-feed"})
    assert deleted.status_code == 404


# The runner ----------------------------------------------------------------------------------


def test_a_file_feed_runs_publishes_each_segment_and_stops_at_its_end(registry: Registry):
    starts = segment_ends(registry.settings)
    source = str(registry.settings.allowed_source_roots[0] / "bikes.mp4")
    feed_id = register(registry, source=source, segment_seconds=2, realtime=False)["feed_id"]

    ended = poll(
        lambda: (f := feed(registry, feed_id))["status"] == "stopped" and f,
        60,
        f"feed {feed_id} to reach the end of bikes.mp4",
    )
    published = segments_since(registry.settings, starts, feed_id)
    registry.client.delete(f"/v1/feeds/{feed_id}", headers=KEY)

    assert (ended["detail"], ended["segments_published"], ended["last_error"]) == (
        SOURCE_ENDED,
        len(BIKES_SEGMENTS),
        None,
    )
    assert ended["runner"] == "test"
    assert [(r.start, r.end) for r in published] == BIKES_SEGMENTS
    assert ended["last_segment_at"] is not None


def test_deleting_a_running_feed_stops_it(registry: Registry):
    source = str(registry.settings.allowed_source_roots[0] / "bikes.mp4")
    feed_id = register(registry, source=source, segment_seconds=2, realtime=True)["feed_id"]
    poll(
        lambda: feed(registry, feed_id)["segments_published"] >= 1,
        30,
        f"feed {feed_id} to run and publish a segment",
    )

    deleted = registry.client.delete(f"/v1/feeds/{feed_id}", headers=KEY)
    gone = registry.client.get(f"/v1/feeds/{feed_id}")
    stopped = poll(
        lambda: (s := feeds(registry).view.status(feed_id)) and s.state == "stopped" and s,
        15,
        f"the runner to stop feed {feed_id}",
        0.1,
    )

    assert (deleted.status_code, gone.status_code) == (204, 404)
    assert stopped.detail == DELETED
    # Stopped before bikes.mp4's 10 s were over: fewer segments than the whole clip has.
    assert 1 <= stopped.segments_published < len(BIKES_SEGMENTS)
    assert feed_id not in registry.runner.core.active()
    assert not [t for t in threading.enumerate() if t.name == f"vip-feed-{feed_id}"]


def test_the_runner_refuses_a_source_written_to_the_registry_behind_the_apis_back(
    registry: Registry,
):
    feed_id = f"sneaky-{uuid.uuid4().hex[:8]}"
    record = FeedRegistered(video_id=feed_id, source="http://169.254.169.254/", segment_seconds=5)
    writer = RecordWriter(registry.settings.kafka_bootstrap)
    try:
        writer.write(registry.names.registry, feed_id, record)
        failed = poll(
            lambda: (
                (f := registry.client.get(f"/v1/feeds/{feed_id}").json()).get("status") == "failed"
                and f
            ),
            15,
            f"the runner to refuse feed {feed_id}",
            0.2,
        )
        writer.write(registry.names.registry, feed_id, None)
    finally:
        writer.close()

    assert failed["detail"] == "the source was refused"
    assert "is link-local or a cloud metadata address" in failed["last_error"]


def test_a_runner_that_is_stopped_stops_its_feeds_and_says_so(feed_settings: Settings):
    names = feed_topics(feed_settings)
    runner = FeedRunner(feed_settings, names=names, group_id=f"vip-{names.registry}", name="t2")
    stop = threading.Event()
    thread = threading.Thread(target=runner.run, args=(stop,), name="test-feed-runner-2")
    view = FeedsView(feed_settings.kafka_bootstrap, names)
    writer = RecordWriter(feed_settings.kafka_bootstrap)
    feed_id = f"shutdown-{uuid.uuid4().hex[:8]}"
    source = str(feed_settings.allowed_source_roots[0] / "bikes.mp4")
    record = FeedRegistered(video_id=feed_id, source=source, segment_seconds=2)
    try:
        thread.start()
        view.start()
        writer.write(names.registry, feed_id, record)
        poll(lambda: (s := view.status(feed_id)) and s.state == "running", 30, "the feed to run")

        started = time.monotonic()
        stop.set()  # what `vip feeds run` does on SIGTERM
        thread.join(30)
        stopping_took = time.monotonic() - started
        said = poll(
            lambda: (s := view.status(feed_id)) and s.state == "stopped" and s,
            10,
            "the runner's last word on the feed",
            0.1,
        )
    finally:
        stop.set()
        view.close()
        writer.close()
        admin = AdminClient({"bootstrap.servers": feed_settings.kafka_bootstrap})
        admin.delete_topics([names.registry, names.status])

    assert not thread.is_alive()
    assert (said.detail, said.runner) == (SHUT_DOWN, "t2")
    assert stopping_took < 15
    assert not [t for t in threading.enumerate() if t.name == f"vip-feed-{feed_id}"]


# The stack's own API -------------------------------------------------------------------------


def test_the_stacks_api_serves_the_registry(api: httpx.Client, running_stack: Settings):
    listed = api.get("/v1/feeds")
    refused = api.post("/v1/feeds", json={"source": "rtsp://camera.example.com/s"})

    assert listed.status_code == 200, listed.text
    assert set(listed.json()) == {"data", "count"}
    expected = 401 if running_stack.api_key is not None else 403
    assert refused.status_code == expected, refused.text


def test_the_stacks_feed_runner_reports_on_the_stacks_registry(
    api: httpx.Client, running_stack: Settings
):
    from vip.stack import stack

    process = stack.manager(running_stack).owned_process("feeds")
    assert process is not None, "the stack's feed runner is not running (vip stack up feeds)"
    feed_id = f"test-stack-{uuid.uuid4().hex[:8]}"
    record = FeedRegistered(video_id=feed_id, source="http://169.254.169.254/", segment_seconds=5)
    writer = RecordWriter(running_stack.kafka_bootstrap)
    try:
        writer.write(topics.FEEDS, feed_id, record)
        failed = poll(
            lambda: (f := api.get(f"/v1/feeds/{feed_id}").json()).get("status") == "failed" and f,
            30,
            f"the stack's runner to refuse feed {feed_id}",
        )
    finally:
        writer.write(topics.FEEDS, feed_id, None)
        writer.close()

    assert failed["detail"] == "the source was refused"
    assert failed["runner"].endswith(f":{process.pid}")
