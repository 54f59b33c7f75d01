"""Milvus adapter for moment vectors. Upserts by primary key, so redelivery never duplicates.

Milvus Lite does not implement expression templates (``filter_params``), so filter values are
never pasted in raw: each is checked against the identifier pattern and quoted by
:func:`id_literal` before it reaches an expression.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from pymilvus import DataType, MilvusClient, MilvusException

T = TypeVar("T")

DIM = 384
# FLAT (exact search): Milvus Lite measured HNSW recall at 0.36 on random vectors; until
# recall is measured on our own embeddings at scale, exact search is the honest default.
INDEX = {"index_type": "FLAT", "metric_type": "COSINE"}
OUTPUT_FIELDS = ["video_id", "source", "chunk_index", "start", "end", "text", "labels", "thumbnail"]


# pymilvus pings every 10 s even on an idle channel. Milvus Lite's gRPC server keeps grpc's
# default policy (no pings without calls, at most one per 5 min), so it answers an idle client
# with GOAWAY "too_many_pings" and the next call fails. Ping only during calls, rarely.
GRPC_OPTIONS = {
    "grpc.keepalive_time_ms": 300_000,
    "grpc.keepalive_permit_without_calls": False,
}

_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")


class UnsafeFilterValue(ValueError):
    """A filter value is not a plain identifier and will not be put into an expression."""


def id_literal(value: str) -> str:
    if not _ID.match(value):
        raise UnsafeFilterValue(f"not a valid id for a filter: {value!r}")
    return json.dumps(value)


@dataclass(frozen=True)
class MomentRow:
    id: str
    vector: Sequence[float]
    video_id: str
    source: str
    chunk_index: int
    start: float
    end: float
    text: str
    labels: str
    thumbnail: str

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "vector": list(self.vector)}


@dataclass(frozen=True)
class MomentHit:
    id: str
    score: float
    video_id: str
    source: str
    chunk_index: int
    start: float
    end: float
    text: str
    labels: tuple[str, ...]
    thumbnail: str


class MilvusMoments:
    def __init__(self, uri: str, collection: str, timeout_s: float = 10.0) -> None:
        self.collection = collection
        self.timeout_s = timeout_s
        self._client = MilvusClient(uri=uri, timeout=timeout_s, grpc_options=GRPC_OPTIONS)

    def close(self) -> None:
        self._client.close()

    def ensure_collection(self) -> None:
        if self._client.has_collection(self.collection):
            # A restarted Milvus (Lite or standalone) has its collections released.
            self._client.load_collection(self.collection)
            return
        schema = self._client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=128)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=DIM)
        schema.add_field("video_id", DataType.VARCHAR, max_length=64)
        schema.add_field("source", DataType.VARCHAR, max_length=2048)
        schema.add_field("chunk_index", DataType.INT64)
        schema.add_field("start", DataType.DOUBLE)
        schema.add_field("end", DataType.DOUBLE)
        schema.add_field("text", DataType.VARCHAR, max_length=8192)
        schema.add_field("labels", DataType.VARCHAR, max_length=2048)
        schema.add_field("thumbnail", DataType.VARCHAR, max_length=2048)
        index = self._client.prepare_index_params()
        index.add_index(field_name="vector", **INDEX)
        self._client.create_collection(self.collection, schema=schema, index_params=index)
        self._client.load_collection(self.collection)

    def _loaded(self, call: Callable[[], T]) -> T:
        """Run a read; if Milvus restarted under us and released the collection, load it
        again and retry once."""
        try:
            return call()
        except MilvusException as exc:
            if "load" not in str(exc).lower():
                raise
            self._client.load_collection(self.collection)
            return call()

    def upsert(self, rows: Sequence[MomentRow]) -> None:
        if rows:
            self._client.upsert(self.collection, [row.as_dict() for row in rows])

    def count(self, video_id: str | None = None) -> int:
        expr = f"video_id == {id_literal(video_id)}" if video_id else 'id != ""'
        rows = self._loaded(
            lambda: self._client.query(self.collection, filter=expr, output_fields=["id"])
        )
        return len(rows)

    def search(
        self, vector: Sequence[float], top_k: int, video_ids: Sequence[str] | None = None
    ) -> list[MomentHit]:
        expr = ""
        if video_ids:
            expr = f"video_id in [{', '.join(id_literal(v) for v in video_ids)}]"
        results = self._loaded(
            lambda: self._client.search(
                self.collection,
                data=[list(vector)],
                limit=top_k,
                filter=expr,
                output_fields=OUTPUT_FIELDS,
                search_params={"metric_type": "COSINE"},
            )
        )
        hits = []
        for hit in results[0]:
            entity = hit["entity"]
            hits.append(
                MomentHit(
                    id=str(hit["id"]),
                    score=float(hit["distance"]),
                    video_id=entity["video_id"],
                    source=entity["source"],
                    chunk_index=int(entity["chunk_index"]),
                    start=float(entity["start"]),
                    end=float(entity["end"]),
                    text=entity["text"],
                    labels=tuple(label for label in entity["labels"].split(",") if label),
                    thumbnail=entity["thumbnail"],
                )
            )
        return hits
