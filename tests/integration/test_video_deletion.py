"""`vip delete` on the real stack: a finished video's vectors, graph and blobs go, its job is
forgotten, a stale delta of it does not bring it back, a replay of graph.updates keeps it
deleted, and uploading the same bytes again brings it back (issue 6, item 4)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from agents.shared.graph_store import Neo4jGraph
from agents.shared.milvus_store import MomentCollections
from streams import topics
from tests.integration.conftest import poll
from tests.integration.media_copies import unique_copy
from tests.integration.services import empty_neo4j as empty_neo4j_server
from tests.integration.test_knowledge_graph import caught_up, ingest
from tests.integration.test_pipeline_end_to_end import read_topic
from vip import cli
from vip.graph_replay import replay_graph_updates
from vip.settings import Settings
from vip.upload import Publisher

pytestmark = pytest.mark.stack

CLIP = "bikes.mp4"
VIDEO_NODES = """
MATCH (n) WHERE NOT n:DeletedVideo
  AND (n.video_id = $vid OR n.key = $vid OR n.key STARTS WITH $prefix)
RETURN labels(n)[0] AS label, count(n) AS n
"""


def nodes_of(graph: Neo4jGraph, video_id: str) -> dict[str, int]:
    records, _, _ = graph.driver.execute_query(VIDEO_NODES, vid=video_id, prefix=f"{video_id}:")
    return {r["label"]: r["n"] for r in records}


def vectors_of(settings: Settings, video_id: str) -> dict[str, int]:
    moments = MomentCollections(settings.milvus_uri, settings.milvus_collection)
    try:
        moments.ensure_collections()  # loaded: an earlier test may have restarted Milvus
        return {kind: len(store.ids(video_id)) for kind, store in moments.by_kind.items()}
    finally:
        moments.close()


def blobs_of(settings: Settings, video_id: str) -> list[Path]:
    return sorted(settings.blobs_dir.glob(f"*/{video_id}/*"))


@pytest.fixture
def graph(running_stack: Settings) -> Iterator[Neo4jGraph]:
    store = Neo4jGraph(running_stack.neo4j_uri, auth=running_stack.neo4j_auth)
    yield store
    store.close()


@pytest.fixture
def empty_neo4j(tmp_path: Path) -> Iterator[Neo4jGraph]:
    with empty_neo4j_server(tmp_path) as store:
        yield store


def test_a_deleted_video_is_gone_stays_gone_and_can_be_uploaded_again(
    running_stack: Settings,
    api: httpx.Client,
    graph: Neo4jGraph,
    empty_neo4j: Neo4jGraph,
    media: Path,
    tmp_path: Path,
) -> None:
    clip = unique_copy(media / "video" / CLIP, tmp_path)
    video_id = ingest(running_stack, clip)
    before = vectors_of(running_stack, video_id)
    assert before["text"] > 0 and before["visual"] > 0, before
    assert nodes_of(graph, video_id).get("Chunk", 0) > 0
    assert blobs_of(running_stack, video_id), "the video's keyframes and strips"
    poll(lambda: api.get(f"/v1/jobs/{video_id}").status_code == 200, 60, "the job")

    deleted = CliRunner().invoke(cli.app, ["delete", video_id, "--wait", "60"])

    assert deleted.exit_code == 0, deleted.output
    assert f"deleted {video_id}" in deleted.output
    assert vectors_of(running_stack, video_id) == dict.fromkeys(before, 0)
    assert nodes_of(graph, video_id) == {}
    assert graph.get_video(video_id) is None
    assert blobs_of(running_stack, video_id) == []
    assert api.get(f"/v1/videos/{video_id}").status_code == 404
    poll(lambda: api.get(f"/v1/jobs/{video_id}").status_code == 404, 60, "the job forgotten")
    [marker] = graph.driver.execute_query(
        "MATCH (d:DeletedVideo {key: $vid}) RETURN d.deleted_at AS at", vid=video_id
    )[0]
    assert marker["at"]

    # A second delete says there is nothing left (unless forced).
    again = CliRunner().invoke(cli.app, ["delete", video_id, "--wait", "0"])
    assert again.exit_code == 1 and "no video" in again.output

    # A stale delta of the video (a redelivery, a replayed dead letter) does not revive it.
    deltas = [
        value
        for key, value in read_topic(running_stack, topics.GRAPH_UPDATES)
        if key == video_id.encode() and b'"Chunk"' in value
    ]
    assert deltas
    Publisher(running_stack).send(topics.GRAPH_UPDATES, video_id, deltas[0])
    poll(lambda: caught_up(running_stack), 120, "the graph sink to catch up")
    assert nodes_of(graph, video_id) == {}

    # Replaying graph.updates into an empty Neo4j keeps it deleted, marker included.
    replay_graph_updates(running_stack.kafka_bootstrap, empty_neo4j)
    assert nodes_of(empty_neo4j, video_id) == {}
    assert empty_neo4j.driver.execute_query(
        "MATCH (d:DeletedVideo {key: $vid}) RETURN d.deleted_at AS at", vid=video_id
    )[0] == [marker]

    # The same bytes uploaded again are a new upload of the same video: it comes back.
    assert ingest(running_stack, clip) == video_id
    assert vectors_of(running_stack, video_id)["text"] == before["text"]
    assert nodes_of(graph, video_id).get("Chunk", 0) > 0
    records, _, _ = graph.driver.execute_query(
        "MATCH (d:DeletedVideo {key: $vid}) RETURN count(d) AS n", vid=video_id
    )
    assert records[0]["n"] == 0
