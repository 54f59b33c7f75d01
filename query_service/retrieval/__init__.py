"""Retrieval for the search routes: vector, graph and keyword retrievers and their fusion.

Pure parts (filters, terms, fusion) take plain values; adapters (index, graph) wrap Milvus and
Neo4j behind small protocols; :class:`~query_service.retrieval.service.SearchService` wires
them for the routers.
"""

from query_service.retrieval.errors import ImageRejected, ImageTooLarge, RetrievalError

__all__ = ["ImageRejected", "ImageTooLarge", "RetrievalError"]
