"""A stage worker killed with SIGKILL in the middle of a video loses nothing and duplicates
nothing in Milvus or Neo4j (issue 6, item 8), while the analysis worker is also recycled every
few events; then SIGTERM stops every stage's worker gracefully.

Killing the shared worker would stall everyone else's tests, so this module runs its own Kafka
and its own `vip worker` supervisor (one process per stage, each its own consumer group), with
its own Milvus and Neo4j (the shared Neo4j must stay a replay of the shared graph.updates) and
the shared stack's Triton.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from agents.shared.graph_store import Neo4jGraph
from agents.shared.milvus_store import MomentCollections
from streams import topics
from streams.app import WORKER_STAGES
from tests.integration.conftest import poll
from tests.integration.media_copies import unique_copy
from tests.integration.services import RunningService, bootstrapped_kafka, private_stores
from tests.integration.test_pipeline_end_to_end import read_topic
from tests.ports import free_port
from vip import cli
from vip.settings import Settings
from vip.stack.apps import WorkerService
from vip.stage_lag import pipeline_caught_up
from vip.worker_supervisor import read_state

pytestmark = [pytest.mark.stack, pytest.mark.timeout(1200)]

CLIP = "car-detection.mp4"
# Cut at every keyframe (4.8 s apart): seven chunks, so the kill falls between them.
CHUNK_SECONDS = "4.8"
CHUNKS = 7
# The analysis worker drains, commits and is replaced after every three events.
RECYCLE_EVERY = 3


@pytest.fixture(scope="module")
def private(
    running_stack: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Settings]:
    """This module's own Kafka, Milvus, Neo4j and state; Triton is the shared stack's."""
    own = running_stack.model_copy(
        update={
            "state_dir": tmp_path_factory.mktemp("killed-worker"),
            "kafka_port": free_port(),
            "kafka_controller_port": free_port(),
            "kafka_servers": None,
        }
    )
    with private_stores(own) as stores:
        yield stores


@pytest.fixture(scope="module")
def kafka(private: Settings) -> Iterator[RunningService]:
    with bootstrapped_kafka(private) as running:
        yield running


def vip_env(settings: Settings) -> dict[str, str]:
    return {
        "VIP_KAFKA_SERVERS": settings.kafka_bootstrap,
        "VIP_STATE_DIR": str(settings.state_dir),
        "VIP_NEO4J_URL": settings.neo4j_uri,
        "VIP_MILVUS_URL": settings.milvus_uri,
        "VIP_TRITON_ENDPOINT": settings.triton_url,
        "VIP_WORKER_METRICS_PORT": "0",
        "VIP_WORKER_BY_STAGE": orjson.dumps({"analysis": {"max_events": RECYCLE_EVERY}}).decode(),
    }


class Supervisor:
    """`vip worker` as `vip stack up` runs it, in a process group of its own."""

    def __init__(self, settings: Settings, log_path: Path) -> None:
        self.settings = settings
        self.log_path = log_path
        with log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "vip", "worker"],
                env={**os.environ, "PYTHONUNBUFFERED": "1", **vip_env(settings)},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def pid_of(self, stage: str) -> int | None:
        pid = read_state(self.settings).get(stage, {}).get("pid")
        return int(str(pid)) if pid else None

    def stop(self, timeout_s: float = 60) -> int | None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
                return None
        return self.process.returncode

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def analysed(settings: Settings, video_id: str) -> int:
    """Analyses published for the video so far (a chunk analysed twice counts twice)."""
    return sum(1 for key, _ in read_topic(settings, topics.ANALYSES) if key == video_id.encode())


def duplicate_relationships(graph: Neo4jGraph, video_id: str) -> list[tuple[str, int]]:
    """Relationships of the video's chunks that exist more than once between the same nodes."""
    records, _, _ = graph._driver.execute_query(
        "MATCH (:Video {key: $vid})-[:HAS_CHUNK]->(c:Chunk)-[r]-(other) "
        "WITH c, other, type(r) AS kind, startNode(r) = c AS outgoing, count(r) AS n "
        "WHERE n > 1 RETURN kind, n",
        vid=video_id,
    )
    return [(record["kind"], record["n"]) for record in records]


def test_a_worker_killed_mid_video_loses_and_duplicates_nothing(
    private: Settings, kafka: RunningService, media: Path, tmp_path: Path
) -> None:
    workers = Supervisor(private, tmp_path / "worker.log")
    try:
        poll(WorkerService(private).is_ready, 300, "every stage's group to be stable")
        clip = unique_copy(media / "video" / CLIP, tmp_path)
        uploaded = CliRunner().invoke(
            cli.app, ["upload", "--chunk-seconds", CHUNK_SECONDS, str(clip)], env=vip_env(private)
        )
        assert uploaded.exit_code == 0, uploaded.output
        video_id = uploaded.output.split()[-1]

        poll(lambda: analysed(private, video_id), 300, "the first chunk analysed", 0.1)
        victim = workers.pid_of("analysis")
        assert victim is not None
        os.kill(victim, signal.SIGKILL)
        analysed_at_kill = analysed(private, video_id)
        assert analysed_at_kill < CHUNKS, "the kill came after the whole video was analysed"

        moments = MomentCollections(private.milvus_uri, private.milvus_collection)
        graph = Neo4jGraph(private.neo4j_uri, auth=private.neo4j_auth)
        try:
            poll(
                lambda: graph.counts(video_id) == {"chunks": CHUNKS, "next": CHUNKS - 1},
                600,
                "every chunk in the graph",
                1.0,
            )
            poll(lambda: pipeline_caught_up(private.kafka_bootstrap), 120, "every stage to commit")
            # One text vector per moment, one visual vector per keyframe of every moment, and
            # no row twice in any collection (ids are "video:chunk:ms").
            text, visual, multimodal = (
                moments[kind].ids(video_id) for kind in ("text", "visual", "multimodal")
            )
            assert len(text) == len(set(text)) == CHUNKS, text
            assert len(visual) == len(set(visual)) >= CHUNKS, visual
            assert {row.split(":")[1] for row in visual} == {f"{n:05d}" for n in range(CHUNKS)}
            assert len(multimodal) == len(set(multimodal)), multimodal
            assert graph.counts(video_id) == {"chunks": CHUNKS, "next": CHUNKS - 1}
            assert duplicate_relationships(graph, video_id) == []
        finally:
            moments.close()
            graph.close()

        # The killed worker was replaced, and the new ones recycled themselves.
        analysis = read_state(private)["analysis"]
        assert int(str(analysis["starts"])) >= 3, analysis
        assert f"analysis worker exited with {-signal.SIGKILL}" in workers.log()
        assert "analysis worker recycled" in workers.log()
        assert all(read_state(private)[stage]["pid"] for stage in WORKER_STAGES)
    finally:
        code = workers.stop()
        print(f"--- worker.log (tail) ---\n{workers.log()[-6000:]}")

    # SIGTERM: every stage's worker drained, committed and exited cleanly.
    assert code == 0
    for stage in WORKER_STAGES:
        assert f"supervisor: {stage} worker stopped (exit 0)" in workers.log(), stage
