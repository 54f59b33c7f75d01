"""Triton goes down in the middle of an ingest: the failed events wait on retry topics while the
stages' partitions move on, and the job completes, every chunk indexed once, when it is back.

Taking Triton down would disrupt the shared stack, so this module runs its own Triton (started
as the stack manager starts it, killed and started again by the test), its own Kafka (`vip
stack up kafka neo4j milvus`) and its own worker, on free ports with state in a temporary
directory: the shared Neo4j must stay a replay of the shared graph.updates
(tests/integration/test_knowledge_graph.py). The job is read from its Neo4j.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import psutil
import pytest

from agents.shared.graph_store import Neo4jGraph
from agents.shared.milvus_store import MilvusMoments
from streams import topics
from tests.integration.conftest import poll
from tests.integration.media_copies import unique_copy
from tests.integration.services import RunningService
from tests.integration.test_pipeline_end_to_end import read_topic
from tests.ports import free_port
from vip.settings import Settings
from vip.stack.apps import WorkerService
from vip.stack.service import Launch
from vip.stack.triton import TritonService
from vip.stage_lag import pipeline_caught_up

pytestmark = [pytest.mark.stack, pytest.mark.timeout(1500)]

# 11 retries, waiting 2.5-5, 5-10, 10-20, then 15-30 s (four retry levels): Triton may stay
# down for 2 minutes at least (a restart takes ~35 s on 2 idle cores, far more on a busy
# machine), and a retry is never more than 30 s away once it is back.
RETRY = {"VIP_RETRY_ATTEMPTS": "12", "VIP_RETRY_BACKOFF_S": "5", "VIP_RETRY_MAX_BACKOFF_S": "30"}
# Stages whose handlers call Triton, by the topic they consume.
TRITON_STAGES = {
    topics.CHUNKS: "analysis",
    topics.ANALYSES: "embedding",
    topics.EMBEDDINGS: "graph",
}
# 139.4 s with a keyframe every second: fourteen 10 s chunks, ~15 s of ingest on 2 idle cores,
# so that Triton goes down with most chunks still to analyse.
VIDEO = "one-by-one-person-detection.mp4"
CHUNKS = 14
_SHM_REGION = "/dev/shm/triton_python_backend_shm_region_"


@dataclass(frozen=True)
class OutageStack:
    settings: Settings
    env: dict[str, str]
    triton: RunningService
    worker: RunningService

    def vip(self, *args: str, timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "vip", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )

    def must(self, *args: str, timeout_s: float = 120) -> str:
        result = self.vip(*args, timeout_s=timeout_s)
        assert result.returncode == 0, f"vip {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
        return result.stdout

    def start_worker(self) -> None:
        """`vip worker` with this stack's settings (the stack manager's worker service, whose
        process reads its settings from the environment)."""
        with pytest.MonkeyPatch.context() as patch:
            for key in set(os.environ) - set(self.env):
                patch.delenv(key)
            for key, value in self.env.items():
                patch.setenv(key, value)
            self.worker.start()

    def kill_triton(self) -> None:
        """SIGKILL, as a crash or the OOM killer would: down at once, mid-request. The python
        backend's shared-memory regions outlive a killed server; they are removed too."""
        process = self.triton.process
        assert process is not None, "Triton is not running"
        tree = psutil.Process(process.pid)
        regions = {
            Path(region.path)
            for member in [tree, *tree.children(recursive=True)]
            for region in member.memory_maps()
            if region.path.startswith(_SHM_REGION)
        }
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        self.triton.process = None
        for region in regions:
            region.unlink(missing_ok=True)


class FreshlyCheckedWorker:
    """The stack's worker service, whose readiness check gets a fresh Kafka admin client each
    time: a client still alive when the private Kafka is gone blocks the interpreter's exit."""

    name = "worker"
    start_timeout_s = 600.0  # slow on a busy machine

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def launch(self) -> Launch:
        return WorkerService(self._settings).launch()

    def is_ready(self) -> bool:
        return WorkerService(self._settings).is_ready()


REFUSED = "agents.shared.errors.InferenceUnavailable"


