"""Neo4j adapter: applies graph deltas with batched ``UNWIND … MERGE`` and reads videos back.

Values are always query parameters. Labels and relationship types cannot be parameters in
Cypher, so they are checked against a strict pattern before they reach a query.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from neo4j import Driver, GraphDatabase, ManagedTransaction

from agents.graph.tracks import MAX_GAP_S, MIN_IOU
from agents.shared.graph_tombstones import MARKER, admit, remove_video
from agents.shared.metrics import timed
from streams.records import GraphUpdated

_LABEL = re.compile(r"^[A-Z][A-Za-z0-9_]{0,63}$")
_TYPE = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")
KEYED_LABELS = (
    "Video",
    "Chunk",
    "Shot",
    "Entity",
    "SceneObject",
    "Alias",
    "ChunkBoundary",
    MARKER,
)
ENTITY_VECTOR_INDEX = "entity_embedding"
# Lucene full-text index of each moment's description and labels: the query service's keyword
# retriever (query_service/retrieval/keyword.py). English analyzer: stemmed ("cars" finds
# "car"), stop words dropped. Updated in the sink's write transaction (not eventually), so a
# moment is found by keyword once its delta is written, as the change feed assumes.
MOMENT_TEXT_INDEX = "moment_text"
ENTITY_VECTOR_DIM = 384
# Lookups the query service and docs/graph.md's example queries make.
INDEXES = (
    ("chunk_video", "Chunk", "video_id"),
    ("shot_video", "Shot", "video_id"),
    ("entity_kind", "Entity", "kind"),
    ("entity_name", "Entity", "name"),
    # What deleting a video looks up (agents/shared/graph_tombstones.py).
    ("sceneobject_video", "SceneObject", "video_id"),
    ("entity_video", "Entity", "video_id"),
)
RELATIONSHIP_INDEXES = (("cooccurs_video", "CO_OCCURS", "video_id"),)


class InvalidGraphDelta(ValueError):
    """A delta names a label or relationship type that is not a safe identifier."""


def _label(name: str) -> str:
    if not _LABEL.match(name):
        raise InvalidGraphDelta(f"invalid node label {name!r}")
    return name


def _rel_type(name: str) -> str:
    if not _TYPE.match(name):
        raise InvalidGraphDelta(f"invalid relationship type {name!r}")
    return name


REFRESH_STATUS = """
MATCH (v:Video {key: $video_id})
OPTIONAL MATCH (v)-[:HAS_CHUNK]->(c:Chunk)
  WHERE c.start IS NOT NULL AND c.upload_id = v.upload_id
WITH v, count(c) AS indexed, count(CASE WHEN c.analysis_cache_hit THEN 1 END) AS hits
SET v.indexed_chunks = indexed,
    v.analysis_cache_hits = hits,
    v.status = CASE
      WHEN v.status = 'processing' AND v.chunk_count IS NOT NULL AND indexed >= v.chunk_count
      THEN 'completed' ELSE v.status END
"""


# Written for each Video row of a delta instead of the plain MERGE/SET. A live feed's chunks
# say one more chunk follows theirs (agents/live/core.py), so a late delta of an earlier chunk
# would lower the count that the final segment set and let REFRESH_STATUS complete the feed
# before its last chunks are indexed: a live Video keeps the larger count. Which count wins
# depends only on the order of the deltas, so a replay of graph.updates rebuilds the same graph.
MERGE_VIDEOS = """
UNWIND $rows AS row
MERGE (n:Video {key: row.key})
WITH n, row, n.chunk_count AS before
SET n += row.props
WITH n, before
WHERE n.live = true AND before > n.chunk_count
SET n.chunk_count = before
"""


# Face tracks of consecutive chunks are one person when the track ending at a chunk boundary
# and the one starting there overlap (IoU >= 0.2) within 4.5 s (agents/graph/tracks.py's
# rule). Derived from the boundary's edges alone, so the result does not depend on which
# chunk's delta came first, and a replay derives the same links.
LINK_FACES = """
UNWIND $boundaries AS bk
MATCH (a:Entity)-[e:ENDS_AT]->(:ChunkBoundary {key: bk})<-[s:STARTS_AT]-(c:Entity)
WITH a, c, s.time - e.time AS gap,
     CASE WHEN e.box[2] < s.box[2] THEN e.box[2] ELSE s.box[2] END
       - CASE WHEN e.box[0] > s.box[0] THEN e.box[0] ELSE s.box[0] END AS ix,
     CASE WHEN e.box[3] < s.box[3] THEN e.box[3] ELSE s.box[3] END
       - CASE WHEN e.box[1] > s.box[1] THEN e.box[1] ELSE s.box[1] END AS iy,
     (e.box[2] - e.box[0]) * (e.box[3] - e.box[1]) AS area_a,
     (s.box[2] - s.box[0]) * (s.box[3] - s.box[1]) AS area_c
