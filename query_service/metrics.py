"""The query service's ``/metrics``: requests by route template, method and status, with
everything else this process registered in the default registry (the adapters' Triton,
Milvus and Neo4j latency from :mod:`agents.shared.metrics`, the consumer-lag gauges).

The search path's own Milvus and Neo4j calls are timed by :func:`store_call` in the adapters'
histogram, ``vip_dependency_call_seconds{dependency, operation, outcome}``, under operations of
their own (:data:`StoreOperation`), so one query answers "how slow is Milvus for the API".

prometheus-fastapi-instrumentator resolves each request's route template and serves the
endpoint; the metrics are ours, created once per process (its defaults are registered per app,
and a second app in one process, as in tests, would record nothing).
"""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager
from typing import Final, Literal

from fastapi import FastAPI
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram
from prometheus_fastapi_instrumentator import Instrumentator
from prometheus_fastapi_instrumentator.metrics import Info

from agents.shared.metrics import dependency_call, pipeline_metrics

__all__ = [
    "REQUEST_BUCKETS",
    "HttpMetrics",
    "StoreOperation",
    "http_metrics",
    "install",
    "store_call",
]

REQUEST_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class HttpMetrics:
    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        labels = ["method", "route", "status"]
        self.requests = Counter(
            "vip_api_requests", "Requests answered, by route template.", labels, registry=registry
        )
        self.duration = Histogram(
            "vip_api_request_duration_seconds",
            "Time to answer a request (to its last byte), by route template.",
            labels,
            buckets=REQUEST_BUCKETS,
            registry=registry,
        )

    def observe(self, info: Info) -> None:
        # modified_handler is the route template ("/v1/videos/{video_id}"), "none" otherwise.
        labels = (info.method, info.modified_handler, info.modified_status)
        self.requests.labels(*labels).inc()
        self.duration.labels(*labels).observe(info.modified_duration)


# The retrievers' calls: a nearest-neighbour search of one collection, the keyword LIKE scan,
# and the graph retriever's one Cypher statement. Connecting is timed too: the first call of a
# client waits for it.
StoreOperation = Literal[
    "connect",
    "search_text",
    "search_multimodal",
    "search_visual",
    "keyword_moments",
    "graph_moments",
]


def store_call(
    store: Literal["milvus", "neo4j"], operation: StoreOperation
) -> AbstractContextManager[None]:
    """``with store_call("milvus", "search_text"): ...`` around one query-side store call."""
    return dependency_call(store, operation)


_lock = threading.Lock()
_default: HttpMetrics | None = None


def http_metrics() -> HttpMetrics:
    global _default
    with _lock:
        if _default is None:
            _default = HttpMetrics()
        return _default


def install(app: FastAPI) -> None:
    """Measure every request and serve ``GET /metrics`` (not in the OpenAPI document). Call
    before the app starts; a second call changes nothing."""
    if getattr(app.state, "metrics_installed", False):
        return
    app.state.metrics_installed = True
    pipeline_metrics()  # the store-call histogram is scraped (empty) before the first call
    instrumentator = Instrumentator(
        should_group_status_codes=False, excluded_handlers=["^/metrics$"]
    )
    instrumentator.add(http_metrics().observe)
    instrumentator.instrument(app).expose(app, include_in_schema=False)