@pytest.fixture(scope="module")
def outage_stack(
    running_stack: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OutageStack]:
    ports = {name: free_port() for name in Settings.model_fields if name.endswith("_port")}
    settings = Settings(
        state_dir=tmp_path_factory.mktemp("triton-outage"),
        kafka_servers=None,
        triton_endpoint=None,
        **ports,  # type: ignore[arg-type]
    )
    # This stack's own servers, not ones named elsewhere.
    remote = {"VIP_KAFKA_SERVERS", "VIP_TRITON_ENDPOINT", "VIP_NEO4J_URL", "VIP_MILVUS_URL"}
    env = {key: value for key, value in os.environ.items() if key not in remote}
    env |= {f"VIP_{name.upper()}": str(port) for name, port in ports.items()}
    env |= {"VIP_STATE_DIR": str(settings.state_dir), **RETRY}
    triton, worker = TritonService(settings), FreshlyCheckedWorker(settings)
    triton.start_timeout_s = 600  # nine models load slowly on a busy machine
    settings.logs_dir.mkdir(parents=True, exist_ok=True)
    stack = OutageStack(
        settings,
        env,
        RunningService(triton, settings.logs_dir / "triton.log"),
        RunningService(worker, settings.logs_dir / "worker.log"),
    )
    try:
        triton.prepare()
        with ThreadPoolExecutor(1) as pool:  # Triton loads its models while Kafka starts
            triton_ready = pool.submit(stack.triton.start)
            stack.must("stack", "up", "kafka", "neo4j", "milvus", timeout_s=600)
            stack.must("stack", "bootstrap", timeout_s=300)  # topics, as `vip stack up` does
            triton_ready.result()
        stack.start_worker()
        yield stack
    finally:
        for service in (stack.worker, stack.triton):  # shown when the test failed
            if service.log_path.exists():
                print(f"--- {service.service.name} ---\n{service.log()}")
        stack.worker.stop()
        stack.triton.stop()
        stack.vip("stack", "down", timeout_s=300)


def job(graph: Neo4jGraph, video_id: str) -> dict[str, Any] | None:
    """The job's status and progress as the graph sink keeps them on the Video node."""
    video = graph.get_video(video_id)
    return None if video is None else video.props


def first_retries(settings: Settings, video_id: str) -> list[dict[str, Any]]:
    """The video's events on the first retry level of each stage that calls Triton."""
    return [
        orjson.loads(value)
        for topic in TRITON_STAGES
        for key, value in read_topic(settings, topics.retry_topic(topic, 1))
        if key == video_id.encode()
    ]


def test_a_triton_outage_mid_ingest_is_retried_and_the_job_completes_once_triton_is_back(
    outage_stack: OutageStack, tmp_path: Path, media: Path
):
    settings = outage_stack.settings
    video = unique_copy(media / "video" / VIDEO, tmp_path)
    video_id = outage_stack.must("upload", str(video)).split()[-1]
    graph = Neo4jGraph(settings.neo4j_uri, auth=settings.neo4j_auth)
    moments = MilvusMoments(settings.milvus_uri, settings.milvus_collection)
    try:
        started = poll(
            lambda: (j := job(graph, video_id)) and (j.get("indexed_chunks") or 0) >= 1 and j,
            300,
            "the first chunk to be indexed",
            interval_s=0.1,
        )
        outage_stack.kill_triton()

        assert started["indexed_chunks"] < started["chunk_count"] == CHUNKS, started
        # The calls in flight when Triton died fail first (connection closed); the next ones
        # are refused: wait for one of those too.
        retries = poll(
            lambda: (
                (found := first_retries(settings, video_id))
                and any(r["error_type"] == REFUSED for r in found)
                and found
            ),
            120,
            "a retry of a refused call",
        )
        for retry in retries:
            assert retry["stage"] == TRITON_STAGES[retry["original_topic"]]
            assert retry["attempts"] == 1 and retry["first_reason"] == retry["reason"]
            assert retry["not_before"] > retry["first_failed_at"]
        # Refused connections, and requests cut off when the server died under them.
        errors = {retry["error_type"] for retry in retries}
        assert errors <= {REFUSED, "geventhttpclient.response.HTTPConnectionClosed"}
        # Nothing holds the stages' partitions while the retries wait for Triton.
        poll(
            lambda: pipeline_caught_up(settings.kafka_bootstrap),
            120,
            "every pipeline topic committed during the outage",
        )
        during = job(graph, video_id)
        assert during is not None and during["status"] == "processing", during
        assert during["indexed_chunks"] < CHUNKS, during

        outage_stack.triton.start()
        done = poll(
            lambda: (j := job(graph, video_id)) and j["status"] in {"completed", "failed"} and j,
            420,
            "the job to finish after Triton is back",
        )

        assert done["status"] == "completed", done
        assert done["indexed_chunks"] == done["chunk_count"] == CHUNKS
        assert moments.count(video_id) == CHUNKS
        assert graph.counts(video_id) == {"chunks": CHUNKS, "next": CHUNKS - 1}
    finally:
        moments.close()
        graph.close()
    assert orjson.loads(outage_stack.must("dlq", "list", "--json", "--video", video_id)) == []
