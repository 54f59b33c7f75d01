"""Retrieval for the search routes: vector, graph and keyword retrievers and their fusion.

Pure parts (filters, terms, fusion) take plain values; adapters (index, graph) wrap Milvus and
Neo4j behind small protocols, with deadlines, and raise :class:`StoreUnavailable` when a store
cannot answer; :class:`~query_service.retrieval.service.SearchService` wires them for the
routers.
"""

from query_service.retrieval.errors import (
    RETRY_AFTER_S,
    ImageRejected,
    ImageTooLarge,
    RetrievalError,
    StoreTimedOut,
    StoreUnavailable,
)

__all__ = [
    "RETRY_AFTER_S",
    "ImageRejected",
    "ImageTooLarge",
    "RetrievalError",
    "StoreTimedOut",
    "StoreUnavailable",
]
