"""Samples consumer lag in the background for GET /v1/lag and the Prometheus gauges.

One daemon thread reads a :class:`~vip.lag.LagSnapshot` every ``interval_s`` into a
:class:`~vip.lag_status.LagWindow`; the route and the gauges read the latest report, so a
request or a scrape never waits on Kafka.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from vip.lag import LagReader
from vip.lag_status import LagReport, LagWindow
from vip.settings import Settings

log = logging.getLogger(__name__)

_PARTITION_LABELS = ["group", "topic", "partition"]


class LagSampler(Collector):
    def __init__(
        self,
        reader: Callable[[], LagReader],
        interval_s: float,
        window_s: float,
        groups: Sequence[str] = (),
        registry: CollectorRegistry = REGISTRY,
    ) -> None:
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        self._make_reader = reader
        self._reader: LagReader | None = None
        self.interval_s = interval_s
        self.groups = tuple(groups)
        self._window = LagWindow(window_s)
        self._registry = registry
        self._registered = False
        self._lock = threading.Lock()
        self._report = self._window.report(error="not sampled yet")
        self._sampled = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> LagSampler:
        return cls(
            lambda: LagReader(settings.kafka_bootstrap),
            interval_s=settings.lag_interval_s,
            window_s=settings.lag_window_s,
            groups=settings.lag_groups,
        )

    def start(self) -> None:
        try:
            self._registry.register(self)
            self._registered = True
        except ValueError as exc:  # another sampler in this process already exports them
            log.warning("consumer-lag gauges not exported: %s", exc)
        self._thread = threading.Thread(target=self._run, name="lag-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        if self._registered:
            self._registry.unregister(self)
            self._registered = False
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def report(self) -> LagReport:
        with self._lock:
            return self._report

    def wait_for_sample(self, timeout_s: float) -> bool:
        """Whether a first sample (or a failure to take one) has happened within the time."""
        return self._sampled.wait(timeout_s)

    def sample(self) -> LagReport:
        """Read one snapshot now and evaluate the window (the thread's step)."""
        try:
            if self._reader is None:
                self._reader = self._make_reader()
            self._window.add(self._reader.snapshot(self.groups))
            report = self._window.report()
        except Exception as exc:  # Kafka down or slow: keep the window, say why it is stale
            report = self._window.report(error=f"{type(exc).__name__}: {exc}"[:500])
            if report.error != self._report.error:  # once per outage, not every interval
                log.warning("consumer-lag sample failed: %s", report.error)
        with self._lock:
            self._report = report
        self._sampled.set()
        return report

    def _run(self) -> None:
        while not self._stopping.is_set():
            started = time.monotonic()
            self.sample()
            self._stopping.wait(max(0.0, self.interval_s - (time.monotonic() - started)))

    def collect(self) -> Iterator[Metric]:
        report = self.report()
        lag = GaugeMetricFamily(
            "vip_consumer_lag_messages", "Messages not yet committed.", labels=_PARTITION_LABELS
        )
        time_lag = GaugeMetricFamily(
            "vip_consumer_time_lag_seconds",
            "Age of the oldest message not yet committed (0 when caught up).",
            labels=_PARTITION_LABELS,
        )
        committed = GaugeMetricFamily(
            "vip_consumer_committed_offset", "Committed offset.", labels=_PARTITION_LABELS
        )
        end = GaugeMetricFamily(
            "vip_consumer_end_offset", "Log end offset.", labels=_PARTITION_LABELS
        )
        status = GaugeMetricFamily(
            "vip_consumer_status",
            "Burrow-style status: 0 OK, 1 WARN, 2 STALL, 3 STOP, 4 ERR.",
            labels=_PARTITION_LABELS,
        )
        group_status = GaugeMetricFamily(
            "vip_consumer_group_status",
            "Worst partition status of the group (0 OK ... 4 ERR; ERR for an unknown group).",
            labels=["group"],
        )
        for group in report.groups:
            group_status.add_metric([group.group], group.status.code)
            for p in group.partitions:
                labels = [group.group, p.topic, str(p.partition)]
                lag.add_metric(labels, p.lag)
                end.add_metric(labels, p.end)
                status.add_metric(labels, p.status.code)
                if p.time_lag_s is not None:
                    time_lag.add_metric(labels, p.time_lag_s)
                if p.committed is not None:
                    committed.add_metric(labels, p.committed)
        yield from (lag, time_lag, committed, end, status, group_status)
        if report.sampled_at is not None:
            sampled = GaugeMetricFamily(
                "vip_consumer_lag_sampled_at_seconds", "Unix time of the latest lag sample."
            )
            sampled.add_metric([], report.sampled_at)
            yield sampled
