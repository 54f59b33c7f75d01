"""A stopped stage, on real Kafka: its lag grows and its status turns STALL or STOP within
the window (issue 6, item 8), as the API's sampler, its gauges, GET /v1/lag and `vip lag`
report it.

The chunking stage runs as a real `vip worker --stage chunking` process against a Kafka of this
module's own (stopping the shared worker would stall everyone else's tests); its consumer group
is found through the admin API, as `vip lag` finds groups. Milvus and Neo4j are the shared
stack's: the bootstrap only checks that their collections and constraints exist.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import Result
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from typer.testing import CliRunner

from query_service.lag_sampler import LagSampler
from query_service.routers import lag as lag_router
from streams import topics
from tests.integration.conftest import poll
from tests.integration.services import RunningService, bootstrapped_kafka
from tests.ports import free_port
from vip import cli
from vip.lag import LagReader
from vip.lag_status import GroupReport, LagReport
from vip.settings import Settings

pytestmark = pytest.mark.stack

INTERVAL_S = 1.0
WINDOW_S = 6.0
# Rule 1 keeps a partition OK while a zero lag is in the window; then STALL, and STOP once no
# commit and no owner were seen for longer than the window. Both fit in two windows.
STATUS_DEADLINE_S = 2 * WINDOW_S + 10 * INTERVAL_S
CLIP = "counter.mp4"  # 3 s: chunked in about a second


@pytest.fixture(scope="module")
def private(running_stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """This module's own Kafka ports and state; the other stores are the shared stack's."""
    return running_stack.model_copy(
        update={
            "state_dir": tmp_path_factory.mktemp("lag-stack"),
            "kafka_port": free_port(),
            "kafka_controller_port": free_port(),
            "kafka_servers": None,
            "worker_metrics_port": free_port(),
        }
    )


@pytest.fixture(scope="module")
def kafka(private: Settings) -> Iterator[RunningService]:
    with bootstrapped_kafka(private) as running:
        yield running


def vip_env(settings: Settings) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "VIP_KAFKA_SERVERS": settings.kafka_bootstrap,
        "VIP_STATE_DIR": str(settings.state_dir),
        "VIP_WORKER_METRICS_PORT": str(settings.worker_metrics_port),
    }


def vip(settings: Settings, *args: str) -> Result:
    """A `vip` command in this process, with the module's settings in its environment."""
    env = {k: v for k, v in vip_env(settings).items() if k.startswith("VIP_")}
    return CliRunner().invoke(cli.app, list(args), env=env)


def upload(settings: Settings, media: Path) -> None:
    result = vip(settings, "upload", str(media / "video" / CLIP))
    assert result.exit_code == 0, result.output


