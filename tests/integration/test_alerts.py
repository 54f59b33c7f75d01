"""Alert rules on the running stack: rules made through the API, a real video ingested, and
its alerts seen on the ``alerts`` topic, on the SSE stream and at a webhook.

The rules are made through an API process started here with an API key (the dev stack's API
runs without one, and rules need one); it shares the stack's Kafka, Triton and stores, and the
stack's worker runs the alerts stage. The webhook receiver is a plain local HTTP server: the
user's endpoint, as a user would run it.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka import Consumer, TopicPartition

from agents.alerts.webhooks import signature_matches
from query_service.security import API_KEY_HEADER
from streams import topics
from streams.records import AlertRaised, decode
from tests.integration.conftest import poll, wait_for_job
from tests.integration.media_copies import unique_copy
from tests.integration.services import end_offsets
from tests.integration.services import keyed_api as keyed_api_process
from tests.ports import free_port
from vip.settings import Settings
from vip.upload import build_event, publish

pytestmark = pytest.mark.stack

API_KEY = f"test-{secrets.token_hex(16)}"
WEBHOOK_SECRET = f"whsec-{secrets.token_hex(16)}"
ALERTS_DEADLINE_S = 60.0
METADATA = "is link-local or a cloud metadata address"
# bikes.mp4: 10.0 s of cyclists and cars (manifest facts: bicycle, car, person).
BIKES_DURATION_S = 10.0


# A webhook receiver -------------------------------------------------------------------------
@dataclass
class Receiver:
    """Answers 503 to the first POST (the sender must try again), 204 to the others."""

    url: str
    posts: list[tuple[dict[str, str], bytes]] = field(default_factory=list)


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    port = free_port()
    got = Receiver(f"http://127.0.0.1:{port}/hooks/vip")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            first = not got.posts
            got.posts.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(503 if first else 204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield got
    server.shutdown()
    server.server_close()


# An API with a key --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def keyed_api(
    running_stack: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[httpx.Client]:
    """An API process with an API key (rules need one; the dev stack's API has none)."""
    with keyed_api_process(
        running_stack, API_KEY, tmp_path_factory.mktemp("api") / "api.log"
    ) as client:
        yield client


def make_rule(api: httpx.Client, **rule: Any) -> dict[str, Any]:
    response = api.post("/v1/alerts", json=rule)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


# The stream ---------------------------------------------------------------------------------
class EventStream:
    """GET /v1/alerts/stream read in a thread, its events kept in order."""

    def __init__(self, base_url: str, feed_id: str) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self._client = httpx.Client(base_url=base_url, timeout=httpx.Timeout(10, read=None))
        self._feed_id = feed_id
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        name = None
        try:
            with self._client.stream(
                "GET", "/v1/alerts/stream", params={"feed_id": self._feed_id}
            ) as response:
                for line in response.iter_lines():
                    if line.startswith("event: "):
                        name = line.removeprefix("event: ")
                    elif line.startswith("data: ") and name is not None:
                        self.events.append((name, json.loads(line.removeprefix("data: "))))
                        name = None
        except (httpx.HTTPError, RuntimeError):
            pass  # closed by the test

    def alerts(self) -> list[dict[str, Any]]:
        return [data for name, data in self.events if name == "alert"]

    def close(self) -> None:
        self._client.close()


# Reading the alerts topic -------------------------------------------------------------------
def alerts_since(settings: Settings, start: dict[int, int], video_id: str) -> list[AlertRaised]:
    """The alerts about ``video_id`` from ``start`` to the topic's current end."""
    ends = end_offsets(settings, topics.ALERTS)
    consumer = Consumer(
        {"bootstrap.servers": settings.kafka_bootstrap, "group.id": f"t-{uuid.uuid4().hex}",
         "enable.auto.commit": False}
    )  # fmt: skip
    wanted = {p: end for p, end in ends.items() if end > start.get(p, 0)}
    consumer.assign([TopicPartition(topics.ALERTS, p, start.get(p, 0)) for p in wanted])
    positions = {p: start.get(p, 0) for p in wanted}
    found = []
    try:
        while any(positions[p] < wanted[p] for p in wanted):
            message = consumer.poll(5)
            if message is None:
                break
            if message.error():
                continue
            positions[message.partition()] = message.offset() + 1
            alert = decode(message.value(), AlertRaised)
            if alert.video_id == video_id:
                found.append(alert)
    finally:
        consumer.close()
    return found


# One real video, watched by four rules ------------------------------------------------------
@dataclass
class Watched:
    video_id: str
    rules: dict[str, dict[str, Any]]
    alerts: list[AlertRaised]
    stream: EventStream
    chunks: int


@pytest.fixture(scope="module")
def watched_bikes(
    running_stack: Settings,
    api: httpx.Client,
    keyed_api: httpx.Client,
    receiver: Receiver,
    tmp_path_factory: pytest.TempPathFactory,
    media: Path,
) -> Iterator[Watched]:
    video = unique_copy(media / "video" / "bikes.mp4", tmp_path_factory.mktemp("alerts"))
    event = build_event(str(video), running_stack)
    video_id = event.video_id
    scoped = {"feed_id": video_id}
    rules = {
        "bicycle": make_rule(
            keyed_api, name="bikes in view", condition={"kind": "label", "label": "bikes"},
            webhook_url=receiver.url, webhook_secret=WEBHOOK_SECRET, **scoped,
        ),
        "semantic": make_rule(
            keyed_api, name="cycling",
            condition={"kind": "semantic", "query": "a bicycle", "min_score": 0.4}, **scoped,
        ),
        "cat": make_rule(
            keyed_api, name="cat on a sofa",
            condition={"kind": "semantic", "query": "a cat sleeping on a sofa", "min_score": 0.4},
            **scoped,
        ),
        # Fires on every moment: once it has, every rule has seen every moment.
        "every": make_rule(
            keyed_api, name="every moment",
            condition={"kind": "semantic", "query": "a scene", "min_score": 0.0}, **scoped,
        ),
    }  # fmt: skip
    stream = EventStream(str(keyed_api.base_url), video_id)
    poll(lambda: stream.events, 10, "the alert stream to be ready")
    start = end_offsets(running_stack, topics.ALERTS)
    try:
        publish(event, running_stack)
        job = wait_for_job(api, video_id, deadline_s=100)
        assert job["status"] == "completed", job
        chunks = int(job["chunk_count"])
        every = rules["every"]["rule_id"]

        def all_evaluated() -> list[AlertRaised] | None:
            found = alerts_since(running_stack, start, video_id)
            done = len({a.moment_id for a in found if a.rule_id == every}) == chunks
            return found if done else None

        found = poll(all_evaluated, ALERTS_DEADLINE_S, "alerts for every moment", 1.0)
        yield Watched(video_id, rules, found, stream, chunks)
    finally:
        stream.close()
        for rule in rules.values():
            keyed_api.delete(f"/v1/alerts/{rule['rule_id']}")


def of_rule(watched: Watched, name: str) -> list[AlertRaised]:
    rule_id = watched.rules[name]["rule_id"]
    return [a for a in watched.alerts if a.rule_id == rule_id]


def test_a_bicycle_label_rule_fires_on_the_topic_with_clips_inside_the_video(
    watched_bikes: Watched,
) -> None:
    fired = of_rule(watched_bikes, "bicycle")

    assert fired, watched_bikes.alerts
    for alert in fired:
        assert alert.matched.kind == "label" and alert.matched.label == "bicycle"
        assert alert.matched.count is not None and alert.matched.count >= 1
        assert alert.clip.video_id == watched_bikes.video_id
        assert 0.0 <= alert.clip.start < alert.clip.end <= BIKES_DURATION_S + 0.05
        assert alert.occurred_at >= alert.moment_at
    latencies = [(a.occurred_at - a.moment_at).total_seconds() for a in watched_bikes.alerts]
    print(f"embedding-to-alert latency: max {max(latencies):.3f}s over {len(latencies)} alerts")


def test_the_stream_carries_the_same_alerts_with_a_playable_clip(watched_bikes: Watched) -> None:
    expected = {a.alert_id for a in watched_bikes.alerts}

    streamed = poll(
        lambda: (
            {a["alert_id"]: a for a in watched_bikes.stream.alerts()}
            if {a["alert_id"] for a in watched_bikes.stream.alerts()} >= expected
            else None
        ),
        20,
        "the streamed alerts",
    )

    [label_alert, *_] = of_rule(watched_bikes, "bicycle")
    clip = streamed[label_alert.alert_id]["clip"]
    video_id = watched_bikes.video_id
    assert (clip["video_id"], clip["start"], clip["end"]) == (
        video_id, label_alert.clip.start, label_alert.clip.end,
    )  # fmt: skip
    assert clip["media_url"] == (
        f"/v1/videos/{video_id}/media#t={label_alert.clip.start:g},{label_alert.clip.end:g}"
    )
    assert watched_bikes.stream.events[0] == ("ready", {"feed_id": video_id, "rule_id": None})


def test_a_semantic_rule_fires_and_a_rule_that_does_not_match_stays_silent(
    watched_bikes: Watched,
) -> None:
    near = of_rule(watched_bikes, "semantic")

    assert near and all(a.score >= 0.4 and a.matched.query == "a bicycle" for a in near)
    assert of_rule(watched_bikes, "cat") == []
    assert len(of_rule(watched_bikes, "every")) == watched_bikes.chunks


def test_the_webhook_gets_each_alert_signed_after_a_failed_first_try(
    watched_bikes: Watched, receiver: Receiver
) -> None:
    fired = {a.alert_id for a in of_rule(watched_bikes, "bicycle")}

    def delivered() -> set[str]:
        ok = {h["x-vip-alert-id"] for h, _ in receiver.posts[1:]}
        return ok if ok >= fired else set()

    poll(delivered, 30, "webhook deliveries")
    first_headers, _ = receiver.posts[0]
    retried = [
        h for h, _ in receiver.posts if h["x-vip-alert-id"] == first_headers["x-vip-alert-id"]
    ]
    assert [h["x-vip-delivery-attempt"] for h in retried] == ["1", "2"]
    for headers, body in receiver.posts:
        assert signature_matches(WEBHOOK_SECRET, body, headers["x-vip-signature"])
        assert headers["content-type"] == "application/json"
        assert abs(int(headers["x-vip-timestamp"]) - time.time()) < 300
        alert = json.loads(body)
        assert alert["alert_id"] == headers["x-vip-alert-id"] and alert["alert_id"] in fired
        assert alert["rule_name"] == "bikes in view"
        assert datetime.fromisoformat(alert["occurred_at"]) >= datetime.fromisoformat(
            alert["moment_at"]
        )


# The rules' own API -------------------------------------------------------------------------
def test_rules_are_made_read_listed_and_deleted_with_the_key(keyed_api: httpx.Client) -> None:
    feed_id = f"feed-{uuid.uuid4().hex[:8]}"
    made = make_rule(
        keyed_api, name="exit sign", feed_id=feed_id,
        condition={"kind": "text", "phrase": "Fire Exit", "sources": ["ocr"]},
        webhook_url="https://hooks.example.com/services/T1/B2/secret",
    )  # fmt: skip
    rule_id = made["rule_id"]

    assert len(made["webhook_secret"]) >= 32
    shown = keyed_api.get(f"/v1/alerts/{rule_id}").json()
    assert shown == {k: v for k, v in made.items() if k != "webhook_secret"}
    assert shown["webhook_url"] == "https://hooks.example.com/…"
    assert shown["condition"] == {
        "kind": "text", "phrase": "Fire Exit", "sources": ["ocr"], "label": None,
        "min_count": None, "query": None, "min_score": None, "model": None,
    }  # fmt: skip
    listed = keyed_api.get("/v1/alerts", params={"feed_id": feed_id}).json()
    assert (listed["count"], [r["rule_id"] for r in listed["data"]]) == (1, [rule_id])

    assert keyed_api.delete(f"/v1/alerts/{rule_id}").status_code == 204
    assert keyed_api.get(f"/v1/alerts/{rule_id}").status_code == 404
    assert keyed_api.delete(f"/v1/alerts/{rule_id}").json() == {
        "detail": f"no alert rule {rule_id}"
    }


def test_a_semantic_rule_stores_the_query_embedded_by_the_moments_model(
    keyed_api: httpx.Client,
) -> None:
    made = make_rule(
        keyed_api, name="crowd", condition={"kind": "semantic", "query": "a crowd of people"},
        feed_id="feed-semantic",
    )  # fmt: skip
    try:
        assert made["condition"]["min_score"] == 0.5
        assert made["condition"]["model"].startswith("text_embedding:")
        assert made["webhook_secret"] is None and made["webhook_url"] is None
    finally:
        keyed_api.delete(f"/v1/alerts/{made['rule_id']}")


@pytest.mark.parametrize(
    ("webhook_url", "detail"),
    [("http://169.254.169.254/latest/meta-data", f"webhook_url 169.254.169.254 {METADATA}"),
     ("http://10.1.2.3/hook", "webhook_url 10.1.2.3 is private"),
     ("file:///etc/passwd", "webhook_url must be http(s), got scheme 'file'")],
)  # fmt: skip
def test_a_webhook_inside_the_deployment_is_refused(
    keyed_api: httpx.Client, webhook_url: str, detail: str
) -> None:
    response = keyed_api.post(
        "/v1/alerts",
        json={
            "name": "x",
            "condition": {"kind": "label", "label": "car"},
            "webhook_url": webhook_url,
        },
    )

    assert (response.status_code, response.json()) == (422, {"detail": detail})


def test_making_or_deleting_a_rule_needs_the_key(keyed_api: httpx.Client) -> None:
    rule = {"name": "x", "condition": {"kind": "label", "label": "car"}}

    without = httpx.post(f"{keyed_api.base_url}/v1/alerts", json=rule)
    wrong = httpx.delete(
        f"{keyed_api.base_url}/v1/alerts/r0123456789abcdef01234567",
        headers={API_KEY_HEADER: "wrong"},
    )

    assert (without.status_code, without.json()["detail"]) == (
        401, f"an API key is required: send it in the {API_KEY_HEADER} header",
    )  # fmt: skip
    assert (wrong.status_code, wrong.json()["detail"]) == (401, "invalid API key")
