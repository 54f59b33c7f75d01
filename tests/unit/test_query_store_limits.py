"""The search path's store limits without servers: which store failures become a 503, the
graph retriever's per-entity cap and statement choice, and the timing of each call."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from neo4j.exceptions import ConnectionAcquisitionTimeoutError, ServiceUnavailable
from prometheus_client import REGISTRY
from pydantic import ValidationError
from pymilvus import MilvusException
from pymilvus.client.types import Status

from query_service.retrieval.errors import StoreTimedOut, StoreUnavailable
from query_service.retrieval.graph import (
    MOMENTS_OF_ENTITIES,
    MOMENTS_OF_ENTITIES_FILTERED,
    GraphMoments,
    neo4j_failure,
)
from query_service.retrieval.index import call_milvus, milvus_failure
from query_service.schemas import SearchFilters, TimeRange
from vip.settings import load_settings


class RecordingDriver:
    """Answers every statement with no rows, or raises ``error``; keeps what it was sent."""

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.sent: list[tuple[Any, dict[str, Any]]] = []

    def execute_query(self, query_: Any, parameters_: Any = None, **kwargs: Any) -> Any:
        self.sent.append((query_, parameters_))
        if self.error is not None:
            raise self.error
        return [], None, None


def calls(store: str, operation: str, outcome: str) -> float:
    labels = {"dependency": store, "operation": operation, "outcome": outcome}
    return REGISTRY.get_sample_value("vip_dependency_call_seconds_count", labels) or 0.0


def test_a_refused_milvus_connection_is_unavailable() -> None:
    refused = MilvusException(code=Status.CONNECT_FAILED, message="Fail connecting to server")

    failure = milvus_failure(refused, "connect", 2.0)

    assert type(failure) is StoreUnavailable
    assert (str(failure), failure.store, failure.operation) == (
        "milvus is unavailable",
        "milvus",
        "connect",
    )


def test_milvus_retries_that_run_out_of_time_are_a_timeout() -> None:
    retried = MilvusException(
        code=grpc.StatusCode.UNAVAILABLE, message="[search] Retry timeout: 0.5s, <unavailable>"
    )

    failure = milvus_failure(retried, "search_text", 0.5)

    assert isinstance(failure, StoreTimedOut)
    assert str(failure) == "milvus did not answer within 0.5 s"


def test_a_connection_that_is_not_ready_in_time_is_a_timeout() -> None:
    failure = milvus_failure(grpc.FutureTimeoutError(), "connect", 0.25)

    assert isinstance(failure, StoreTimedOut)
    assert (str(failure), failure.timeout_s) == ("milvus did not answer within 0.25 s", 0.25)


def test_a_refused_milvus_expression_is_not_a_store_failure() -> None:
    refused = MilvusException(code=6, message="LIKE requires a string literal pattern")

    assert milvus_failure(refused, "keyword_scan", 10.0) is None


def test_a_milvus_call_is_timed_and_its_failure_translated() -> None:
    before = calls("milvus", "keyword_scan", "error"), calls("milvus", "keyword_scan", "ok")

    def refused() -> None:
        raise MilvusException(code=Status.CONNECT_FAILED, message="Fail connecting to server")

    with pytest.raises(StoreUnavailable, match=r"^milvus is unavailable$"):
        call_milvus("keyword_scan", 1.0, refused)
    assert call_milvus("keyword_scan", 1.0, lambda: 3) == 3

    after = calls("milvus", "keyword_scan", "error"), calls("milvus", "keyword_scan", "ok")
    assert (after[0] - before[0], after[1] - before[1]) == (1, 1)


def test_neo4j_unreachable_or_out_of_pooled_connections_is_a_503_failure() -> None:
    unreachable = neo4j_failure(ServiceUnavailable("Couldn't connect to 127.0.0.1:1"), 5.0)
    no_connection = neo4j_failure(ConnectionAcquisitionTimeoutError("pool"), 5.0)

    assert type(unreachable) is StoreUnavailable
    assert str(unreachable) == "neo4j is unavailable"
    assert isinstance(no_connection, StoreTimedOut)
    assert str(no_connection) == "neo4j did not answer within 5 s"
    assert neo4j_failure(ValueError("not a store failure"), 5.0) is None


def test_the_graph_retriever_sends_its_cap_and_deadline_with_the_unfiltered_statement() -> None:
    driver = RecordingDriver()

    GraphMoments(driver, timeout_s=0.75, per_entity=3).moments(["person"], SearchFilters(), 20)

    [(query, parameters)] = driver.sent
    assert (query.text, query.timeout) == (MOMENTS_OF_ENTITIES, 0.75)
    assert (parameters["per_entity"], parameters["limit"], parameters["names"]) == (
        3,
        20,
        ["person"],
    )
    assert "LIMIT $per_entity" in MOMENTS_OF_ENTITIES
    assert "EXISTS" not in MOMENTS_OF_ENTITIES


def test_a_time_window_or_labels_are_checked_before_the_cap() -> None:
    driver = RecordingDriver()
    graph = GraphMoments(driver, per_entity=3)

    graph.moments(["person"], SearchFilters(time_range=TimeRange(start=0.0, end=10.0)), 20)
    graph.moments(["person"], SearchFilters(labels=["car"]), 20)
    graph.moments(["person"], SearchFilters(video_ids=["v1"]), 20)

    statements = [query.text for query, _ in driver.sent]
    assert statements == [
        MOMENTS_OF_ENTITIES_FILTERED,
        MOMENTS_OF_ENTITIES_FILTERED,
        MOMENTS_OF_ENTITIES,
    ]
    appearances = MOMENTS_OF_ENTITIES_FILTERED.split("UNION ALL")[0]
    assert appearances.index("EXISTS") < appearances.index("LIMIT $per_entity")


def test_an_unreachable_graph_raises_store_unavailable_and_counts_an_error() -> None:
    before = calls("neo4j", "graph_moments", "error")
    graph = GraphMoments(RecordingDriver(ServiceUnavailable("Couldn't connect")), per_entity=3)

    with pytest.raises(StoreUnavailable, match=r"^neo4j is unavailable$") as raised:
        graph.moments(["person"], SearchFilters(), 20)

    assert isinstance(raised.value.__cause__, ServiceUnavailable)
    assert calls("neo4j", "graph_moments", "error") - before == 1


def test_a_query_naming_nothing_reads_no_graph() -> None:
    driver = RecordingDriver()

    assert GraphMoments(driver).moments([], SearchFilters(), 20) == []
    assert driver.sent == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("query_graph_appearances_per_entity", 0),
        ("query_milvus_timeout_s", 0),
        ("query_neo4j_timeout_s", -1.0),
    ],
)
def test_store_limits_must_be_positive(field: str, value: float) -> None:
    with pytest.raises(ValidationError, match=field):
        load_settings(**{field: value})


def test_the_graph_retriever_refuses_a_cap_below_one() -> None:
    with pytest.raises(ValueError, match=r"^per_entity must be at least 1$"):
        GraphMoments(RecordingDriver(), per_entity=0)


def test_the_keyword_retriever_sends_plain_words_with_its_deadline_and_filters() -> None:
    from query_service.retrieval.keyword import KEYWORD_MOMENTS, KeywordMoments

    driver = RecordingDriver()
    filters = SearchFilters(video_ids=["v1"], time_range=TimeRange(start=5.0, end=9.0))

    assert KeywordMoments(driver, timeout_s=0.5).moments(["car", "cars"], filters, 40) == []
    assert KeywordMoments(driver).moments([], filters, 40) == []  # no words: no call

    [(query, parameters)] = driver.sent
    assert (query.text, query.timeout) == (KEYWORD_MOMENTS, 0.5)
    assert parameters == {
        "index": "moment_text",
        "query": "car cars",
        "video_ids": ["v1"],
        "start": 5.0,
        "end": 9.0,
        "labels": [],
        "limit": 40,
    }


def test_an_unreachable_neo4j_fails_the_keyword_retriever_as_its_own_operation() -> None:
    from query_service.retrieval.keyword import KeywordMoments

    driver = RecordingDriver(ServiceUnavailable("Couldn't connect to 127.0.0.1:1"))
    with pytest.raises(StoreUnavailable) as raised:
        KeywordMoments(driver).moments(["car"], SearchFilters(), 10)
    assert (raised.value.store, raised.value.operation) == ("neo4j", "keyword_moments")
    assert calls("neo4j", "keyword_moments", "error") >= 1
