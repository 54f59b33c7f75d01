"""The bench's knowledge graph: what the graph retriever (query_service/retrieval/graph.py)
reads, at the scale of the synthetic moments, plus the real media's part of the dev graph.

Synthetic: a Video per video, a Chunk per moment (HAS_CHUNK), one Shot per chunk (HAS_SHOT;
the dev graph has 1.07 shots per chunk), APPEARS_IN from each object and tag entity the moment
shows (with the sink's properties: video_id, first, last, times, score) and MENTIONS from the
shot to each person its speech names. The scene graphs, CO_OCCURS and SIMILAR_TO that the sink
also writes are left out: the retriever never reads them. Written with bulk ``UNWIND ...
CREATE`` into the empty bench database (the sink's MERGE per delta ran at about 200 deltas/s
here, too slow for millions). Real: copied through the sink's own writer.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice
from typing import Any

from neo4j import Driver, GraphDatabase, RoutingControl

from agents.graph.knowledge import entity_key, normalise, shot_key
from agents.shared.graph_store import Neo4jGraph
from bench.query_corpus import Corpus
from streams.records import EdgeDelta, GraphUpdated, NodeDelta
from vip.settings import Settings

ROWS_PER_STATEMENT = 5000
BULK = {
    "entities": "UNWIND $rows AS row MERGE (e:Entity {key: row.key}) SET e += row.props",
    "videos": "UNWIND $rows AS row CREATE (v:Video {key: row.key}) SET v += row.props",
    "chunks": """UNWIND $rows AS row MATCH (v:Video {key: row.props.video_id})
                 CREATE (v)-[:HAS_CHUNK {index: row.props.index}]->(c:Chunk {key: row.key})
                 SET c += row.props""",
    "shots": """UNWIND $rows AS row MATCH (c:Chunk {key: row.props.chunk})
                CREATE (c)-[:HAS_SHOT {start: row.props.start}]->(s:Shot {key: row.key})
                SET s += row.props""",
    "appears": """UNWIND $rows AS row MATCH (e:Entity {key: row.entity})
                  MATCH (s:Shot {key: row.shot}) CREATE (e)-[r:APPEARS_IN]->(s)
                  SET r = row.props""",
    "mentions": """UNWIND $rows AS row MATCH (s:Shot {key: row.shot})
                   MATCH (e:Entity {key: row.entity}) CREATE (s)-[r:MENTIONS]->(e)
                   SET r = row.props""",
}


def _chunk_key(video_id: str, index: int) -> str:
    return f"{video_id}:{index:05d}"


def _rows(corpus: Corpus, kind: str) -> Iterator[dict[str, Any]]:
    if kind == "entities":
        seen: dict[str, dict[str, str]] = {}
        for m in corpus.moments:
            for entity_kind, names in (
                ("object", m.objects),
                ("tag", m.tags),
                ("person", m.people),
            ):
                for name in names:
                    seen[entity_key(entity_kind, name)] = {
                        "kind": entity_kind,
                        "name": normalise(name),
                    }
        yield from ({"key": key, "props": props} for key, props in seen.items())
    elif kind == "videos":
        for video_id, source in corpus.videos.items():
            yield {"key": video_id, "props": {"source": source, "status": "completed"}}
    for m in corpus.moments:
        chunk, shot = _chunk_key(m.video_id, m.chunk_index), shot_key(m.video_id, m.start)
        base = {"video_id": m.video_id, "start": m.start, "end": m.end}
        if kind == "chunks":
            props = {**base, "index": m.chunk_index, "text": m.text, "labels": list(m.labels)}
            yield {"key": chunk, "props": {**props, "thumbnail": ""}}
        elif kind == "shots":
            yield {"key": shot, "props": {**base, "chunk": chunk}}
        elif kind == "appears":
            for entity_kind, names in (("object", m.objects), ("tag", m.tags)):
                for rank, name in enumerate(names):
                    times = [m.start, m.end - 2]
                    props = {"video_id": m.video_id, "first": times[0], "last": times[1],
                             "times": times, "score": round(0.9 - 0.1 * rank, 4)}  # fmt: skip
                    yield {"entity": entity_key(entity_kind, name), "shot": shot, "props": props}
        elif kind == "mentions":
            for person in m.people:
                props = {"video_id": m.video_id, "text": person, "sources": ["speech"]}
                yield {"entity": entity_key("person", person), "shot": shot, "props": props}


def _batches(rows: Iterator[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    while batch := list(islice(rows, size)):
        yield batch


def write_synthetic(driver: Driver, corpus: Corpus) -> int:
    """Nodes and relationships written (into an empty database with the sink's schema)."""
    written = 0
    for kind, statement in BULK.items():
        for batch in _batches(_rows(corpus, kind), ROWS_PER_STATEMENT):
            driver.execute_query(statement, rows=batch)
            written += len(batch) * (1 if kind in ("entities", "videos") else 2)
    return written


REAL_NODES = {
    "Video": "MATCH (n:Video) WHERE n.key IN $ids RETURN n.key AS key, properties(n) AS props",
    "Chunk": "MATCH (n:Chunk) WHERE n.video_id IN $ids RETURN n.key AS key, properties(n) AS props",
    "Shot": "MATCH (n:Shot) WHERE n.video_id IN $ids RETURN n.key AS key, properties(n) AS props",
}
REAL_EDGES = """
MATCH (s:Shot)-[r:APPEARS_IN|MENTIONS]-(e:Entity) WHERE s.video_id IN $ids
RETURN type(r) AS type, s.key AS shot, e.key AS entity, e.kind AS kind, e.name AS name,
       properties(r) AS props
"""
REAL_CHUNK_EDGES = """
MATCH (v:Video)-[:HAS_CHUNK]->(c:Chunk)-[:HAS_SHOT]->(s:Shot) WHERE v.key IN $ids
RETURN v.key AS video, c.key AS chunk, s.key AS shot
"""


def copy_real(source: Settings, target: Neo4jGraph, videos: dict[str, str]) -> int:
    """The real videos' chunks, shots and entities, read from the dev graph (read only)."""
    ids = sorted(videos)
    nodes: list[NodeDelta] = []
    edges: list[EdgeDelta] = []
    with GraphDatabase.driver(source.neo4j_uri, auth=source.neo4j_auth) as driver:
        for label, query in REAL_NODES.items():
            records, _, _ = driver.execute_query(query, ids=ids, routing_=RoutingControl.READ)
            nodes.extend(NodeDelta(label=label, key=r["key"], props=r["props"]) for r in records)
        links, _, _ = driver.execute_query(REAL_CHUNK_EDGES, ids=ids, routing_=RoutingControl.READ)
        records, _, _ = driver.execute_query(REAL_EDGES, ids=ids, routing_=RoutingControl.READ)
    for link in links:
        edges.append(EdgeDelta(type="HAS_CHUNK", start_label="Video", start_key=link["video"],
                               end_label="Chunk", end_key=link["chunk"]))  # fmt: skip
        edges.append(EdgeDelta(type="HAS_SHOT", start_label="Chunk", start_key=link["chunk"],
                               end_label="Shot", end_key=link["shot"]))  # fmt: skip
    for r in records:
        entity_props = {"kind": r["kind"], "name": r["name"]}
        nodes.append(NodeDelta(label="Entity", key=r["entity"], props=entity_props))
        shot, entity = ("Shot", r["shot"]), ("Entity", r["entity"])
        start, end = (entity, shot) if r["type"] == "APPEARS_IN" else (shot, entity)
        edges.append(EdgeDelta(type=r["type"], start_label=start[0], start_key=start[1],
                               end_label=end[0], end_key=end[1], props=r["props"]))  # fmt: skip
    if nodes:
        target.apply(GraphUpdated(video_id=ids[0], nodes=tuple(nodes), edges=tuple(edges)))
    return len(nodes) + len(edges)
