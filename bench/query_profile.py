"""Same-process baseline and profile for bench/query_load.py: each call the query service makes
for a request, timed alone against the bench's stores, beside the whole use case run in this
process (no HTTP) and one request at a time over HTTP."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx
from pymilvus import MilvusClient

from agents.shared.milvus_store import GRPC_OPTIONS
from agents.wiring import Dependencies
from query_service.retrieval.graph import GraphMoments
from query_service.retrieval.index import MomentIndex
from query_service.retrieval.service import MIN_POOL, SearchService
from query_service.retrieval.terms import entity_names
from query_service.schemas import HybridSearchRequest, SearchFilters, SearchRequest
from vip.settings import Settings

TOP_K = 5
EMBED = "Triton embed_texts (1 query)"
TEXT = "Milvus search, text (pool 20)"
MULTIMODAL = "Milvus search, multimodal (pool 20)"
KEYWORD = "Neo4j full-text keyword retriever (as hybrid asks)"
GRAPH = "Neo4j graph retriever (pool 20)"
SEARCH_CALLS = "/v1/search's calls one after another (embed + 2 searches)"
HYBRID_CALLS = "/v1/search/hybrid's calls one after another (+ keyword + graph)"


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(values: Sequence[float]) -> dict[str, float]:
    return {
        "p50": statistics.median(values),
        "p99": percentile(values, 0.99),
        "n": len(values),
    }


def profile(settings: Settings, queries: Sequence[str], api_url: str) -> dict[str, dict]:
    """Milliseconds per call, each kind of call once per query in turn (so noise spreads over
    all of them alike). The store calls are the ones the service makes for a top-5 request
    (pools of 20); "one after another" adds up, per query, the calls a request needs, as the
    service made them before its retrievers ran side by side."""
    stores = Dependencies(settings)
    service = SearchService(settings, stores)
    client = MilvusClient(uri=settings.milvus_uri, timeout=60, grpc_options=GRPC_OPTIONS)
    index = MomentIndex(client, settings.milvus_collection, timeout_s=60)
    graph = GraphMoments(stores.graph().driver)
    triton = stores.triton()
    vectors: dict[str, list[float]] = {}
    none = SearchFilters()
    http = httpx.Client(base_url=api_url, timeout=120)

    def embed(q: str) -> Any:
        vectors[q] = [float(v) for v in triton.embed_texts([q])[0]]

    calls: dict[str, Callable[[str], Any]] = {
        EMBED: embed,
        TEXT: lambda q: index.nearest("text", vectors[q], MIN_POOL),
        MULTIMODAL: lambda q: index.nearest("multimodal", vectors[q], MIN_POOL),
        KEYWORD: lambda q: service._keyword(q, none, MIN_POOL),
        GRAPH: lambda q: graph.moments(entity_names(q), none, MIN_POOL),
        "SearchService.search in process": lambda q: service.search(
            SearchRequest(query=q, top_k=TOP_K)
        ),
        "SearchService.hybrid in process": lambda q: service.hybrid(
            HybridSearchRequest(query=q, top_k=TOP_K)
        ),
        "HTTP /v1/search, one at a time": lambda q: http.post(
            "/v1/search", json={"query": q, "top_k": TOP_K}
        ).raise_for_status(),
        "HTTP /v1/search/hybrid, one at a time": lambda q: http.post(
            "/v1/search/hybrid", json={"query": q, "top_k": TOP_K}
        ).raise_for_status(),
        "HTTP /v1/answer, one at a time": lambda q: http.post(
            "/v1/answer", json={"question": q}
        ).raise_for_status(),
    }
    times: dict[str, list[float]] = {name: [] for name in calls}
    times[SEARCH_CALLS] = []
    times[HYBRID_CALLS] = []
    errors: dict[str, str] = {}
    try:
        for query in queries:
            spent: dict[str, float] = {}
            for name, call in calls.items():
                began = time.perf_counter()
                try:
                    call(query)
                except Exception as exc:  # a timeout under load is a result, not a crash
                    errors[name] = f"{type(exc).__name__}: {str(exc)[:120]}"
                spent[name] = (time.perf_counter() - began) * 1000
                times[name].append(spent[name])
            times[SEARCH_CALLS].append(spent[EMBED] + spent[TEXT] + spent[MULTIMODAL])
            times[HYBRID_CALLS].append(times[SEARCH_CALLS][-1] + spent[KEYWORD] + spent[GRAPH])
    finally:
        http.close()
        client.close()
        service.close()
        stores.close()
    found = {name: summary(values) for name, values in times.items()}
    for name, error in errors.items():
        found[name]["error"] = error  # type: ignore[assignment]
    return found
