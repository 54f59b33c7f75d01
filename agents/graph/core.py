"""Pure construction of graph deltas from moments."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from agents.embedding.core import moment_id
from agents.graph.knowledge import knowledge_delta
from streams.records import EdgeDelta, EdgeSet, GraphUpdated, MomentEmbedded, NodeDelta


def moment_delta(
    moment: MomentEmbedded,
    canonical: Mapping[str, str] | None = None,
    embeddings: Mapping[str, list[float]] | None = None,
    similar: Sequence[tuple[str, float]] = (),
) -> GraphUpdated:
    """The moment's chunk in its video, and, when the moment carries its analysis, the
    chunk's shots, scene graphs and entities (resolved through ``canonical``, see
    agents/graph/resolution.py), and SIMILAR_TO edges to the ``similar`` moments of other
    videos (moment id, cosine of the multimodal vectors): one delta, one transaction."""
    span = moment.span
    video = NodeDelta(
        label="Video",
        key=moment.video_id,
        props={
            "source": span.source,
            "chunk_count": span.chunk_count,
            "duration": span.video_duration,
        },
    )
    chunk = NodeDelta(
        label="Chunk",
        key=moment.moment_id,
        props={
            "video_id": moment.video_id,
            "index": span.chunk_index,
            "upload_id": span.upload_id,
            "analysis_cache_hit": moment.analysis_cache_hit,
            "start": span.start,
            "end": span.end,
            "text": moment.text,
            "labels": list(moment.labels),
            "thumbnail": moment.thumbnail_uri,
        },
    )
    edges = [
        EdgeDelta(
            type="HAS_CHUNK",
            start_label="Video",
            start_key=moment.video_id,
            end_label="Chunk",
            end_key=moment.moment_id,
            props={"index": span.chunk_index},
        )
    ]
    # Chunks may arrive in any order: each links to its neighbours by key, and MERGE fills in
    # whichever end was seen first.
    if span.chunk_index > 0:
        edges.append(
            EdgeDelta(
                type="NEXT",
                start_label="Chunk",
                start_key=moment_id(moment.video_id, span.chunk_index - 1),
                end_label="Chunk",
                end_key=moment.moment_id,
            )
        )
    if span.chunk_index + 1 < span.chunk_count:
        edges.append(
            EdgeDelta(
                type="NEXT",
                start_label="Chunk",
                start_key=moment.moment_id,
                end_label="Chunk",
                end_key=moment_id(moment.video_id, span.chunk_index + 1),
            )
        )
    for other, score in similar:
        edges.append(
            EdgeDelta(
                type="SIMILAR_TO",
                start_label="Chunk",
                start_key=moment.moment_id,
                end_label="Chunk",
                end_key=other,
                props={"score": round(score, 4), "space": "multimodal"},
            )
        )
    nodes = [video, chunk]
    if moment.analysis is not None:
        known_nodes, known_edges = knowledge_delta(
            moment.analysis, moment.moment_id, canonical, embeddings
        )
        nodes.extend(known_nodes)
        edges.extend(known_edges)
    # The neighbours found now are the chunk's whole SIMILAR_TO set: those an earlier upload
    # of the video found (before other videos were stored, or among equal scores) are dropped.
    replaces = (EdgeSet(type="SIMILAR_TO", start_label="Chunk", start_key=moment.moment_id),)
    return GraphUpdated(
        video_id=moment.video_id, nodes=tuple(nodes), edges=tuple(edges), replaces=replaces
    )


def nearest_elsewhere(
    video_id: str, hits: Sequence[tuple[str, str, float]], k: int, min_score: float
) -> list[tuple[str, float]]:
    """From (moment id, video id, score) hits: the ``k`` best of other videos scoring at
    least ``min_score``. Scores equal to 4 decimals (copies of one clip) are ordered by moment
    id, so a store returning ties in another order picks the same neighbours."""
    found = [(mid, score) for mid, vid, score in hits if vid != video_id and score >= min_score]
    return sorted(found, key=lambda hit: (-round(hit[1], 4), hit[0]))[:k]
