"""Deleting a video from the knowledge graph so that it stays deleted.

`vip delete` puts a ``GraphUpdated(removed=True)`` on graph.updates. The sink then removes the
video's subgraph (its Video, Chunk, Shot, SceneObject and ChunkBoundary nodes, its face tracks,
its CO_OCCURS relationships, and the entities only it had seen) and keeps a ``DeletedVideo``
marker. With the marker in place, a delta of the video that arrives later (in flight when it
was deleted, or a replay of graph.updates partition by partition) is skipped, and so is any
relationship another video's delta draws to one of its nodes (SIMILAR_TO): the graph comes out
the same whatever order the partitions are replayed in. A new upload of the video (its
"processing" Video delta) lifts the marker.

Every value is a query parameter; the queries are this module's constants.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from neo4j import ManagedTransaction

from streams.records import EdgeDelta, GraphUpdated

MARKER = "DeletedVideo"
# Nodes keyed "<video id>:…": their key names the video they belong to.
VIDEO_SCOPED = ("Chunk", "Shot", "SceneObject", "ChunkBoundary")

_MARKED = f"UNWIND $ids AS id MATCH (d:{MARKER} {{key: id}}) RETURN d.key AS key"
_MARK = f"MERGE (d:{MARKER} {{key: $vid}}) SET d.deleted_at = $at"
_LIFT = f"MATCH (d:{MARKER} {{key: $vid}}) DELETE d"
# Entities the video's shots and scene objects refer to: those left with no sighting once the
# video is gone are deleted too (with their aliases).
_TOUCHED = """
MATCH (s:Shot {video_id: $vid})
OPTIONAL MATCH (s)-[:APPEARS_IN|MENTIONS]-(e:Entity)
OPTIONAL MATCH (s)-[:HAS_OBJECT]->(:SceneObject)-[:INSTANCE_OF]->(i:Entity)
WITH collect(DISTINCT e.key) + collect(DISTINCT i.key) AS keys
UNWIND keys AS key
RETURN DISTINCT key
"""
_DROP_COOCCURS = "MATCH ()-[r:CO_OCCURS {video_id: $vid}]->() DELETE r"
# Per label, so each lookup uses that label's video_id or key index (INDEXES, KEYED_LABELS).
OWNED_LABELS = ("Chunk", "Shot", "SceneObject", "Entity")
_DROP_OWNED = tuple(
    f"MATCH (n:{label} {{video_id: $vid}}) DETACH DELETE n" for label in OWNED_LABELS
)
# Placeholders an edge created before its far end arrived, and chunk boundaries, carry no
# video_id: their key prefix names the video.
_DROP_KEYED = tuple(
    f"MATCH (n:{label}) WHERE n.key STARTS WITH $prefix AND n.video_id IS NULL DETACH DELETE n"
    for label in VIDEO_SCOPED
)
_DROP_VIDEO = "MATCH (v:Video {key: $vid}) DETACH DELETE v"
_DROP_ORPHANS = """
UNWIND $keys AS key
MATCH (e:Entity {key: key})
WHERE NOT (e)-[:APPEARS_IN|MENTIONS]-() AND NOT ()-[:INSTANCE_OF]->(e)
OPTIONAL MATCH (a:Alias)-[:ALIAS_OF]->(e)
DETACH DELETE e, a
"""


def owner(label: str, key: str) -> str | None:
    """The video a node belongs to, when its label and key say so."""
    if label == "Video":
        return key
    if label in VIDEO_SCOPED:
        return key.partition(":")[0] or None
    return None


def starts_upload(update: GraphUpdated) -> bool:
    """A new upload's first delta (the chunking stage's "processing" Video node)."""
    return any(
        node.label == "Video"
        and node.key == update.video_id
        and node.props.get("status") == "processing"
        and "upload_id" in node.props
        for node in update.nodes
    )


def _edge_owners(edge: EdgeDelta) -> set[str]:
    ends = (owner(edge.start_label, edge.start_key), owner(edge.end_label, edge.end_key))
    return {video for video in ends if video}


def marked(tx: ManagedTransaction, video_ids: Iterable[str]) -> set[str]:
    ids = sorted(set(video_ids))
    if not ids:
        return set()
    return {record["key"] for record in tx.run(_MARKED, ids=ids)}


def admit(tx: ManagedTransaction, update: GraphUpdated) -> GraphUpdated | None:
    """The part of ``update`` a graph with these markers takes: None when the whole delta is
    of a deleted video; otherwise without edges to a deleted video's nodes. A new upload of a
    deleted video lifts its marker first."""
    if starts_upload(update):
        tx.run(_LIFT, vid=update.video_id).consume()
    referenced = {update.video_id}.union(*(_edge_owners(e) for e in update.edges))
    deleted = marked(tx, referenced)
    if not deleted:
        return update
    if update.video_id in deleted:
        return None
    edges = tuple(e for e in update.edges if not (_edge_owners(e) & deleted))
    return update.model_copy(update={"edges": edges})


def remove_video(tx: ManagedTransaction, video_id: str, at: datetime) -> None:
    """Delete the video's subgraph and leave its marker, stamped with the deletion's time (so
    a replay writes the same marker). Idempotent."""
    touched = [record["key"] for record in tx.run(_TOUCHED, vid=video_id)]
    tx.run(_DROP_COOCCURS, vid=video_id).consume()
    for query in _DROP_OWNED:
        tx.run(query, vid=video_id).consume()
    for query in _DROP_KEYED:
        tx.run(query, prefix=f"{video_id}:").consume()
    tx.run(_DROP_VIDEO, vid=video_id).consume()
    tx.run(_DROP_ORPHANS, keys=touched).consume()
    tx.run(_MARK, vid=video_id, at=at.isoformat()).consume()
