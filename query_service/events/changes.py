"""Pure translation of pipeline events into "these videos changed" notifications.

``embeddings`` carries MomentEmbedded: the moment's vectors are already in Milvus when it is
published. ``graph.updates`` carries GraphUpdated: a delta that the graph sink is about to
write to Neo4j. Records are decoded with the project's own ``decode``; a malformed event or an
unknown schema version raises :class:`streams.errors.EventError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from streams import topics
from streams.records import EdgeDelta, GraphUpdated, MomentEmbedded, NodeDelta, decode

# Labels whose keys start with the video id: "<video>:00003", "<video>:shot:000002000".
_KEY_PARTS = {"Chunk": 2, "Shot": 3, "ChunkBoundary": 3}
# An alias makes a name resolve to an entity of every video that has it (query_service's
# retrieval resolves names through Alias nodes), so it may change any video's answers.
_EVERYWHERE_LABELS = frozenset({"Alias"})
_EVERYWHERE_EDGES = frozenset({"ALIAS_OF"})


@dataclass(frozen=True)
class VideoChange:
    """One event: which videos it changes, and what it tells the counters."""

    topic: str
    partition: int
    offset: int
    video_id: str
    occurred_at: datetime
    # Other videos the event touches (a SIMILAR_TO edge to another video's moment).
    also: frozenset[str] = frozenset()
    # True when the change may alter answers about any video (a new alias).
    everywhere: bool = False
    moment_id: str | None = None
    nodes: int = 0
    edges: int = 0

    @property
    def videos(self) -> frozenset[str]:
        return self.also | {self.video_id}

    @property
    def pending_write(self) -> bool:
        """Whether the stores have yet to take the change in (the graph sink writes it)."""
        return self.topic == topics.GRAPH_UPDATES


def read_change(topic: str, partition: int, offset: int, value: bytes | None) -> VideoChange:
    """The change one message announces. Raises EventError for a message that is not a valid
    record of the topic's type, and ValueError for a topic this service does not follow."""
    if topic == topics.EMBEDDINGS:
        moment = decode(value, MomentEmbedded)
        return VideoChange(
            topic=topic,
            partition=partition,
            offset=offset,
            video_id=moment.video_id,
            occurred_at=moment.occurred_at,
            moment_id=moment.moment_id,
        )
    if topic == topics.GRAPH_UPDATES:
        update = decode(value, GraphUpdated)
        return VideoChange(
            topic=topic,
            partition=partition,
            offset=offset,
            video_id=update.video_id,
            occurred_at=update.occurred_at,
            also=touched_videos(update.nodes, update.edges) - {update.video_id},
            everywhere=touches_everything(update.nodes, update.edges),
            nodes=len(update.nodes),
            edges=len(update.edges),
        )
    raise ValueError(f"no change is read from topic {topic!r}")


def video_of(label: str, key: str) -> str | None:
    """The video a node belongs to, read from its key; None for shared nodes (entities)."""
    parts = _KEY_PARTS.get(label)
    if label == "Video":
        return key
    if parts is None:
        return None
    pieces = key.rsplit(":", parts - 1)
    return pieces[0] if len(pieces) == parts and pieces[0] else None


def touched_videos(nodes: tuple[NodeDelta, ...], edges: tuple[EdgeDelta, ...]) -> frozenset[str]:
    ends = [(n.label, n.key) for n in nodes]
    for edge in edges:
        ends += [(edge.start_label, edge.start_key), (edge.end_label, edge.end_key)]
    return frozenset(v for label, key in ends if (v := video_of(label, key)) is not None)


def touches_everything(nodes: tuple[NodeDelta, ...], edges: tuple[EdgeDelta, ...]) -> bool:
    return any(n.label in _EVERYWHERE_LABELS for n in nodes) or any(
        e.type in _EVERYWHERE_EDGES for e in edges
    )
