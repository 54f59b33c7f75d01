"""`vip delete VIDEO`: remove a video's vectors, graph and blobs, for good.

Order matters for readers: the vectors go first (search stops finding the video), then the
graph (a ``GraphUpdated(removed=True)`` on graph.updates, which the graph sink applies and a
replay of the topic applies again, see agents/shared/graph_tombstones.py; the jobs stage
forgets the job), then the blobs (keyframes last served). A video still being processed is
refused unless forced: a stage still working on it could write parts of it back.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from agents.shared.blob_store import VIDEO_FOLDERS, BlobStore
from agents.shared.graph_store import Neo4jGraph
from agents.shared.milvus_store import moment_collections
from agents.wiring import Dependencies
from streams import topics
from streams.records import GraphUpdated, encode
from vip.settings import Settings
from vip.upload import Publisher, UploadError


class DeletionError(Exception):
    """The video was not deleted (or not completely); the message says why."""


@dataclass(frozen=True)
class DeletionReport:
    video_id: str
    status: str | None  # the video's status before deletion (None: not in the graph)
    vectors: dict[str, int] = field(default_factory=dict)  # per collection kind
    blobs: int = 0


def delete_video(
    settings: Settings,
    video_id: str,
    *,
    force: bool = False,
    wait_s: float = 0.0,
    blobs: BlobStore | None = None,
) -> DeletionReport:
    graph = Neo4jGraph(settings.neo4j_uri, auth=settings.neo4j_auth)
    moments = moment_collections(settings)
    try:
        record = graph.get_video(video_id)
        status = None if record is None else record.props.get("status")
        if status == "processing" and not force:
            raise DeletionError(
                f"video {video_id} is still processing; wait for it to finish, or force it "
                "(a stage still at work may write parts of it back)"
            )
        moments.ensure_collections()  # loads them: a restarted Milvus has them released
        vectors: dict[str, int] = {}
        for kind, collection in moments.by_kind.items():
            vectors[kind] = len(collection.ids(video_id))
            collection.delete_video(video_id)
        if record is None and not any(vectors.values()) and not force:
            raise DeletionError(f"no video {video_id} in the graph or the vector store")
        try:
            Publisher(settings).send(
                topics.GRAPH_UPDATES,
                video_id,
                encode(GraphUpdated(video_id=video_id, removed=True)),
            )
        except UploadError as exc:
            raise DeletionError(f"vectors deleted, but the graph was not: {exc}") from exc
        store = blobs or Dependencies(settings).blobs()
        removed = sum(store.delete_under(f"{folder}/{video_id}") for folder in VIDEO_FOLDERS)
        if wait_s > 0:
            _wait_until_gone(graph, video_id, wait_s)
        return DeletionReport(video_id, status, vectors, removed)
    finally:
        moments.close()
        graph.close()


def _wait_until_gone(graph: Neo4jGraph, video_id: str, wait_s: float) -> None:
    deadline = time.monotonic() + wait_s
    while graph.get_video(video_id) is not None:
        if time.monotonic() > deadline:
            raise DeletionError(
                f"the graph sink has not removed video {video_id} within {wait_s:.0f} s "
                "(is the worker running? see `vip lag`)"
            )
        time.sleep(0.2)
