"""Milvus reads for search: nearest moments of one kind under a filter.

Every call has a deadline, is timed (:func:`query_service.metrics.store_call`), and a call that
times out or cannot reach Milvus raises :class:`StoreTimedOut` / :class:`StoreUnavailable`;
any other Milvus error (a refused expression: our fault) propagates as it is.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, Protocol, TypeVar

import grpc
from pymilvus import MilvusException
from pymilvus.client.types import Status

from agents.shared.milvus_store import (
    CONSISTENCY,
    DEFAULT_INDEX,
    OUTPUT_FIELDS,
    Kind,
    VectorIndex,
    collection_name,
    loaded,
)
from query_service.metrics import StoreOperation, store_call
from query_service.retrieval.errors import StoreTimedOut, StoreUnavailable
from query_service.retrieval.fusion import Candidate

SEARCH_OPERATIONS: Final[Mapping[Kind, StoreOperation]] = {
    "text": "search_text",
    "visual": "search_visual",
    "multimodal": "search_multimodal",
}

T = TypeVar("T")


def milvus_failure(error: Exception, operation: str, timeout_s: float) -> StoreUnavailable | None:
    """What a failed Milvus call means to a client: past its deadline, Milvus unreachable, or
    (None) neither, an error to propagate. pymilvus raises a deadline as grpc's own error, a
    refused connection as code 2, and retries an unreachable server until the deadline."""
    if isinstance(error, grpc.FutureTimeoutError):
        return StoreTimedOut("milvus", operation, timeout_s)
    code = error.code() if isinstance(error, grpc.Call) else getattr(error, "code", None)
    text = str(error)
    if code == grpc.StatusCode.DEADLINE_EXCEEDED or "DEADLINE_EXCEEDED" in text:
        return StoreTimedOut("milvus", operation, timeout_s)
    if isinstance(error, MilvusException) and "Retry timeout" in text:
        return StoreTimedOut("milvus", operation, timeout_s)
    if code in (grpc.StatusCode.UNAVAILABLE, Status.CONNECT_FAILED):
        return StoreUnavailable("milvus", operation)
    return None


def call_milvus(operation: StoreOperation, timeout_s: float, call: Callable[[], T]) -> T:
    """``call()``, timed, with its timeout or connection failure translated."""
    with store_call("milvus", operation):
        try:
            return call()
        except (MilvusException, grpc.RpcError) as exc:
            failure = milvus_failure(exc, operation, timeout_s)
            if failure is None:
                raise
            raise failure from exc


class SearchClient(Protocol):
    """The part of pymilvus.MilvusClient used here."""

    def search(self, collection_name: str, **kwargs: Any) -> Any: ...

    def query(self, collection_name: str, **kwargs: Any) -> Any: ...

    def load_collection(self, collection_name: str, **kwargs: Any) -> Any: ...


def _candidate(entity: dict[str, Any], key: str, score: float) -> Candidate:
    return Candidate(
        id=key,
        video_id=str(entity["video_id"]),
        source=str(entity["source"]),
        start=float(entity["start"]),
        end=float(entity["end"]),
        text=str(entity["text"]),
        labels=tuple(label for label in str(entity["labels"]).split(",") if label),
        thumbnail=str(entity["thumbnail"]),
        score=score,
    )


class MomentIndex:
    """``slots``, when given, is held around every call (a semaphore bounding how many calls
    the caller's process has in flight); the call's timeout, and its timing, start once it
    holds one."""

    def __init__(
        self,
        client: SearchClient,
        base: str,
        timeout_s: float = 10.0,
        slots: contextlib.AbstractContextManager[Any] | None = None,
        *,
        index: VectorIndex = DEFAULT_INDEX,
        consistency: str = CONSISTENCY,
    ) -> None:
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        self._client = client
        self._base = base
        self._timeout_s = timeout_s
        self._slots = slots if slots is not None else contextlib.nullcontext()
        self._index = index
        self._consistency = consistency

    def nearest(
        self, kind: Kind, vector: Sequence[float], limit: int, expression: str = ""
    ) -> list[Candidate]:
        collection = collection_name(self._base, kind)
        with self._slots:
            results = call_milvus(
                SEARCH_OPERATIONS[kind],
                self._timeout_s,
                lambda: loaded(
                    self._client,
                    collection,
                    lambda: self._client.search(
                        collection,
                        data=[[float(v) for v in vector]],
                        limit=limit,
                        filter=expression,
                        output_fields=OUTPUT_FIELDS,
                        search_params=self._index.search_params(),
                        timeout=self._timeout_s,
                        consistency_level=self._consistency,
                    ),
                ),
            )
        return [
            _candidate(hit["entity"], str(hit["id"]), float(hit["distance"])) for hit in results[0]
        ]
