"""Graph retrieval: the moments where entities the query names appear or are mentioned.

One parameterised Cypher statement; the query's names are matched against entity names
(normalised, as the graph stage keys them) and aliases, then followed along APPEARS_IN and
MENTIONS to shots and up to their chunks, the moments.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from neo4j import Query, RoutingControl

from query_service.retrieval.fusion import Candidate
from query_service.schemas import SearchFilters

QUERY_TIMEOUT_S = 5.0

MOMENTS_OF_ENTITIES = """
UNWIND $names AS name
CALL (name) {
  MATCH (e:Entity {name: name}) RETURN e
  UNION
  MATCH (:Alias {name: name})-[:ALIAS_OF]->(e:Entity) RETURN e
}
WITH DISTINCT e, name
CALL (e) {
  MATCH (e)-[a:APPEARS_IN]->(s:Shot)
  WHERE $video_ids IS NULL OR a.video_id IN $video_ids
  RETURN s, coalesce(a.score, 0.5) AS weight
  UNION ALL
  MATCH (s:Shot)-[m:MENTIONS]->(e)
  WHERE $video_ids IS NULL OR m.video_id IN $video_ids
  RETURN s, 1.0 AS weight
}
MATCH (c:Chunk {key: s.chunk})
WHERE ($start IS NULL OR c.end >= $start) AND ($end IS NULL OR c.start <= $end)
  AND all(label IN $labels WHERE label IN coalesce(c.labels, []))
WITH c, e, max(weight) AS weight
WITH c, collect(e.name) AS entities, sum(weight) AS weight
OPTIONAL MATCH (v:Video {key: c.video_id})
RETURN c.key AS id, c.video_id AS video_id, coalesce(v.source, '') AS source,
       c.start AS start, c.end AS end, coalesce(c.text, '') AS text,
       coalesce(c.labels, []) AS labels, coalesce(c.thumbnail, '') AS thumbnail,
       entities, size(entities) AS matched, weight
ORDER BY matched DESC, weight DESC, id
LIMIT $limit
"""


class ReadDriver(Protocol):
    """The part of neo4j.Driver used here."""

    def execute_query(self, query_: Any, parameters_: Any = None, **kwargs: Any) -> Any: ...


class GraphMoments:
    def __init__(self, driver: ReadDriver, timeout_s: float = QUERY_TIMEOUT_S) -> None:
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        self._driver = driver
        self._timeout_s = timeout_s

    def moments(self, names: Sequence[str], filters: SearchFilters, limit: int) -> list[Candidate]:
        """Moments holding the most named entities first, then the most confidently seen.
        The score is the number of distinct entities matched plus their summed confidence
        scaled below 1, so moments that match more names always rank higher."""
        if not names:
            return []
        window = filters.time_range
        records, _, _ = self._driver.execute_query(
            Query(MOMENTS_OF_ENTITIES, timeout=self._timeout_s),
            {
                "names": list(names),
                "video_ids": filters.video_ids,
                "start": window.start if window else None,
                "end": window.end if window else None,
                "labels": filters.labels or [],
                "limit": limit,
            },
            routing_=RoutingControl.READ,
        )
        return [
            Candidate(
                id=str(r["id"]),
                video_id=str(r["video_id"]),
                source=str(r["source"]),
                start=float(r["start"]),
                end=float(r["end"]),
                text=str(r["text"]),
                labels=tuple(str(label) for label in r["labels"]),
                thumbnail=str(r["thumbnail"]),
                score=round(int(r["matched"]) + min(float(r["weight"]), 9.0) / 10, 4),
                entities=tuple(str(name) for name in r["entities"]),
            )
            for r in records
        ]
