"""Milvus adapter for moment vectors, one kind of embedding per collection.

``text`` (the moment described in words), ``visual`` (one image embedding per keyframe) and
``multimodal`` (what was seen, projected into the text space) live in ``<base>``,
``<base>_visual`` and ``<base>_multimodal``. Every row carries the same scalar fields, so one
hit type serves them all. Upserts go by primary key, so redelivery never duplicates.

Milvus Lite does not implement expression templates (``filter_params``), so filter values are
never pasted in raw: each is checked against the identifier pattern and quoted by
:func:`id_literal` before it reaches an expression.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Final, Literal, Protocol, TypeVar, get_args

from pymilvus import DataType, MilvusClient, MilvusException

from agents.shared.metrics import timed
from vip.settings import MilvusIndex, MilvusIndexType

T = TypeVar("T")

Kind = Literal["text", "visual", "multimodal"]
KINDS: Final[tuple[Kind, ...]] = get_args(Kind)
DIM = 384  # MiniLM, the text space
DIMS: Final[Mapping[Kind, int]] = {"text": DIM, "visual": 1280, "multimodal": DIM}
# The default index, chosen by recall@10 against exact search on our own embeddings
# (bench/index_recall.py, docs/benchmarks.md "Embeddings"). Milvus Lite searches rows not yet
# flushed into a sealed segment by brute force whatever the index, so the index only matters
# once a collection is flushed (at 128 MB of rows or on an explicit flush). A deployment with
# many moments sets another (Settings.milvus_index: HNSW, IVF_FLAT) and how searches use it.
METRIC: Final = "COSINE"
INDEX_TYPES: Final = get_args(MilvusIndexType)


@dataclass(frozen=True)
class VectorIndex:
    """The vector index new collections get (``build``: HNSW's ``M`` and ``efConstruction``,
    IVF's ``nlist``) and the parameters searches pass to it (``search``: HNSW's ``ef``, IVF's
    ``nprobe``). An existing collection keeps the index it was made with."""

    type: str = "FLAT"
    build: Mapping[str, int] = field(default_factory=dict)
    search: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.type not in INDEX_TYPES:
            raise ValueError(f"index type must be one of {INDEX_TYPES}, got {self.type!r}")

    def index_params(self) -> dict[str, Any]:
        params: dict[str, Any] = {"index_type": self.type, "metric_type": METRIC}
        if self.build:
            params["params"] = dict(self.build)
        return params

    def search_params(self) -> dict[str, Any]:
        params: dict[str, Any] = {"metric_type": METRIC}
        if self.search:
            params["params"] = dict(self.search)
        return params


DEFAULT_INDEX: Final = VectorIndex()
OUTPUT_FIELDS = [
    "kind",
    "video_id",
    "source",
    "chunk_index",
    "start",
    "end",
    "text",
    "labels",
    "thumbnail",
]
_SCALAR_FIELDS: Final = ("id", "vector", *OUTPUT_FIELDS)

# pymilvus pings every 10 s even on an idle channel. Milvus Lite's gRPC server keeps grpc's
# default policy (no pings without calls, at most one per 5 min), so it answers an idle client
# with GOAWAY "too_many_pings" and the next call fails. Ping only during calls, rarely.
# Reads see every write acknowledged before them: a job marked completed is searchable at
# once (the default, Bounded, may lag the last upserts).
CONSISTENCY = "Strong"

GRPC_OPTIONS = {
    "grpc.keepalive_time_ms": 300_000,
    "grpc.keepalive_permit_without_calls": False,
}

_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
_MIGRATION_BATCH: Final = 512


class UnsafeFilterValue(ValueError):
    """A filter value is not a plain identifier and will not be put into an expression."""


class CollectionMismatch(RuntimeError):
    """An existing collection has another vector size than this kind of embedding needs."""


def id_literal(value: str) -> str:
    if not _ID.match(value):
        raise UnsafeFilterValue(f"not a valid id for a filter: {value!r}")
    return json.dumps(value)


def collection_name(base: str, kind: Kind) -> str:
    """``base`` for the text vectors (the collection search has always used), else
    ``base_kind``."""
    return base if kind == "text" else f"{base}_{kind}"


def loaded(client: Any, collection: str, call: Callable[[], T]) -> T:
    """Run a read; if Milvus restarted under us and released the collection, load it again
    and retry once."""
    try:
        return call()
    except MilvusException as exc:
        if "load" not in str(exc).lower():
            raise
        client.load_collection(collection)
        return call()


@dataclass(frozen=True)
class MomentRow:
    """One vector and what it describes. ``start``/``end`` are the moment's span; a visual row
    describes one instant, its keyframe, so there ``start == end`` is the keyframe's time."""

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
    kind: Kind = "text"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "vector": [float(v) for v in self.vector]}


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
    kind: Kind = "text"


