"""The search path's store limits on the real stack: its Milvus and Neo4j calls are timed in
/metrics, a store past its deadline or unreachable answers 503 with Retry-After, and the graph
retriever reads at most the configured number of appearances per entity.

Apps are built in process (the running API is left alone). The graph test data is written to
the shared Neo4j under ids of this run and deleted afterwards.
"""

from __future__ import annotations

import logging
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from neo4j import Driver, GraphDatabase, Query
from neo4j.exceptions import ClientError
from prometheus_client import REGISTRY

from query_service.main import create_app
from query_service.retrieval.errors import StoreTimedOut
from query_service.retrieval.graph import GraphMoments, neo4j_failure
from query_service.retrieval.service import SearchService
from query_service.schemas import SearchFilters, TimeRange
from vip.settings import Settings

pytestmark = pytest.mark.stack

CAP = 2
APPEARANCES = 5


@dataclass(frozen=True)
class Crowd:
    """An entity seen in APPEARANCES chunks of one video, chunk i with confidence 0.5 + i/10."""

    name: str
    video_id: str

    def chunk(self, index: int) -> str:
        return f"{self.video_id}:{index:05d}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port  # closed again: nothing listens there


def calls(store: str, operation: str) -> float:
    labels = {"dependency": store, "operation": operation, "outcome": "ok"}
    return REGISTRY.get_sample_value("vip_dependency_call_seconds_count", labels) or 0.0


@pytest.fixture(scope="module")
def neo4j(running_stack: Settings) -> Iterator[Driver]:
    with GraphDatabase.driver(running_stack.neo4j_uri, auth=running_stack.neo4j_auth) as driver:
        yield driver


@pytest.fixture(scope="module")
def crowd(neo4j: Driver) -> Iterator[Crowd]:
    run = uuid.uuid4().hex[:12]
    found = Crowd(name=f"qsl{run}", video_id=f"qsl-{run}")
    rows = [
        {
            "chunk": found.chunk(i),
            "shot": f"{found.video_id}:shot:{i}",
            "start": 10.0 * i,
            "score": 0.5 + i / 10,
        }
        for i in range(APPEARANCES)
    ]
    neo4j.execute_query(
        """
        MERGE (e:Entity {key: 'object:' + $name}) SET e.name = $name, e.kind = 'object'
        WITH e UNWIND $rows AS row
        CREATE (c:Chunk {key: row.chunk, video_id: $video, start: row.start,
                         end: row.start + 10.0, text: 'a test moment', labels: []})
        CREATE (s:Shot {key: row.shot, chunk: row.chunk, video_id: $video,
                        start: row.start, end: row.start + 10.0})
        CREATE (c)-[:HAS_SHOT {start: row.start}]->(s)
        CREATE (e)-[:APPEARS_IN {video_id: $video, first: row.start, last: row.start,
                                 times: [row.start], score: row.score}]->(s)
        """,
        {"name": found.name, "video": found.video_id, "rows": rows},
    )
    yield found
    neo4j.execute_query(
        "MATCH (n) WHERE n.key = 'object:' + $name OR n.video_id = $video DETACH DELETE n",
        {"name": found.name, "video": found.video_id},
    )


@pytest.fixture(scope="module")
def capped(running_stack: Settings) -> Iterator[TestClient]:
    """The API with the graph retriever capped at CAP appearances per entity."""
    settings = running_stack.model_copy(update={"query_graph_appearances_per_entity": CAP})
    with TestClient(create_app(settings)) as client:
        yield client


def graph_only(crowd: Crowd) -> dict[str, object]:
    return {
        "query": crowd.name,
        "top_k": 10,
        "weights": {"vector": 0.0, "keyword": 0.0, "graph": 1.0},
        "filters": {"video_ids": [crowd.video_id]},
    }


def test_a_hybrid_search_times_each_store_call_in_metrics(capped: TestClient) -> None:
    timed = [
        ("milvus", "search_text"),
        ("milvus", "search_multimodal"),
        ("neo4j", "keyword_moments"),
        ("neo4j", "graph_moments"),
    ]
    before = [calls(store, operation) for store, operation in timed]

    found = capped.post("/v1/search/hybrid", json={"query": "a person riding a bicycle"})
    scraped = capped.get("/metrics").text

    assert found.status_code == 200, found.text
    after = [calls(store, operation) for store, operation in timed]
    assert [a - b for a, b in zip(after, before, strict=True)] == [1, 1, 1, 1]
    for store, operation in timed:
        series = f'dependency="{store}",operation="{operation}",outcome="ok"'
        assert f"vip_dependency_call_seconds_count{{{series}}}" in scraped


