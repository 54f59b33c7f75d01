"""A deployment's ``milvus_index`` setting on the stack's real Milvus: the collections the
project makes get that index (Milvus Lite reports neither the build parameters nor the list
count it chose), and the query side searches them with its search parameters: probing one IVF
list finds only that list's rows, probing them all every row, so ``nprobe`` reaches the
server."""

from __future__ import annotations

import time
import uuid

import numpy as np
import pytest
from pymilvus import MilvusClient

from agents.shared.milvus_store import (
    GRPC_OPTIONS,
    KINDS,
    MomentRow,
    collection_name,
    index_of,
    moment_collections,
)
from query_service.retrieval.index import MomentIndex
from vip.settings import MilvusIndex, Settings

pytestmark = pytest.mark.stack


def _rows(vectors: np.ndarray, video_id: str) -> list[MomentRow]:
    return [
        MomentRow(
            id=f"{video_id}:{i}",
            vector=vector.tolist(),
            video_id=video_id,
            source="file:///synthetic.mp4",
            chunk_index=i,
            start=10.0 * i,
            end=10.0 * i + 10,
            text=f"moment {i}",
            labels="",
            thumbnail="",
        )
        for i, vector in enumerate(vectors)
    ]


def test_the_index_setting_builds_that_index_and_searches_with_it(
    running_stack: Settings,
) -> None:
    base = f"idx_{uuid.uuid4().hex[:10]}"
    chosen = MilvusIndex(type="IVF_FLAT", build={"nlist": 16}, search={"nprobe": 1024})
    settings = running_stack.model_copy(update={"milvus_collection": base, "milvus_index": chosen})
    collections = moment_collections(settings)
    client = MilvusClient(uri=settings.milvus_uri, timeout=30, grpc_options=GRPC_OPTIONS)
    try:
        collections.ensure_collections()
        for kind in KINDS:
            described = client.describe_index(collection_name(base, kind), "vector")
            assert described["index_type"] == "IVF_FLAT", described

        rng = np.random.default_rng(3)
        vectors = rng.standard_normal((400, 384)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        collections.upsert(_rows(vectors, "v-index"))
        client.flush(base)  # the index is built for sealed segments only

        index = MomentIndex(
            client, base, index=index_of(settings), consistency=settings.milvus_consistency
        )
        one_list = MomentIndex(
            client, base, index=index_of(settings.model_copy(update={
                "milvus_index": chosen.model_copy(update={"search": {"nprobe": 1}})
            })),
        )  # fmt: skip
        query = rng.standard_normal(384).tolist()
        # Milvus Lite builds the index of a flushed segment in the background and searches it
        # by brute force until then (every row, whatever nprobe): wait for the index.
        deadline = time.monotonic() + 60
        while len(probed := one_list.nearest("text", query, 200)) == 200:
            assert time.monotonic() < deadline, "the IVF index was never used"
            time.sleep(0.2)
        assert 0 < len(probed) < 200
        assert len(index.nearest("text", query, 200)) == 200  # nprobe 1024: every list
        for probe in (7, 33):
            hits = index.nearest("text", vectors[probe].tolist(), 5)
            assert hits[0].id == f"v-index:{probe}"
            assert hits[0].score == pytest.approx(1.0, abs=1e-3)
    finally:
        for kind in KINDS:
            client.drop_collection(collection_name(base, kind))
        client.close()
        collections.close()