class MilvusMoments:
    """One collection of one kind. Pass ``client`` to share a connection between collections
    (it is then left open by :meth:`close`)."""

    def __init__(
        self,
        uri: str,
        collection: str,
        timeout_s: float = 10.0,
        *,
        kind: Kind = "text",
        dim: int | None = None,
        client: MilvusClient | None = None,
        index: VectorIndex = DEFAULT_INDEX,
        consistency: str = CONSISTENCY,
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        self.collection = collection
        self.kind: Kind = kind
        self.dim = DIMS[kind] if dim is None else dim
        self.timeout_s = timeout_s
        self.index, self.consistency = index, consistency
        self._owns_client = client is None
        self._client = client or MilvusClient(uri=uri, timeout=timeout_s, grpc_options=GRPC_OPTIONS)

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    def ensure_collection(self) -> None:
        """Create the collection, or load an existing one (a restarted Milvus has its
        collections released). A collection from before the ``kind`` field is rebuilt with its
        rows, which get this store's kind; a different vector size raises
        :class:`CollectionMismatch`."""
        if self._client.has_collection(self.collection):
            self._client.load_collection(self.collection)
            fields = {
                f["name"]: f for f in self._client.describe_collection(self.collection)["fields"]
            }
            dim = int(fields["vector"].get("params", {}).get("dim", self.dim))
            if dim != self.dim:
                raise CollectionMismatch(
                    f"collection {self.collection!r} holds {dim}-d vectors, not the "
                    f"{self.dim}-d {self.kind} vectors; drop it or choose another name"
                )
            if "kind" not in fields:
                self._rebuild_with_kind()
            return
        self._create()

    def _create(self) -> None:
        schema = self._client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=128)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=self.dim)
        schema.add_field("kind", DataType.VARCHAR, max_length=16)
        schema.add_field("video_id", DataType.VARCHAR, max_length=64)
        schema.add_field("source", DataType.VARCHAR, max_length=2048)
        schema.add_field("chunk_index", DataType.INT64)
        schema.add_field("start", DataType.DOUBLE)
        schema.add_field("end", DataType.DOUBLE)
        schema.add_field("text", DataType.VARCHAR, max_length=8192)
        schema.add_field("labels", DataType.VARCHAR, max_length=2048)
        schema.add_field("thumbnail", DataType.VARCHAR, max_length=2048)
        index = self._client.prepare_index_params()
        index.add_index(field_name="vector", **self.index.index_params())
        self._client.create_collection(self.collection, schema=schema, index_params=index)
        self._client.load_collection(self.collection)

    def _rebuild_with_kind(self) -> None:
        """Milvus Lite cannot add a field (AddCollectionField is unimplemented), so the rows
        are read out, the collection recreated and the rows written back. The vectors are
        derived data: should this be interrupted, replaying the analyses rebuilds them."""
        old = [c for c in _SCALAR_FIELDS if c != "kind"]
        rows = self._client.query(self.collection, filter='id != ""', output_fields=old)
        self._client.drop_collection(self.collection)
        self._create()
        for start in range(0, len(rows), _MIGRATION_BATCH):
            batch = rows[start : start + _MIGRATION_BATCH]
            self._client.upsert(
                self.collection,
                [{**{f: row[f] for f in old}, "kind": self.kind} for row in batch],
            )

    def _loaded(self, call: Callable[[], T]) -> T:
        return loaded(self._client, self.collection, call)

    @timed("milvus", "upsert")
    def upsert(self, rows: Sequence[MomentRow]) -> None:
        for row in rows:
            if row.kind != self.kind or len(row.vector) != self.dim:
                raise ValueError(
                    f"{row.id}: a {row.kind} row of {len(row.vector)} values does not fit "
                    f"{self.collection!r} ({self.kind}, {self.dim}-d)"
                )
        if rows:
            self._client.upsert(self.collection, [row.as_dict() for row in rows])

    @timed("milvus", "count")
    def count(self, video_id: str | None = None) -> int:
        expr = f"video_id == {id_literal(video_id)}" if video_id else 'id != ""'
        rows = self._loaded(
            lambda: self._client.query(self.collection, filter=expr, output_fields=["id"])
        )
        return len(rows)

    @timed("milvus", "ids")
    def ids(self, video_id: str) -> list[str]:
        expr = f"video_id == {id_literal(video_id)}"
        rows = self._loaded(
            lambda: self._client.query(self.collection, filter=expr, output_fields=["id"])
        )
        return sorted(str(row["id"]) for row in rows)

    @timed("milvus", "delete")
    def delete_video(self, video_id: str) -> None:
        self._client.delete(self.collection, filter=f"video_id == {id_literal(video_id)}")

    @timed("milvus", "search")
    def search(
        self, vector: Sequence[float], top_k: int, video_ids: Sequence[str] | None = None
    ) -> list[MomentHit]:
        expr = ""
        if video_ids:
            expr = f"video_id in [{', '.join(id_literal(v) for v in video_ids)}]"
        results = self._loaded(
            lambda: self._client.search(
                self.collection,
                data=[[float(v) for v in vector]],
                limit=top_k,
                filter=expr,
                output_fields=OUTPUT_FIELDS,
                search_params=self.index.search_params(),
                consistency_level=self.consistency,
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
                    kind=entity["kind"],
                )
            )
        return hits


