"""Graph retrieval: the moments where entities the query names appear or are mentioned.

One parameterised Cypher statement; the query's names are matched against entity names
(normalised, as the graph stage keys them) and aliases, then followed along APPEARS_IN and
MENTIONS to shots and up to their chunks, the moments.

An entity most moments show (``person``: 63,000 appearances at 100,000 moments) would have
every appearance joined to its chunk and summed, past the deadline (docs/benchmarks.md), so
each entity contributes at most ``per_entity`` appearances and as many mentions, its most
confident first; they are what would rank first anyway. The call has a deadline, is timed,
and a timeout or an unreachable Neo4j raises :class:`StoreTimedOut` / :class:`StoreUnavailable`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final, Protocol

from neo4j import Query, RoutingControl
from neo4j.exceptions import (
    ConnectionAcquisitionTimeoutError,
    Neo4jError,
    ServiceUnavailable,
    SessionExpired,
)

from query_service.metrics import store_call
from query_service.retrieval.errors import StoreTimedOut, StoreUnavailable
from query_service.retrieval.fusion import Candidate
from query_service.schemas import SearchFilters

QUERY_TIMEOUT_S = 5.0
APPEARANCES_PER_ENTITY = 1000

_OPERATION: Final = "graph_moments"

# Only when the search is limited in time or by labels: the cap must keep the appearances in
# moments the filter lets through, so those are checked before it (one chunk lookup per
# appearance, which the unfiltered statement saves). Video ids are checked on the
# relationship, always before the cap. Appearances are then summed by the shot's chunk key and
# only the best ``limit`` chunks are looked up (every appearance kept is in a chunk the filter
# admits), not one chunk per appearance.
_IN_CHUNKS_THE_FILTER_KEEPS: Final = """
    AND EXISTS {
      MATCH (c:Chunk {key: s.chunk})
      WHERE ($start IS NULL OR c.end >= $start) AND ($end IS NULL OR c.start <= $end)
        AND all(label IN $labels WHERE label IN coalesce(c.labels, []))
    }"""


def _moments_of_entities(chunk_filter: str) -> str:
    return (
        """
UNWIND $names AS name
CALL (name) {
  MATCH (e:Entity {name: name}) RETURN e
  UNION
  MATCH (:Alias {name: name})-[:ALIAS_OF]->(e:Entity) RETURN e
}
WITH DISTINCT e, name
CALL (e) {
  MATCH (e)-[a:APPEARS_IN]->(s:Shot)
  WHERE ($video_ids IS NULL OR a.video_id IN $video_ids)"""
        + chunk_filter
        + """
  WITH s, a, coalesce(a.score, 0.5) AS weight
  ORDER BY weight DESC, a.video_id, a.first
  LIMIT $per_entity
  RETURN s, weight
  UNION ALL
  MATCH (s:Shot)-[m:MENTIONS]->(e)
  WHERE ($video_ids IS NULL OR m.video_id IN $video_ids)"""
        + chunk_filter
        + """
  WITH s, m
  ORDER BY coalesce(m.score, 0.5) DESC, m.video_id, m.first
  LIMIT $per_entity
  RETURN s, 1.0 AS weight
}
WITH s.chunk AS id, e, max(weight) AS weight
WITH id, collect(e.name) AS entities, sum(weight) AS weight
ORDER BY size(entities) DESC, weight DESC, id
LIMIT $limit
MATCH (c:Chunk {key: id})
OPTIONAL MATCH (v:Video {key: c.video_id})
RETURN id, c.video_id AS video_id, coalesce(v.source, '') AS source,
       c.start AS start, c.end AS end, coalesce(c.text, '') AS text,
       coalesce(c.labels, []) AS labels, coalesce(c.thumbnail, '') AS thumbnail,
       entities, size(entities) AS matched, weight
ORDER BY matched DESC, weight DESC, id
"""
    )


MOMENTS_OF_ENTITIES: Final = _moments_of_entities("")
MOMENTS_OF_ENTITIES_FILTERED: Final = _moments_of_entities(_IN_CHUNKS_THE_FILTER_KEEPS)


def neo4j_failure(
    error: Exception, timeout_s: float, operation: str = _OPERATION
) -> StoreUnavailable | None:
    """What a failed Neo4j call means to a client: past its deadline (the server's transaction
    timeout, or no pooled connection in time), Neo4j unreachable, or (None) neither."""
    if isinstance(error, ConnectionAcquisitionTimeoutError):
        return StoreTimedOut("neo4j", operation, timeout_s)
    if isinstance(error, ServiceUnavailable | SessionExpired):
        return StoreUnavailable("neo4j", operation)
    if isinstance(error, Neo4jError) and "TransactionTimedOut" in (error.code or ""):
        return StoreTimedOut("neo4j", operation, timeout_s)
    return None


class ReadDriver(Protocol):
    """The part of neo4j.Driver used here."""

    def execute_query(self, query_: Any, parameters_: Any = None, **kwargs: Any) -> Any: ...


class GraphMoments:
    def __init__(
        self,
        driver: ReadDriver,
        timeout_s: float = QUERY_TIMEOUT_S,
        per_entity: int = APPEARANCES_PER_ENTITY,
    ) -> None:
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        if per_entity < 1:
            raise ValueError("per_entity must be at least 1")
        self._driver = driver
        self._timeout_s = timeout_s
        self._per_entity = per_entity

    def moments(self, names: Sequence[str], filters: SearchFilters, limit: int) -> list[Candidate]:
        """Moments holding the most named entities first, then the most confidently seen.
        The score is the number of distinct entities matched plus their summed confidence
        scaled below 1, so moments that match more names always rank higher."""
        if not names:
            return []
        window = filters.time_range
        statement = (
            MOMENTS_OF_ENTITIES_FILTERED if window or filters.labels else MOMENTS_OF_ENTITIES
        )
        with store_call("neo4j", _OPERATION):
            try:
                records, _, _ = self._driver.execute_query(
                    Query(statement, timeout=self._timeout_s),
                    {
                        "names": list(names),
                        "video_ids": filters.video_ids,
                        "start": window.start if window else None,
                        "end": window.end if window else None,
                        "labels": filters.labels or [],
                        "per_entity": self._per_entity,
                        "limit": limit,
                    },
                    routing_=RoutingControl.READ,
                )
            except Exception as exc:
                failure = neo4j_failure(exc, self._timeout_s)
                if failure is None:
                    raise
                raise failure from exc
        return [
            chunk_candidate(
                r,
                score=round(int(r["matched"]) + min(float(r["weight"]), 9.0) / 10, 4),
                entities=tuple(str(name) for name in r["entities"]),
            )
            for r in records
        ]


def chunk_candidate(record: Any, score: float, entities: tuple[str, ...] = ()) -> Candidate:
    """A moment read from its Chunk node (id, video_id, source, start, end, text, labels and
    thumbnail columns)."""
    return Candidate(
        id=str(record["id"]),
        video_id=str(record["video_id"]),
        source=str(record["source"]),
        start=float(record["start"]),
        end=float(record["end"]),
        text=str(record["text"]),
        labels=tuple(str(label) for label in record["labels"]),
        thumbnail=str(record["thumbnail"]),
        score=score,
        entities=entities,
    )