class ChunkingWorker:
    def __init__(self, settings: Settings, log_path: Path) -> None:
        with log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "vip", "worker", "--stage", "chunking"],
                env=vip_env(settings),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.log_path = log_path

    def stop(self) -> int | None:
        """SIGTERM, as `vip stack down` stops a worker: it commits and leaves its group."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
                return None
        return self.process.returncode

    def log(self) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-40:])

    def __enter__(self) -> ChunkingWorker:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def joined(self, report: LagReport) -> GroupReport | None:
        """The group whose live members own videos.uploaded (the chunking stage's), once
        this worker has joined; fails at once if the worker exited."""
        if self.process.poll() is not None:
            pytest.fail(f"the worker exited ({self.process.returncode}):\n{self.log()}")
        for group in report.groups:
            uploads = [p for p in group.partitions if p.topic == topics.VIDEOS_UPLOADED]
            if uploads and all(p.owned for p in uploads):
                return group
        return None


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def sampler(
    private: Settings, kafka: RunningService, registry: CollectorRegistry
) -> Iterator[LagSampler]:
    """The API's sampler, on this module's Kafka, with a short window and its own registry."""
    sampling = LagSampler(
        lambda: LagReader(private.kafka_bootstrap),
        interval_s=INTERVAL_S,
        window_s=WINDOW_S,
        registry=registry,
    )
    sampling.start()
    yield sampling
    sampling.stop()


def caught_up(report: LagReport, group: str) -> bool:
    """The group committed on videos.uploaded and has no lag there."""
    [watched] = [g for g in report.groups if g.group == group]
    uploads = [p for p in watched.partitions if p.topic == topics.VIDEOS_UPLOADED]
    return any(p.committed for p in uploads) and not any(p.lag for p in uploads)


def uploads_of(report: LagReport, name: str) -> tuple[str, int, float | None]:
    """(status, lag, oldest unread message's age) of the group on videos.uploaded."""
    [group] = [g for g in report.groups if g.group == name]
    partitions = [p for p in group.partitions if p.topic == topics.VIDEOS_UPLOADED]
    worst = max(partitions, key=lambda p: p.status.code)
    ages = [p.time_lag_s for p in partitions if p.lag]
    return worst.status, sum(p.lag for p in partitions), max(ages) if ages else None


def test_a_stopped_stage_lags_and_turns_stall_or_stop_within_the_window(
    private: Settings,
    sampler: LagSampler,
    registry: CollectorRegistry,
    media: Path,
    tmp_path: Path,
) -> None:
    with ChunkingWorker(private, tmp_path / "worker.log") as worker:
        group = poll(lambda: worker.joined(sampler.report()), 240, "the worker to join").group
        upload(private, media)
        poll(lambda: caught_up(sampler.report(), group), 120, f"{group} to commit the upload")
        scraped = httpx.get(f"http://127.0.0.1:{private.worker_metrics_port}/metrics", timeout=5)
    # Leaving the block stopped it.
    stopped_at = time.monotonic()
    upload(private, media)
    poll(lambda: uploads_of(sampler.report(), group)[1] == 1, 30, "a lag of 1")
    upload(private, media)
    poll(lambda: uploads_of(sampler.report(), group)[1] == 2, 30, "the lag to grow to 2")
    poll(
        lambda: uploads_of(sampler.report(), group)[0] in ("STALL", "STOP"),
        STATUS_DEADLINE_S,
        "the stopped stage to turn STALL or STOP",
    )

    report = sampler.report()
    status_now, lag, oldest_age = uploads_of(report, group)
    [stopped] = [g for g in report.groups if g.group == group]
    assert (stopped.state, stopped.members, stopped.status) == ("EMPTY", 0, status_now)
    assert lag == 2
    assert oldest_age is not None and 0 < oldest_age < time.monotonic() - stopped_at + 1

    # The worker served its own metrics while it ran.
    assert scraped.status_code == 200
    assert 'vip_worker_rss_bytes{stages="chunking"}' in scraped.text
    # The same sample as Prometheus gauges, and as GET /v1/lag.
    lagging = [p for p in stopped.partitions if p.topic == topics.VIDEOS_UPLOADED and p.lag]
    [partition] = lagging
    labels = {
        "group": group,
        "topic": topics.VIDEOS_UPLOADED,
        "partition": str(partition.partition),
    }
    assert registry.get_sample_value("vip_consumer_lag_messages", labels) == 2
    assert registry.get_sample_value("vip_consumer_status", labels) in (2, 3)
    assert registry.get_sample_value("vip_consumer_group_status", {"group": group}) in (2, 3)
    app = FastAPI()
    app.include_router(lag_router.router)
    app.state.lag = sampler
    with TestClient(app) as client:
        body = client.get("/v1/lag", params={"group": group}).json()
    assert [g["group"] for g in body["groups"]] == [group]
    assert body["groups"][0]["status"] in ("STALL", "STOP")
    assert body["window_s"] == WINDOW_S

    # `vip lag` reads the same from Kafka over a window of its own, and exits 3.
    result = vip(private, "lag", "--json", "--group", group, "--window", "3", "--interval", "1")
    assert result.exit_code == 3, result.output
    [reported] = json.loads(result.stdout.strip().splitlines()[-1])["groups"]
    assert reported["status"] in ("STALL", "STOP")
    assert reported["lag"] == 2