class MilvusSettings(Protocol):
    """The part of vip.settings.Settings a deployment's collections are made from."""

    @property
    def milvus_uri(self) -> str: ...

    @property
    def milvus_collection(self) -> str: ...

    @property
    def milvus_consistency(self) -> str: ...

    @property
    def milvus_index(self) -> MilvusIndex: ...


def index_of(settings: MilvusSettings) -> VectorIndex:
    chosen = settings.milvus_index
    return VectorIndex(chosen.type, dict(chosen.build), dict(chosen.search))


def moment_collections(settings: MilvusSettings, timeout_s: float = 10.0) -> MomentCollections:
    """The deployment's three collections, with its index and consistency (not yet ensured)."""
    return MomentCollections(
        settings.milvus_uri,
        settings.milvus_collection,
        timeout_s,
        index=index_of(settings),
        consistency=settings.milvus_consistency,
    )


class MomentCollections:
    """The three collections of one deployment over one connection."""

    def __init__(
        self,
        uri: str,
        base: str,
        timeout_s: float = 10.0,
        *,
        index: VectorIndex = DEFAULT_INDEX,
        consistency: str = CONSISTENCY,
    ) -> None:
        self._uri, self._timeout_s = uri, timeout_s
        self._options: dict[str, Any] = {"index": index, "consistency": consistency}
        self._client = MilvusClient(uri=uri, timeout=timeout_s, grpc_options=GRPC_OPTIONS)
        self._other_sizes: dict[tuple[Kind, int], MilvusMoments] = {}
        self._lock = threading.Lock()
        self.by_kind: dict[Kind, MilvusMoments] = {
            kind: MilvusMoments(
                uri,
                collection_name(base, kind),
                timeout_s,
                kind=kind,
                client=self._client,
                **self._options,
            )
            for kind in KINDS
        }

    def __getitem__(self, kind: Kind) -> MilvusMoments:
        return self.by_kind[kind]

    def ensure_collections(self) -> None:
        for store in self.by_kind.values():
            store.ensure_collection()

    def store_for(self, kind: Kind, dim: int) -> MilvusMoments:
        """The collection for vectors of ``kind`` and ``dim``: the kind's own, or for another
        size (a joint image-text model a deployment serves) ``<name>_<dim>d``, created on
        first use."""
        store = self.by_kind[kind]
        if dim == store.dim:
            return store
        with self._lock:
            if (kind, dim) not in self._other_sizes:
                other = MilvusMoments(
                    self._uri, f"{store.collection}_{dim}d", self._timeout_s,
                    kind=kind, dim=dim, client=self._client, **self._options,
                )  # fmt: skip
                other.ensure_collection()
                self._other_sizes[(kind, dim)] = other
            return self._other_sizes[(kind, dim)]

    def upsert(self, rows: Sequence[MomentRow]) -> None:
        groups: dict[tuple[Kind, int], list[MomentRow]] = {}
        for row in rows:
            groups.setdefault((row.kind, len(row.vector)), []).append(row)
        for (kind, dim), group in groups.items():
            self.store_for(kind, dim).upsert(group)

    def close(self) -> None:
        self._client.close()
