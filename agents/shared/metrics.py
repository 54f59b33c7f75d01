"""Prometheus metrics of the ingestion agents and of the adapters they share with the API.

What is measured (names as scraped; see docs/operations.md, "Metrics"):

* ``vip_events_processed_total{stage}``: events a stage finished with, whatever the outcome;
* ``vip_events_failed_total{stage, reason}``: those that failed, by a short, bounded reason
  (an exception's class name, never its message);
* ``vip_event_duration_seconds{stage}``: handling time per event, 10 ms to 120 s buckets;
* ``vip_events_in_flight{stage}``: events being handled now;
* ``vip_dependency_call_seconds{dependency, operation, outcome}``: calls to Triton, Milvus and
  Neo4j (the adapters time themselves through :func:`timed` and :func:`dependency_call`);
* ``vip_worker_rss_bytes{stages}``: a worker's resident memory, read on each scrape.

Nothing is created at import: the metrics are registered in the default registry on first
use, so the worker's ``/metrics`` (:func:`serve_worker_metrics`) and the query service's
(``query_service.metrics``) show the adapters' calls made in their own process.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Final, Literal, ParamSpec, TypeVar

import psutil
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import start_http_server
from prometheus_client.registry import Collector

__all__ = [
    "CALL_BUCKETS",
    "EVENT_BUCKETS",
    "Dependency",
    "MetricsServer",
    "PipelineMetrics",
    "dependency_call",
    "failed",
    "pipeline_metrics",
    "reason_of",
    "serve_worker_metrics",
    "timed",
    "track_event",
]

log = logging.getLogger(__name__)

Dependency = Literal["triton", "milvus", "neo4j"]

# An event takes from a few milliseconds (a graph delta) to minutes (a long chunk's analysis).
EVENT_BUCKETS: Final = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 90, 120)
# One call to a store or to Triton: a millisecond (a cached read) to the 30 s client timeout.
CALL_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

_P = ParamSpec("_P")
_T = TypeVar("_T")


class PipelineMetrics:
    """The metrics above, registered in ``registry`` (tests pass their own)."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.processed = Counter(
            "vip_events_processed",
            "Events a stage finished handling, successful or not.",
            ["stage"],
            registry=registry,
        )
        self.failures = Counter(
            "vip_events_failed",
            "Events a stage failed to handle (retried or dead-lettered), by reason.",
            ["stage", "reason"],
            registry=registry,
        )
        self.duration = Histogram(
            "vip_event_duration_seconds",
            "Time a stage spent handling one event.",
            ["stage"],
            buckets=EVENT_BUCKETS,
            registry=registry,
        )
        self.in_flight = Gauge(
            "vip_events_in_flight", "Events being handled now.", ["stage"], registry=registry
        )
        self.dependency_seconds = Histogram(
            "vip_dependency_call_seconds",
            "Latency of calls to Triton, Milvus and Neo4j.",
            ["dependency", "operation", "outcome"],
            buckets=CALL_BUCKETS,
            registry=registry,
        )

    @contextmanager
    def track_event(self, stage: str) -> Iterator[None]:
        """Around the handling of one event: in-flight while inside, then its duration and
        one processed event; an exception escaping also counts as a failure (by its class
        name) and is re-raised. Cancellation (a rebalance, a shutdown) counts nothing."""
        self.in_flight.labels(stage).inc()
        started = time.perf_counter()
        finished = False
        try:
            yield
            finished = True
        except Exception as exc:
            finished = True
            self.failed(stage, reason_of(exc))
            raise
        finally:
            self.in_flight.labels(stage).dec()
            if finished:
                self.duration.labels(stage).observe(time.perf_counter() - started)
                self.processed.labels(stage).inc()

    def failed(self, stage: str, reason: str) -> None:
        """One failure the stage handled itself (sent to a retry topic or dead-lettered)."""
        self.failures.labels(stage, reason).inc()

    @contextmanager
    def dependency_call(self, dependency: Dependency, operation: str) -> Iterator[None]:
        started = time.perf_counter()
        outcome = "error"
        try:
            yield
            outcome = "ok"
        finally:
            self.dependency_seconds.labels(dependency, operation, outcome).observe(
                time.perf_counter() - started
            )


_lock = threading.Lock()
_default: PipelineMetrics | None = None


def pipeline_metrics() -> PipelineMetrics:
    """The process's metrics in the default registry, created on first use."""
    global _default
    if _default is None:
        with _lock:
            if _default is None:
                _default = PipelineMetrics()
    return _default


def reason_of(error: BaseException) -> str:
    """A failure's reason label: the exception's class name (bounded, unlike its message)."""
    return type(error).__name__


def track_event(stage: str) -> AbstractContextManager[None]:
    """``with metrics.track_event("analysis"): ...`` around one event's handling."""
    return pipeline_metrics().track_event(stage)


def failed(stage: str, reason: str) -> None:
    pipeline_metrics().failed(stage, reason)


def dependency_call(dependency: Dependency, operation: str) -> AbstractContextManager[None]:
    """``with metrics.dependency_call("milvus", "search"): ...`` around one call."""
    return pipeline_metrics().dependency_call(dependency, operation)


def timed(dependency: Dependency, operation: str) -> Callable[[Callable[_P, _T]], Callable[_P, _T]]:
    """Decorates an adapter method so that each call is timed as ``operation``."""

    def decorate(call: Callable[_P, _T]) -> Callable[_P, _T]:
        @functools.wraps(call)
        def timed_call(*args: _P.args, **kwargs: _P.kwargs) -> _T:
            with dependency_call(dependency, operation):
                return call(*args, **kwargs)

        return timed_call

    return decorate


class WorkerResources(Collector):
    """A worker's resident memory, read from the OS on each scrape."""

    def __init__(self, stages: Sequence[str]) -> None:
        self._process = psutil.Process()
        self._stages = ",".join(stages)

    def collect(self) -> Iterator[Metric]:
        rss = GaugeMetricFamily(
            "vip_worker_rss_bytes", "Resident memory of this worker process.", labels=["stages"]
        )
        rss.add_metric([self._stages], float(self._process.memory_info().rss))
        yield rss


@dataclass
class MetricsServer:
    """A running ``/metrics`` endpoint; :meth:`close` stops it and drops its collector."""

    address: tuple[str, int]
    _stop: Callable[[], None]

    def close(self) -> None:
        self._stop()


def serve_worker_metrics(
    host: str, port: int, stages: Sequence[str], registry: CollectorRegistry = REGISTRY
) -> MetricsServer | None:
    """Serve ``registry`` at ``http://host:port/metrics`` from a daemon thread, with the
    worker's RSS. ``port`` 0 turns it off; a port already taken is logged and skipped: a
    worker without metrics still does its work."""
    if port == 0:
        return None
    pipeline_metrics()  # the series exist (at zero) before the first event
    resources = WorkerResources(stages)
    try:
        server, thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        log.warning("worker metrics not served on %s:%d: %s", host, port, exc)
        return None
    registry.register(resources)

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        registry.unregister(resources)

    log.info("worker metrics at http://%s:%d/metrics", host, port)
    return MetricsServer(address=(host, port), _stop=stop)
