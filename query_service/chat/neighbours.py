"""The chunks just after or before a moment of a video, read from the knowledge graph."""

from __future__ import annotations

from typing import Any, Final, Literal

from neo4j import Query, RoutingControl

from agents.embedding.core import moment_id
from query_service.graph_queries import ReadDriver
from query_service.graph_schemas import QUERY_TIMEOUT_S
from query_service.media import thumbnail_url
from query_service.schemas import MomentPublic

# Chunks are contiguous: the next one starts where the anchor ends (allow float noise).
_EPSILON_S: Final = 0.05

AFTER: Final = """
MATCH (v:Video {key: $video_id})-[:HAS_CHUNK]->(c:Chunk)
WHERE c.start > $start AND c.start >= $end - $epsilon
RETURN v.source AS source, c.index AS index, c.start AS start, c.end AS end, c.text AS text,
       c.labels AS labels, c.thumbnail AS thumbnail
ORDER BY c.start LIMIT $limit
"""

BEFORE: Final = """
MATCH (v:Video {key: $video_id})-[:HAS_CHUNK]->(c:Chunk)
WHERE c.start < $start AND c.end <= $start + $epsilon
RETURN v.source AS source, c.index AS index, c.start AS start, c.end AS end, c.text AS text,
       c.labels AS labels, c.thumbnail AS thumbnail
ORDER BY c.start DESC LIMIT $limit
"""


class Neighbours:
    def __init__(self, driver: ReadDriver, timeout_s: float = QUERY_TIMEOUT_S) -> None:
        self._driver = driver
        self._timeout_s = timeout_s

    def of(
        self, anchor: MomentPublic, direction: Literal["after", "before"], limit: int
    ) -> list[MomentPublic]:
        """Up to ``limit`` chunks of the anchor's video next to it, in time order."""
        records, _, _ = self._driver.execute_query(
            Query(AFTER if direction == "after" else BEFORE, timeout=self._timeout_s),
            {
                "video_id": anchor.video_id,
                "start": anchor.start,
                "end": anchor.end,
                "epsilon": _EPSILON_S,
                "limit": limit,
            },
            routing_=RoutingControl.READ,
        )
        rows = sorted((r.data() for r in records), key=lambda row: row["start"])
        return [_moment(anchor.video_id, row) for row in rows if row["text"]]


def _moment(video_id: str, row: dict[str, Any]) -> MomentPublic:
    return MomentPublic(
        id=moment_id(video_id, int(row["index"])),
        video_id=video_id,
        source=str(row["source"] or ""),
        start=float(row["start"]),
        end=float(row["end"]),
        score=1.0,
        text=str(row["text"]),
        labels=list(row["labels"] or []),
        retrievers=["graph"],
        thumbnail_url=thumbnail_url(row["thumbnail"]),
    )