WITH a, c, gap, CASE WHEN ix > 0 AND iy > 0 THEN ix * iy ELSE 0.0 END AS inter, area_a, area_c
WHERE gap >= 0 AND gap <= $max_gap AND inter / (area_a + area_c - inter) >= $min_iou
MERGE (a)-[:SAME_PERSON]->(c)
"""


@dataclass(frozen=True)
class VideoRecord:
    video_id: str
    props: dict[str, Any]
    chunks: list[dict[str, Any]]


class Neo4jGraph:
    def __init__(
        self, uri: str, auth: tuple[str, str] | None = None, timeout_s: float = 10.0
    ) -> None:
        self._driver: Driver = GraphDatabase.driver(
            uri,
            auth=auth,
            connection_timeout=timeout_s,
            max_transaction_retry_time=timeout_s,
            notifications_min_severity="WARNING",
        )

    @property
    def driver(self) -> Driver:
        """The connection pool, for read-side modules with their own queries."""
        return self._driver

    def close(self) -> None:
        self._driver.close()

    def ensure_schema(self) -> None:
        with self._driver.session() as session:
            for label in KEYED_LABELS:
                session.run(
                    f"CREATE CONSTRAINT {label.lower()}_key IF NOT EXISTS "
                    f"FOR (n:{label}) REQUIRE n.key IS UNIQUE"
                ).consume()
            for name, label, prop in INDEXES:
                session.run(
                    f"CREATE INDEX {name} IF NOT EXISTS FOR (n:{label}) ON (n.{prop})"
                ).consume()
            for name, rel, prop in RELATIONSHIP_INDEXES:
                session.run(
                    f"CREATE INDEX {name} IF NOT EXISTS FOR ()-[r:{rel}]-() ON (r.{prop})"
                ).consume()
            # Entity names' text embeddings, for resolving a new name to a known entity.
            session.run(
                f"CREATE VECTOR INDEX {ENTITY_VECTOR_INDEX} IF NOT EXISTS "
                "FOR (e:Entity) ON (e.embedding) OPTIONS {indexConfig: {"
                f"`vector.dimensions`: {ENTITY_VECTOR_DIM}, "
                "`vector.similarity_function`: 'cosine'}}"
            ).consume()
            session.run(
                f"CREATE FULLTEXT INDEX {MOMENT_TEXT_INDEX} IF NOT EXISTS "
                "FOR (c:Chunk) ON EACH [c.text, c.labels] OPTIONS {indexConfig: {"
                "`fulltext.analyzer`: 'english', `fulltext.eventually_consistent`: false}}"
            ).consume()

    @timed("neo4j", "apply")
    def apply(self, update: GraphUpdated) -> None:
        def write(tx: ManagedTransaction) -> None:
            if update.removed:
                remove_video(tx, update.video_id, update.occurred_at)
                return
            admitted = admit(tx, update)
            if admitted is not None:
                _write_delta(tx, admitted)

        with self._driver.session() as session:
            session.execute_write(write)

    @timed("neo4j", "list_videos")
    def list_videos(self, skip: int, limit: int) -> tuple[list[dict[str, Any]], int]:
        with self._driver.session() as session:
            total = session.run("MATCH (v:Video) RETURN count(v) AS n").single(strict=True)["n"]
            rows = session.run(
                "MATCH (v:Video) RETURN v ORDER BY v.uploaded_at DESC, v.key SKIP $skip "
                "LIMIT $limit",
                skip=skip,
                limit=limit,
            )
            return [dict(row["v"]) for row in rows], int(total)

    @timed("neo4j", "get_video")
    def get_video(self, video_id: str) -> VideoRecord | None:
        with self._driver.session() as session:
            row = session.run(
                "MATCH (v:Video {key: $vid}) "
                "OPTIONAL MATCH (v)-[:HAS_CHUNK]->(c:Chunk) WHERE c.start IS NOT NULL "
                "WITH v, c ORDER BY c.index "
                "RETURN v, collect(c) AS chunks",
                vid=video_id,
            ).single()
            if row is None:
                return None
            return VideoRecord(
                video_id=video_id, props=dict(row["v"]), chunks=[dict(c) for c in row["chunks"]]
            )

    @timed("neo4j", "counts")
    def counts(self, video_id: str) -> dict[str, int]:
        with self._driver.session() as session:
            row = session.run(
                "MATCH (v:Video {key: $vid}) "
                "OPTIONAL MATCH (v)-[:HAS_CHUNK]->(c:Chunk) "
                "OPTIONAL MATCH (c)-[n:NEXT]->(:Chunk) "
                "RETURN count(DISTINCT c) AS chunks, count(DISTINCT n) AS next",
                vid=video_id,
            ).single(strict=True)
            return {"chunks": int(row["chunks"]), "next": int(row["next"])}

    @timed("neo4j", "canonical_of")
    def canonical_of(self, keys: Sequence[str]) -> dict[str, str]:
        """Entity keys already in the graph (as entities or as aliases) -> canonical key."""
        records, _, _ = self._driver.execute_query(
            "UNWIND $keys AS k "
            "OPTIONAL MATCH (e:Entity {key: k}) WHERE e.kind IS NOT NULL "
            "OPTIONAL MATCH (:Alias {key: k})-[:ALIAS_OF]->(c:Entity) "
            "WITH k, coalesce(e.key, c.key) AS canonical WHERE canonical IS NOT NULL "
            "RETURN k, canonical",
            keys=list(keys),
            routing_="r",
        )
        return {r["k"]: r["canonical"] for r in records}

    @timed("neo4j", "nearest")
    def nearest(self, vector: Sequence[float], kinds: Sequence[str]) -> tuple[str, float] | None:
        """The entity of these kinds whose name embedding is most similar (cosine)."""
        records, _, _ = self._driver.execute_query(
            f"CALL db.index.vector.queryNodes('{ENTITY_VECTOR_INDEX}', 25, $vector) "
            "YIELD node, score WHERE node.kind IN $kinds "
            "RETURN node.key AS key, score ORDER BY score DESC LIMIT 1",
            vector=list(vector),
            kinds=list(kinds),
            routing_="r",
        )
        if not records:
            return None
        # Neo4j reports cosine similarity rescaled to [0, 1] as (1 + cos) / 2.
        return records[0]["key"], 2 * float(records[0]["score"]) - 1

    def snapshot(self) -> GraphSnapshot:
        """Node and relationship counts and a checksum of the whole graph's content (labels,
        keys, properties, relationship types and ends), independent of Neo4j's internal ids
        and of the order things were written in."""
        digest = hashlib.sha256()
        nodes = edges = 0
        with self._driver.session() as session:
            rows = session.run(
                "MATCH (n) RETURN labels(n) AS labels, properties(n) AS props "
                "ORDER BY n.key, labels(n)"
            )
            lines = sorted(_canonical([sorted(r["labels"]), r["props"]]) for r in rows)
            nodes = len(lines)
            for line in lines:
                digest.update(line)
            rows = session.run(
                "MATCH (a)-[r]->(b) RETURN type(r) AS type, a.key AS start, b.key AS end, "
                "properties(r) AS props"
            )
            lines = sorted(_canonical([r["type"], r["start"], r["end"], r["props"]]) for r in rows)
            edges = len(lines)
            for line in lines:
                digest.update(line)
        return GraphSnapshot(nodes=nodes, edges=edges, checksum=digest.hexdigest())

    def clear(self) -> None:
        """Delete every node and relationship (used before a replay rebuilds the graph)."""
        with self._driver.session() as session:
            session.run(
                "MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 5000 ROWS"
            ).consume()


def _write_delta(tx: ManagedTransaction, update: GraphUpdated) -> None:
    nodes: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for node in update.nodes:
        nodes[_label(node.label)].append({"key": node.key, "props": node.props})
    edges: dict[tuple[str, str, str, bool], list[dict[str, Any]]] = defaultdict(list)
    for edge in update.edges:
        shape = (
            _rel_type(edge.type),
            _label(edge.start_label),
            _label(edge.end_label),
            edge.key is not None,
        )
        edges[shape].append(
            {"start": edge.start_key, "end": edge.end_key, "key": edge.key, "props": edge.props}
        )
    _drop_replaced(tx, update)
    for label, rows in nodes.items():
        if label == "Video":
            tx.run(MERGE_VIDEOS, rows=rows).consume()
            continue
        tx.run(
            f"UNWIND $rows AS row MERGE (n:{label} {{key: row.key}}) SET n += row.props",
            rows=rows,
        ).consume()
    for (rel, start, end, keyed), rows in edges.items():
        identity = " {key: row.key}" if keyed else ""
        tx.run(
            f"UNWIND $rows AS row MERGE (a:{start} {{key: row.start}}) "
            f"MERGE (b:{end} {{key: row.end}}) MERGE (a)-[r:{rel}{identity}]->(b) "
            "SET r += row.props",
            rows=rows,
        ).consume()
    boundaries = sorted({e.end_key for e in update.edges if e.end_label == "ChunkBoundary"})
    if boundaries:
        tx.run(LINK_FACES, boundaries=boundaries, max_gap=MAX_GAP_S, min_iou=MIN_IOU).consume()
    tx.run(REFRESH_STATUS, video_id=update.video_id).consume()


def _drop_replaced(tx: ManagedTransaction, update: GraphUpdated) -> None:
    """Remove the relationships of each of the delta's EdgeSets that the delta does not hold
    (their ends are matched by key, as the delta's MERGEs match them)."""
    sets: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for edge_set in update.replaces:
        keep = sorted(
            e.end_key
            for e in update.edges
            if (e.type, e.start_label, e.start_key)
            == (edge_set.type, edge_set.start_label, edge_set.start_key)
        )
        shape = (_rel_type(edge_set.type), _label(edge_set.start_label))
        sets[shape].append({"start": edge_set.start_key, "keep": keep})
    for (rel, start), rows in sets.items():
        tx.run(
            f"UNWIND $rows AS row MATCH (a:{start} {{key: row.start}})-[r:{rel}]->(b) "
            "WHERE NOT b.key IN row.keep DELETE r",
            rows=rows,
        ).consume()


@dataclass(frozen=True)
class GraphSnapshot:
    nodes: int
    edges: int
    checksum: str


def _canonical(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS, default=str) + b"\n"