def test_the_graph_retriever_reads_only_the_most_confident_appearances(
    capped: TestClient, crowd: Crowd
) -> None:
    found = capped.post("/v1/search/hybrid", json=graph_only(crowd))

    assert found.status_code == 200, found.text
    moments = found.json()["data"]
    assert [m["id"] for m in moments] == [crowd.chunk(4), crowd.chunk(3)]
    assert [m["entities"] for m in moments] == [[crowd.name], [crowd.name]]


def test_without_the_cap_every_appearance_is_read(neo4j: Driver, crowd: Crowd) -> None:
    graph = GraphMoments(neo4j, per_entity=APPEARANCES)

    found = graph.moments([crowd.name], SearchFilters(video_ids=[crowd.video_id]), 10)

    assert [(m.id, m.score) for m in found] == [
        (crowd.chunk(4), 1.09),
        (crowd.chunk(3), 1.08),
        (crowd.chunk(2), 1.07),
        (crowd.chunk(1), 1.06),
        (crowd.chunk(0), 1.05),
    ]


def test_a_time_window_keeps_its_moments_under_the_cap(neo4j: Driver, crowd: Crowd) -> None:
    early = SearchFilters(video_ids=[crowd.video_id], time_range=TimeRange(start=0.0, end=15.0))

    found = GraphMoments(neo4j, per_entity=CAP).moments([crowd.name], early, 10)

    assert [(m.id, m.score) for m in found] == [(crowd.chunk(1), 1.06), (crowd.chunk(0), 1.05)]


@pytest.fixture(scope="module")
def hasty(running_stack: Settings) -> Iterator[TestClient]:
    """The API with a Milvus deadline no search can meet."""
    settings = running_stack.model_copy(update={"query_milvus_timeout_s": 0.001})
    with TestClient(create_app(settings)) as client:
        yield client


def only_pymilvus_logged_errors(caplog: pytest.LogCaptureFixture) -> bool:
    errors = [r for r in caplog.get_records("call") if r.levelno >= logging.ERROR]
    return all(r.name.split(".")[0] == "pymilvus" for r in errors)


@pytest.mark.allow_error_logs  # pymilvus logs each failed RPC as an ERROR itself
@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/search", {"query": "a red bicycle"}),
        ("/v1/search/hybrid", {"query": "a red bicycle"}),
        ("/v1/answer", {"question": "what colour is the bicycle?"}),
    ],
)
def test_milvus_past_its_deadline_answers_503_with_retry_after(
    hasty: TestClient, caplog: pytest.LogCaptureFixture, path: str, body: dict[str, str]
) -> None:
    answered = hasty.post(path, json=body)

    assert answered.status_code == 503, answered.text
    assert answered.headers["Retry-After"] == "5"
    assert answered.json() == {"detail": "milvus did not answer within 0.001 s; retry in 5 s"}
    assert only_pymilvus_logged_errors(caplog)


def test_neo4j_unreachable_answers_503_with_retry_after(
    capped: TestClient, running_stack: Settings, crowd: Crowd
) -> None:
    app = capped.app
    unreachable = running_stack.model_copy(
        update={"neo4j_url": f"bolt://127.0.0.1:{free_port()}", "query_neo4j_timeout_s": 0.5}
    )
    serving, app.state.search = app.state.search, SearchService(unreachable, app.state.stores)
    try:
        answered = capped.post("/v1/search/hybrid", json=graph_only(crowd))
    finally:
        app.state.search.close()
        app.state.search = serving

    assert answered.status_code == 503, answered.text
    assert answered.headers["Retry-After"] == "5"
    assert answered.json() == {"detail": "neo4j is unavailable; retry in 5 s"}


def test_a_neo4j_transaction_past_its_deadline_is_a_timeout(neo4j: Driver) -> None:
    with pytest.raises(ClientError) as raised:
        neo4j.execute_query(Query("UNWIND range(1, 1000000000) AS x RETURN count(x)", timeout=0.2))

    failure = neo4j_failure(raised.value, 0.2)

    assert isinstance(failure, StoreTimedOut)
    assert str(failure) == "neo4j did not answer within 0.2 s"


def test_the_503_is_in_the_search_and_answer_routes_openapi(capped: TestClient) -> None:
    paths = capped.app.openapi()["paths"]

    for path in ("/v1/search", "/v1/search/hybrid", "/v1/search/image", "/v1/answer"):
        unavailable = paths[path]["post"]["responses"]["503"]
        assert unavailable["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/ErrorPublic"
        }
        assert "Retry-After" in unavailable["headers"]
