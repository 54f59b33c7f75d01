"""The knowledge graph built from real analyses of shared media, on the real stack.

Uploads go through `vip upload`'s code to the running worker; Neo4j and Milvus are read back
directly. The replay test starts a second, empty Neo4j (free loopback ports, temporary data)
and rebuilds the graph into it from the graph.updates topic.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from pymilvus import MilvusClient

from agents.graph.resolution import EntityResolver
from agents.shared.graph_store import Neo4jGraph
from agents.shared.milvus_store import GRPC_OPTIONS, id_literal
from agents.shared.triton_client import TritonClient
from streams.records import EdgeDelta, EdgeSet, GraphUpdated, NodeDelta
from tests.integration.conftest import poll
from tests.integration.media_copies import unique_copy
from tests.integration.services import empty_neo4j
from vip.demo import wait_for_video
from vip.graph_replay import replay_graph_updates
from vip.settings import Settings
from vip.stage_lag import pipeline_caught_up
from vip.upload import build_event, publish

pytestmark = pytest.mark.stack

MEDIA = Path(__file__).resolve().parents[2].parent / "shared" / "media" / "video"
DEADLINE_S = 240.0

SUBGRAPH = """
MATCH (n) WHERE n.video_id = $vid OR n.key = $vid
OPTIONAL MATCH (n)-[r]-()
RETURN count(DISTINCT n) AS nodes, count(DISTINCT r) AS edges
"""
# The same relationships by type, so a failing comparison says which kind changed.
SUBGRAPH_EDGE_TYPES = """
MATCH (n) WHERE n.video_id = $vid OR n.key = $vid
MATCH (n)-[r]-()
WITH DISTINCT r
RETURN type(r) AS type, count(r) AS edges ORDER BY type
"""
# Two relationships of one type (and key) between the same two nodes: a MERGE that missed.
DUPLICATED = """
MATCH (n) WHERE n.video_id = $vid OR n.key = $vid
MATCH (n)-[r]-(m)
WITH DISTINCT r, startNode(r) AS a, endNode(r) AS b
WITH a.key AS start, type(r) AS type, r.key AS key, b.key AS end, count(r) AS copies
WHERE copies > 1
RETURN start, type, key, end, copies
"""


def ingest(settings: Settings, path: Path) -> str:
    event = build_event(str(path), settings)
    publish(event, settings)
    detail = wait_for_video(settings, event.video_id, event.event_id, DEADLINE_S)
    assert detail["status"] == "completed", detail
    return event.video_id


def caught_up(settings: Settings) -> bool:
    return pipeline_caught_up(settings.kafka_bootstrap)


@pytest.fixture(scope="module")
def videos(running_stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    tmp = tmp_path_factory.mktemp("graph-media")
    return {
        name: ingest(running_stack, unique_copy(MEDIA / name, tmp))
        for name in ("bikes.mp4", "person-bicycle-car-detection.gif")
    }


@pytest.fixture(scope="module")
def graph(running_stack: Settings) -> Iterator[Neo4jGraph]:
    store = Neo4jGraph(running_stack.neo4j_uri, auth=running_stack.neo4j_auth)
    yield store
    store.close()


def rows(graph: Neo4jGraph, query: str, **params: object) -> list[dict[str, object]]:
    records, _, _ = graph.driver.execute_query(query, params)
    return [record.data() for record in records]


def test_each_shot_has_a_scene_graph_of_the_objects_on_its_keyframe(
    videos: dict[str, str], graph: Neo4jGraph
) -> None:
    vid = videos["bikes.mp4"]
    shots = rows(
        graph,
        "MATCH (:Video {key: $vid})-[:HAS_CHUNK]->(:Chunk)-[:HAS_SHOT]->(s:Shot) "
        "OPTIONAL MATCH (s)-[:HAS_OBJECT]->(o:SceneObject)-[:INSTANCE_OF]->(e:Entity) "
        "RETURN s.start AS start, s.end AS end, collect(e.name) AS objects ORDER BY start",
        vid=vid,
    )
    # bikes.mp4 has five cuts (SOURCES.md): six shots tiling the 10 s clip.
    assert len(shots) == 6
    assert shots[0]["start"] == 0.0 and shots[-1]["end"] == pytest.approx(10.0, abs=0.05)
    assert all(a["end"] == b["start"] for a, b in itertools.pairwise(shots))
    assert sum("person" in s["objects"] for s in shots) >= 3  # type: ignore[operator]
    [(order,)] = [
        tuple(r.values())
        for r in rows(
            graph,
            "MATCH p = (first:Shot {video_id: $vid, start: 0.0})-[:NEXT*]->(last:Shot) "
            "WHERE NOT (last)-[:NEXT]->() RETURN length(p) AS hops",
            vid=vid,
        )
    ]
    assert order == 5, "NEXT links the six shots in time order"
    spatial = rows(
        graph,
        "MATCH (a:SceneObject {video_id: $vid})-[r:LEFT_OF|ABOVE|NEAR]->(b:SceneObject) "
        "RETURN type(r) AS rel, a.box AS a, b.box AS b",
        vid=vid,
    )
    assert spatial, "people and bicycles side by side give spatial relations"
    for rel in spatial:
        a, b = rel["a"], rel["b"]
        if rel["rel"] == "LEFT_OF":
            assert (a[0] + a[2]) / 2 < (b[0] + b[2]) / 2  # type: ignore[index]


def test_bikes_and_the_gif_share_one_bicycle_entity(
    videos: dict[str, str], graph: Neo4jGraph
) -> None:
    found = rows(
        graph,
        "MATCH (e:Entity {kind: 'object', name: 'bicycle'}) "
        "OPTIONAL MATCH (e)-[a:APPEARS_IN]->(s:Shot) WHERE s.video_id IN $vids "
        "RETURN e.key AS key, collect(DISTINCT s.video_id) AS videos, "
        "collect(a.first) AS firsts",
        vids=list(videos.values()),
    )
    assert len(found) == 1, found
    assert sorted(found[0]["videos"]) == sorted(videos.values())  # type: ignore[arg-type]
    assert all(isinstance(t, float) for t in found[0]["firsts"])  # type: ignore[union-attr]
    # ... and what appears with it: people, in both clips.
    with_bicycle = rows(
        graph,
        "MATCH (:Entity {key: 'object:bicycle'})-[c:CO_OCCURS]-(other:Entity) "
        "WHERE c.video_id IN $vids RETURN DISTINCT other.key AS key",
        vids=list(videos.values()),
    )
    assert {"object:person"} <= {r["key"] for r in with_bicycle}


def test_uploading_the_same_video_twice_creates_no_duplicates(
    running_stack: Settings, videos: dict[str, str], graph: Neo4jGraph, tmp_path: Path
) -> None:
    path = unique_copy(MEDIA / "car-detection.mp4", tmp_path)
    vid = ingest(running_stack, path)
    poll(lambda: caught_up(running_stack), 120, "the worker to catch up")
    before_graph = rows(graph, SUBGRAPH, vid=vid)
    before_types = rows(graph, SUBGRAPH_EDGE_TYPES, vid=vid)
    before_vectors = milvus_rows(running_stack, vid)

    assert ingest(running_stack, path) == vid
    poll(lambda: caught_up(running_stack), 120, "the worker to catch up")

    # The video, 2 chunks, their shots and scene objects; their entities' relationships.
    assert before_graph[0]["nodes"] >= 5 and before_graph[0]["edges"] > 10, before_graph
    assert rows(graph, SUBGRAPH_EDGE_TYPES, vid=vid) == before_types
    assert rows(graph, SUBGRAPH, vid=vid) == before_graph
    assert rows(graph, DUPLICATED, vid=vid) == []
    assert milvus_rows(running_stack, vid) == before_vectors
    assert before_vectors[running_stack.milvus_collection] > 0, before_vectors


def milvus_rows(settings: Settings, vid: str) -> dict[str, int]:
    """Rows of this video in every collection of the deployment."""
    client = MilvusClient(uri=settings.milvus_uri, grpc_options=GRPC_OPTIONS)
    try:
        counts = {}
        for name in sorted(client.list_collections()):
            if not name.startswith(settings.milvus_collection):
                continue
            [row] = client.query(
                name, filter=f"video_id == {id_literal(vid)}", output_fields=["count(*)"]
            )
            counts[name] = int(row["count(*)"])
        return counts
    finally:
        client.close()


def test_a_speaker_is_followed_across_chunks_by_face(
    running_stack: Settings, graph: Neo4jGraph, tmp_path: Path
) -> None:
    # The GRID clip (one speaker facing the camera, 3 s) cut into 1 s chunks: each chunk
    # tracks the face on its own, and the tracks meeting at each chunk boundary are linked.
    path = unique_copy(MEDIA / "id2_vcd_swwp2s.mpg", tmp_path)
    event = build_event(str(path), running_stack, chunk_seconds=1.0)
    publish(event, running_stack)
    detail = wait_for_video(running_stack, event.video_id, event.event_id, DEADLINE_S)
    assert detail["status"] == "completed", detail
    chunks = int(detail["chunk_count"])  # type: ignore[call-overload]
    assert chunks >= 2
    poll(lambda: caught_up(running_stack), 120, "the worker to catch up")

    tracks = rows(
        graph,
        "MATCH (t:Entity {kind: 'face', video_id: $vid}) RETURN t.key AS key ORDER BY key",
        vid=event.video_id,
    )
    links = rows(
        graph,
        "MATCH (a:Entity {video_id: $vid})-[:SAME_PERSON]->(b:Entity) "
        "RETURN a.key AS a, b.key AS b ORDER BY a",
        vid=event.video_id,
    )
    assert len(tracks) >= chunks  # at least one track per chunk
    assert len(links) >= chunks - 1, (tracks, links)
    # Following SAME_PERSON from the first chunk's track reaches the last chunk.
    [reach] = rows(
        graph,
        "MATCH (first:Entity {key: $first})-[:SAME_PERSON*0..]->(t:Entity) "
        "RETURN count(DISTINCT t) AS n",
        first=tracks[0]["key"],
    )
    assert reach["n"] >= chunks


@pytest.fixture(scope="module")
def second_neo4j(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Neo4jGraph]:
    """Another real Neo4j, empty, on free loopback ports with its data in a temp dir."""
    with empty_neo4j(tmp_path_factory.mktemp("second-neo4j")) as store:
        yield store


def test_replaying_graph_updates_into_an_empty_neo4j_rebuilds_the_same_graph(
    running_stack: Settings,
    videos: dict[str, str],
    graph: Neo4jGraph,
    second_neo4j: Neo4jGraph,
) -> None:
    poll(lambda: caught_up(running_stack), 120, "the worker to catch up")
    live = graph.snapshot()
    second_neo4j.clear()
    assert second_neo4j.snapshot().nodes == 0

    result = replay_graph_updates(running_stack.kafka_bootstrap, second_neo4j)

    copy = second_neo4j.snapshot()
    assert result.applied > 0 and live.nodes > 0
    assert (copy.nodes, copy.edges) == (live.nodes, live.edges)
    assert copy.checksum == live.checksum


def test_a_synonym_resolves_to_the_known_entity_through_real_embeddings(
    running_stack: Settings, second_neo4j: Neo4jGraph
) -> None:
    triton = TritonClient(running_stack.triton_url)
    second_neo4j.clear()
    writer = EntityResolver(triton.embed_texts, second_neo4j)
    first = writer.resolve({"object:bicycle": ("object", "bicycle"), "gpe:usa": ("gpe", "usa")})
    second_neo4j.apply(
        GraphUpdated(
            video_id="v-resolution",
            nodes=tuple(
                NodeDelta(
                    label="Entity",
                    key=key,
                    props={"kind": key.split(":")[0], "name": key.split(":")[1], "embedding": vec},
                )
                for key, vec in first.new_vectors.items()
            ),
        )
    )

    def resolved() -> dict[str, str] | None:
        # A fresh resolver (another worker) knows only what the graph holds.
        reader = EntityResolver(triton.embed_texts, second_neo4j)
        result = reader.resolve(
            {
                "tag:bike": ("tag", "bike"),
                "gpe:united states": ("gpe", "united states"),
                "object:bottle": ("object", "bottle"),
            }
        )
        return result.canonical if result.canonical["tag:bike"] != "tag:bike" else None

    # The vector index catches up with a write asynchronously.
    canonical = poll(resolved, 30, "the entity vector index")
    assert canonical == {
        "tag:bike": "object:bicycle",
        "gpe:united states": "gpe:usa",
        "object:bottle": "object:bottle",
    }
    triton.close()


def test_a_chunks_similar_set_is_replaced_by_its_latest_delta(second_neo4j: Neo4jGraph) -> None:
    second_neo4j.clear()

    def delta(similar: list[str]) -> GraphUpdated:
        edges = [
            EdgeDelta(
                type="SIMILAR_TO",
                start_label="Chunk",
                start_key="va:00000",
                end_label="Chunk",
                end_key=key,
                props={"score": 0.9},
            )
            for key in similar
        ]
        edges.append(
            EdgeDelta(
                type="NEXT",
                start_label="Chunk",
                start_key="va:00000",
                end_label="Chunk",
                end_key=f"va:{len(similar) + 1:05d}",
            )
        )
        return GraphUpdated(
            video_id="va",
            edges=tuple(edges),
            replaces=(EdgeSet(type="SIMILAR_TO", start_label="Chunk", start_key="va:00000"),),
        )

    def outgoing() -> list[tuple[str, str]]:
        found = rows(
            second_neo4j,
            "MATCH (:Chunk {key: 'va:00000'})-[r]->(b) RETURN type(r) AS t, b.key AS b",
        )
        return sorted((r["t"], r["b"]) for r in found)  # type: ignore[misc]

    # Another video's chunk points at this one: not part of this chunk's set.
    second_neo4j.apply(
        GraphUpdated(
            video_id="vz",
            edges=(
                EdgeDelta(
                    type="SIMILAR_TO",
                    start_label="Chunk",
                    start_key="vz:00000",
                    end_label="Chunk",
                    end_key="va:00000",
                ),
            ),
        )
    )
    second_neo4j.apply(delta(["vb:00000", "vc:00000"]))
    second_neo4j.apply(delta(["vc:00000", "vd:00000"]))
    assert outgoing() == [
        ("NEXT", "va:00003"),
        ("SIMILAR_TO", "vc:00000"),
        ("SIMILAR_TO", "vd:00000"),
    ]
    second_neo4j.apply(delta([]))
    # NEXT relationships are not in a replaced set: the earlier one stays.
    assert outgoing() == [("NEXT", "va:00001"), ("NEXT", "va:00003")]
    [incoming] = rows(
        second_neo4j,
        "MATCH (:Chunk)-[r:SIMILAR_TO]->(:Chunk {key: 'va:00000'}) RETURN count(r) AS n",
    )
    assert incoming["n"] == 1
