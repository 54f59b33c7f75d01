"""Keyword retrieval: the moments whose description or labels hold the query's words, from
Neo4j's Lucene full-text index of Chunk nodes (:data:`~agents.shared.graph_store.MOMENT_TEXT_INDEX`,
English analyzer, written by the graph sink in the same transaction as the chunk).

Lucene ranks every moment holding any of the words (BM25) and the search's filters are applied
to that stream in rank order, so a call reads about as many moments as it returns instead of
scanning the vectors' store (the Milvus ``LIKE`` scan this replaces took 0.8 s at 100,000
moments, and Milvus before 2.4 refused it; docs/benchmarks.md). The terms reach Lucene's query
parser only after they are checked to be plain lower-case words, and every other value is a
query parameter.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Final

from neo4j import Query, RoutingControl
from neo4j.exceptions import Neo4jError

from agents.shared.graph_store import MOMENT_TEXT_INDEX
from query_service.metrics import store_call
from query_service.retrieval.fusion import Candidate
from query_service.retrieval.graph import (
    QUERY_TIMEOUT_S,
    ReadDriver,
    chunk_candidate,
    neo4j_failure,
)
from query_service.schemas import SearchFilters

_OPERATION: Final = "keyword_moments"
# What query_service.retrieval.terms makes of a query: lower-case ASCII words, which Lucene's
# query parser reads as terms (its operators are upper case, its syntax is punctuation).
_TERM: Final = re.compile(r"^[a-z0-9]{1,40}$")
# What Neo4j answers when the index is missing: a graph whose worker has not yet started on
# this version (the worker creates the index, `vip stack bootstrap` too).
_NO_INDEX: Final = "no such fulltext schema index"

KEYWORD_MOMENTS: Final = """
CALL db.index.fulltext.queryNodes($index, $query) YIELD node AS c, score
WHERE ($video_ids IS NULL OR c.video_id IN $video_ids)
  AND ($start IS NULL OR c.end >= $start) AND ($end IS NULL OR c.start <= $end)
  AND all(label IN $labels WHERE label IN coalesce(c.labels, []))
WITH c, score
LIMIT $limit
OPTIONAL MATCH (v:Video {key: c.video_id})
RETURN c.key AS id, c.video_id AS video_id, coalesce(v.source, '') AS source,
       c.start AS start, c.end AS end, coalesce(c.text, '') AS text,
       coalesce(c.labels, []) AS labels, coalesce(c.thumbnail, '') AS thumbnail, score
"""

log = logging.getLogger(__name__)
_said_missing: set[str] = set()


class UnsafeKeyword(ValueError):
    """A term that will not be put into a Lucene query."""


def lucene_query(terms: Sequence[str]) -> str:
    """Any of the terms (Lucene's default operator is OR), each checked to be a plain word."""
    for term in terms:
        if not _TERM.match(term):
            raise UnsafeKeyword(f"not a keyword term: {term!r}")
    return " ".join(terms)


class KeywordMoments:
    def __init__(
        self, driver: ReadDriver, timeout_s: float = QUERY_TIMEOUT_S, index: str = MOMENT_TEXT_INDEX
    ) -> None:
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        self._driver = driver
        self._timeout_s = timeout_s
        self._index = index

    def moments(self, terms: Sequence[str], filters: SearchFilters, limit: int) -> list[Candidate]:
        """Up to ``limit`` moments the filters admit, holding any of the terms, Lucene's best
        first (its score on each). Without the index: none, and a warning once."""
        if not terms:
            return []
        window = filters.time_range
        with store_call("neo4j", _OPERATION):
            try:
                records, _, _ = self._driver.execute_query(
                    Query(KEYWORD_MOMENTS, timeout=self._timeout_s),
                    {
                        "index": self._index,
                        "query": lucene_query(terms),
                        "video_ids": filters.video_ids,
                        "start": window.start if window else None,
                        "end": window.end if window else None,
                        "labels": filters.labels or [],
                        "limit": limit,
                    },
                    routing_=RoutingControl.READ,
                )
            except Exception as exc:
                if isinstance(exc, Neo4jError) and _NO_INDEX in str(exc.message or ""):
                    if self._index not in _said_missing:  # said once per index and process
                        _said_missing.add(self._index)
                        log.warning("Neo4j has no full-text index %r: no keyword search until "
                                    "the worker creates it", self._index)  # fmt: skip
                    return []
                failure = neo4j_failure(exc, self._timeout_s, _OPERATION)
                if failure is None:
                    raise
                raise failure from exc
        return [chunk_candidate(r, score=round(float(r["score"]), 4)) for r in records]
