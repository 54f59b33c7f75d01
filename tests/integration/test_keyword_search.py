"""The keyword retriever on a real Neo4j: moments written by the graph sink's own writer are
found through the Lucene full-text index the schema creates, under the search's filters.

A second, empty Neo4j (free loopback port, temporary data) keeps the moments apart from the
dev stack's graph.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from agents.shared.graph_store import Neo4jGraph
from query_service.retrieval.keyword import KeywordMoments
from query_service.schemas import SearchFilters, TimeRange
from streams.records import GraphUpdated, NodeDelta
from tests.integration.services import empty_neo4j

pytestmark = pytest.mark.stack

MOMENTS = {
    # key: (start, end, text, labels)
    "va:00000": (0.0, 10.0, "A scene showing two bicycles and a person.", ["bicycle", "person"]),
    "va:00001": (10.0, 20.0, "A scene showing a car on a road.", ["car"]),
    "vb:00000": (0.0, 10.0, "A person rides a bicycle past a red car.", ["person"]),
    "vb:00001": (10.0, 20.0, "On screen: FRAME 42.", []),
}


def chunk_delta(video_id: str) -> GraphUpdated:
    chunks = [
        NodeDelta(
            label="Chunk",
            key=key,
            props={
                "video_id": video_id,
                "start": start,
                "end": end,
                "text": text,
                "labels": labels,
            },
        )
        for key, (start, end, text, labels) in MOMENTS.items()
        if key.startswith(f"{video_id}:")
    ]
    video = NodeDelta(label="Video", key=video_id, props={"source": f"/media/{video_id}.mp4"})
    return GraphUpdated(video_id=video_id, nodes=(*chunks, video))


@pytest.fixture(scope="module")
def graph(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Neo4jGraph]:
    with empty_neo4j(tmp_path_factory.mktemp("keyword-neo4j")) as store:
        store.apply(chunk_delta("va"))
        store.apply(chunk_delta("vb"))
        yield store


def found(graph: Neo4jGraph, terms: list[str], **filters: object) -> list[str]:
    moments = KeywordMoments(graph.driver).moments(terms, SearchFilters(**filters), 10)
    return [m.id for m in moments]


def test_words_find_moments_by_text_and_labels_stemmed(graph: Neo4jGraph) -> None:
    # "bicycle" is in both videos' first moments (as "bicycles" in one); any word matches
    # (the search then re-scores by the share of words each holds: fusion.keyword_hits).
    assert set(found(graph, ["bicycle"])) == {"va:00000", "vb:00000"}
    assert set(found(graph, ["bicycle", "car"])) == {"va:00000", "va:00001", "vb:00000"}
    assert set(found(graph, ["cars"])) == {"va:00001", "vb:00000"}
    assert found(graph, ["42"]) == ["vb:00001"]
    assert found(graph, ["unicycle"]) == []
    [moment] = KeywordMoments(graph.driver).moments(["frame"], SearchFilters(), 10)
    assert (moment.video_id, moment.source, moment.start, moment.end) == (
        "vb", "/media/vb.mp4", 10.0, 20.0,
    )  # fmt: skip
    assert moment.score > 0


def test_the_search_filters_apply_to_keyword_matches(graph: Neo4jGraph) -> None:
    assert found(graph, ["car"], video_ids=["va"]) == ["va:00001"]
    assert found(graph, ["person"], time_range=TimeRange(start=0.0, end=5.0)) != []
    assert set(found(graph, ["person", "car"], time_range=TimeRange(start=12.0, end=15.0))) == {
        "va:00001"
    }
    assert found(graph, ["person"], labels=["bicycle"]) == ["va:00000"]


def test_a_deleted_video_is_no_longer_found(graph: Neo4jGraph) -> None:
    graph.apply(chunk_delta("vc").model_copy(update={"nodes": (
        NodeDelta(label="Chunk", key="vc:00000",
                  props={"video_id": "vc", "start": 0.0, "end": 1.0, "text": "a zebra"}),
    )}))  # fmt: skip
    assert found(graph, ["zebra"]) == ["vc:00000"]
    graph.apply(GraphUpdated(video_id="vc", removed=True))
    assert found(graph, ["zebra"]) == []


def test_without_the_index_keyword_search_finds_nothing_and_says_so_once(
    graph: Neo4jGraph, caplog: pytest.LogCaptureFixture
) -> None:
    absent = KeywordMoments(graph.driver, index="no_such_moment_index")
    with caplog.at_level(logging.WARNING, logger="query_service.retrieval.keyword"):
        assert absent.moments(["bicycle"], SearchFilters(), 10) == []
        assert absent.moments(["car"], SearchFilters(), 10) == []
    said = [r.getMessage() for r in caplog.records if "full-text index" in r.getMessage()]
    assert len(said) == 1 and "no_such_moment_index" in said[0]
