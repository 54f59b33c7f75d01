"""The query service's /metrics and GET /v1/lag on the real stack: a search is counted by its
route and times its Triton and Milvus calls; the lag sampler reads the shared Kafka.

The app is built in process (the running API is left alone), with the wiring
`query_service.main` gets: metrics.install, the lag router, a LagSampler started and stopped
with the app.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from query_service import metrics
from query_service.lag_sampler import LagSampler
from query_service.main import create_app
from query_service.routers import lag
from streams import topics
from vip.settings import Settings

pytestmark = pytest.mark.stack


@pytest.fixture
def app(running_stack: Settings) -> Iterator[FastAPI]:
    """The API app with a 1 s lag interval and a 5 s window. Until `query_service.main` wires
    metrics and lag itself, the fixture adds what it would."""
    settings = running_stack.model_copy(update={"lag_interval_s": 1.0, "lag_window_s": 5.0})
    app = create_app(settings)
    metrics.install(app)  # no-op when main did it
    if any(getattr(route, "path", None) == "/v1/lag" for route in app.routes):
        yield app  # main's lifespan starts and stops the sampler
        return
    app.include_router(lag.router)
    sampler = LagSampler.from_settings(settings)
    app.state.lag = sampler
    sampler.start()
    yield app
    sampler.stop()


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_requests_are_counted_by_route_with_their_triton_and_neo4j_calls(app: FastAPI) -> None:
    search = {"method": "POST", "route": "/v1/search", "status": "200"}
    videos = {"method": "GET", "route": "/v1/videos", "status": "200"}
    embed = {"dependency": "triton", "operation": "text_embedding", "outcome": "ok"}
    listing = {"dependency": "neo4j", "operation": "list_videos", "outcome": "ok"}
    counted = [
        ("vip_api_requests_total", search),
        ("vip_api_requests_total", videos),
        ("vip_dependency_call_seconds_count", embed),
        ("vip_dependency_call_seconds_count", listing),
    ]
    before = [sample(name, **labels) for name, labels in counted]

    with TestClient(app) as client:
        found = client.post("/v1/search", json={"query": "a red bicycle", "top_k": 3})
        listed = client.get("/v1/videos", params={"limit": 2})
        scraped = client.get("/metrics")

    assert (found.status_code, listed.status_code) == (200, 200), found.text + listed.text
    after = [sample(name, **labels) for name, labels in counted]
    requests, videos_listed, embeddings, neo4j_reads = (
        a - b for a, b in zip(after, before, strict=True)
    )
    assert (requests, videos_listed, neo4j_reads) == (1, 1, 1)
    # The model's config is fetched once per client (also a call to Triton), then cached.
    assert embeddings in (1, 2)
    assert scraped.status_code == 200
    assert 'vip_api_request_duration_seconds_bucket{le="60.0",method="POST"' in scraped.text
    assert 'vip_dependency_call_seconds_count{dependency="neo4j"' in scraped.text


def test_lag_shows_the_shared_workers_groups_and_their_gauges(app: FastAPI) -> None:
    with TestClient(app) as client:
        body = client.get("/v1/lag").json()
        scraped = client.get("/metrics").text
        filtered = client.get("/v1/lag", params={"group": "no-such-group"}).json()

    assert body["error"] is None
    assert body["window_s"] == 5.0
    owners = [
        group
        for group in body["groups"]
        if any(p["owned"] and p["topic"] == topics.VIDEOS_UPLOADED for p in group["partitions"])
    ]
    assert owners, body
    group = owners[0]
    assert group["members"] >= 1
    # A live, known group: members own its partitions (no STOP) and its offsets only advance.
    assert group["status"] not in ("STOP", "ERR"), group
    for partition in group["partitions"]:
        assert partition["end"] >= (partition["committed"] or 0)
        assert partition["lag"] >= 0
    assert f'vip_consumer_group_status{{group="{group["group"]}"}}' in scraped
    assert filtered["groups"] == []
