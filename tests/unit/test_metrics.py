"""The metrics API the stages and adapters call (agents/shared/metrics.py), a worker's
/metrics endpoint, and the query service's request metrics (query_service/metrics.py)."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import socket

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY, CollectorRegistry

from agents.shared.errors import InferenceUnavailable
from agents.shared.metrics import (
    PipelineMetrics,
    WorkerResources,
    dependency_call,
    reason_of,
    serve_worker_metrics,
    timed,
)
from query_service.lag_sampler import LagSampler
from query_service.metrics import HttpMetrics, install
from tests.conftest import REPO_ROOT
from tests.ports import free_port
from vip.lag import GroupLag, LagSnapshot, PartitionLag


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


def test_an_event_handled_is_counted_timed_and_in_flight_while_it_runs(
    registry: CollectorRegistry,
) -> None:
    metrics = PipelineMetrics(registry)

    with metrics.track_event("analysis"):
        in_flight = value(registry, "vip_events_in_flight", stage="analysis")

    assert in_flight == 1
    assert value(registry, "vip_events_in_flight", stage="analysis") == 0
    assert value(registry, "vip_events_processed_total", stage="analysis") == 1
    assert value(registry, "vip_event_duration_seconds_count", stage="analysis") == 1
    assert value(registry, "vip_event_duration_seconds_bucket", stage="analysis", le="120.0") == 1


def test_an_exception_escaping_an_event_counts_as_a_failure_by_its_class(
    registry: CollectorRegistry,
) -> None:
    metrics = PipelineMetrics(registry)

    with pytest.raises(InferenceUnavailable), metrics.track_event("embedding"):
        raise InferenceUnavailable("text_embedding: Triton at 127.0.0.1:8000 unreachable")

    failed = value(
        registry, "vip_events_failed_total", stage="embedding", reason="InferenceUnavailable"
    )
    assert failed == 1
    assert value(registry, "vip_events_processed_total", stage="embedding") == 1
    assert value(registry, "vip_events_in_flight", stage="embedding") == 0


def test_a_cancelled_event_counts_nothing(registry: CollectorRegistry) -> None:
    metrics = PipelineMetrics(registry)

    with pytest.raises(asyncio.CancelledError), metrics.track_event("graph"):
        raise asyncio.CancelledError

    assert value(registry, "vip_events_processed_total", stage="graph") == 0
    assert value(registry, "vip_event_duration_seconds_count", stage="graph") == 0
    assert value(registry, "vip_events_in_flight", stage="graph") == 0


def test_failures_a_stage_handles_itself_are_counted_by_reason(
    registry: CollectorRegistry,
) -> None:
    metrics = PipelineMetrics(registry)

    metrics.failed("chunking", reason_of(ValueError("truncated: video data ends at 11.84s")))
    metrics.failed("chunking", "ValueError")

    assert value(registry, "vip_events_failed_total", stage="chunking", reason="ValueError") == 2


def test_dependency_calls_are_timed_with_their_outcome(registry: CollectorRegistry) -> None:
    metrics = PipelineMetrics(registry)

    with metrics.dependency_call("milvus", "search"):
        pass
    with pytest.raises(ConnectionError), metrics.dependency_call("milvus", "search"):
        raise ConnectionError("Milvus at 127.0.0.1:19530 refused the connection")

    for outcome in ("ok", "error"):
        count = value(
            registry,
            "vip_dependency_call_seconds_count",
            dependency="milvus",
            operation="search",
            outcome=outcome,
        )
        assert count == 1, outcome


def test_a_timed_adapter_method_records_each_call_in_the_process_metrics() -> None:
    class Store:
        @timed("neo4j", "apply")
        def apply(self, rows: list[int]) -> int:
            return len(rows)

    labels = {"dependency": "neo4j", "operation": "apply", "outcome": "ok"}
    with dependency_call("neo4j", "apply"):  # the series exists before the first read
        pass
    before = value(REGISTRY, "vip_dependency_call_seconds_count", **labels)

    assert Store().apply([1, 2, 3]) == 3

    assert value(REGISTRY, "vip_dependency_call_seconds_count", **labels) == before + 1


def test_a_worker_serves_its_metrics_and_memory_on_its_port(registry: CollectorRegistry) -> None:
    metrics = PipelineMetrics(registry)
    with metrics.track_event("chunking"):
        pass
    port = free_port()
    server = serve_worker_metrics("127.0.0.1", port, ["chunking"], registry)
    assert server is not None
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    finally:
        server.close()

    lines = dict(line.rsplit(" ", 1) for line in text.splitlines() if not line.startswith("#"))
    assert float(lines['vip_worker_rss_bytes{stages="chunking"}']) > 10_000_000
    assert float(lines['vip_events_processed_total{stage="chunking"}']) == 1
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)


def test_a_worker_whose_metrics_port_is_taken_still_runs(
    registry: CollectorRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with caplog.at_level(logging.WARNING):
            server = serve_worker_metrics("127.0.0.1", port, ["graph"], registry)

    assert server is None
    assert f"worker metrics not served on 127.0.0.1:{port}" in caplog.text
    assert serve_worker_metrics("127.0.0.1", 0, ["graph"], registry) is None


def test_the_api_counts_requests_by_route_template_and_serves_metrics() -> None:
    app = FastAPI()

    @app.get("/v1/videos/{video_id}")
    def video(video_id: str) -> dict[str, str]:
        return {"id": video_id}

    install(app)
    install(app)  # a second call changes nothing
    labels = {"method": "GET", "route": "/v1/videos/{video_id}", "status": "200"}
    before = value(REGISTRY, "vip_api_requests_total", **labels)

    with TestClient(app) as client:
        for video_id in ("v1", "v2", "v3"):
            assert client.get(f"/v1/videos/{video_id}").status_code == 200
        scraped = client.get("/metrics")

    assert value(REGISTRY, "vip_api_requests_total", **labels) == before + 3
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")
    assert 'vip_api_request_duration_seconds_count{method="GET",' in scraped.text
    assert "/metrics" not in app.openapi()["paths"]
    assert 'route="/metrics"' not in scraped.text


class OneSnapshot:
    """Stands in for the Kafka lag reader: one group lagging on one partition."""

    def snapshot(self, groups: tuple[str, ...]) -> LagSnapshot:
        partition = PartitionLag("chunks", 1, 340, 352, 12, 31.5, False)
        return LagSnapshot(1_795_946_000.0, (GroupLag("vip", "EMPTY", 0, (partition,)),))

    def close(self) -> None:
        pass


def test_the_dashboard_asks_only_for_series_the_platform_exports() -> None:
    registry = CollectorRegistry()
    pipeline, http = PipelineMetrics(registry), HttpMetrics(registry)
    with pipeline.track_event("analysis"), pipeline.dependency_call("triton", "ocr"):
        pipeline.failed("analysis", "InferenceUnavailable")
    http.requests.labels("GET", "/v1/lag", "200").inc()
    http.duration.labels("GET", "/v1/lag", "200").observe(0.01)
    registry.register(WorkerResources(["analysis"]))
    sampler = LagSampler(OneSnapshot, interval_s=10, window_s=300, registry=registry)  # type: ignore[arg-type]
    sampler.sample()
    registry.register(sampler)
    exported = {sample.name for metric in registry.collect() for sample in metric.samples}
    dashboard = json.loads((REPO_ROOT / "compose/grafana/dashboards/vip.json").read_text())
    queries = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]

    asked = {name for query in queries for name in re.findall(r"\bvip_[a-z_]+\b", query)}

    assert len(queries) >= 15
    assert asked - exported == set()
    assert (
        registry.get_sample_value(
            "vip_consumer_time_lag_seconds", {"group": "vip", "topic": "chunks", "partition": "1"}
        )
        == 31.5
    )
