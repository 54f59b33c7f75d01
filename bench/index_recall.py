"""Recall@10 against exact search, and search latency, of every vector index type Milvus Lite
accepts, on our own embeddings of the shared media.

    uv run python bench/index_recall.py [--triton-url HOST:PORT]

Without ``--triton-url`` an isolated tritonserver (every model, free loopback ports) is
started; an isolated Milvus Lite always is. Every shared video is analysed as the analysis
stage does and embedded by the embedding stage's code (text, per-keyframe visual, multimodal
vectors); the shared images add visual vectors. For each kind and index type, the vectors go
into a fresh collection that is then flushed, so the index is really built (Milvus Lite
searches rows still in its memtable by brute force). Every stored vector is a query; the
ground truth is exact cosine top-10 in numpy. Whether an index was really built is read from
the collection's index files: a type that is accepted but has no index file was searched by
brute force.
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from pymilvus import DataType, MilvusClient

from agents.embedding.embedder import MomentEmbedder
from agents.shared.blob_store import LocalBlobStore
from agents.shared.milvus_store import GRPC_OPTIONS, KINDS, MomentRow
from tests.integration.embedding_services import (
    SHARED_MEDIA,
    analyse_videos,
    running_milvus,
    shared_videos,
    thread_clients,
    triton_at,
)
from tests.ports import free_port
from vip.settings import load_settings

INDEX_TYPES = [
    "FLAT", "HNSW", "HNSW_SQ", "IVF_FLAT", "IVF_SQ8", "IVF_PQ", "AUTOINDEX", "SCANN", "DISKANN",
]  # fmt: skip
K = 10


def build_params(index_type: str, rows: int) -> dict[str, Any]:
    if index_type.startswith("HNSW"):
        return {"M": 16, "efConstruction": 200}
    if index_type.startswith("IVF"):
        return {"nlist": max(1, int(4 * math.sqrt(rows)))}
    return {}


def search_params(index_type: str) -> dict[str, Any]:
    params: dict[str, Any] = {"metric_type": "COSINE"}
    if index_type in {"HNSW", "HNSW_SQ", "AUTOINDEX"}:
        params["params"] = {"ef": 64}
    if index_type.startswith("IVF"):
        params["params"] = {"nprobe": 8}
    return params


def measure(
    client: MilvusClient, data_dir: Path, kind: str, rows: list[MomentRow], index_type: str
) -> dict[str, Any]:
    name = f"recall_{kind}_{index_type.lower()}"
    vectors = np.array([r.vector for r in rows], np.float32)
    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=128)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=vectors.shape[1])
    index = client.prepare_index_params()
    index.add_index(
        field_name="vector",
        index_type=index_type,
        metric_type="COSINE",
        params=build_params(index_type, len(rows)),
    )
    client.create_collection(name, schema=schema, index_params=index)
    client.upsert(
        name, [{"id": r.id, "vector": v.tolist()} for r, v in zip(rows, vectors, strict=True)]
    )
    client.flush(name)
    client.load_collection(name)
    # The index is built after the flush returns; a type Milvus Lite cannot build never
    # gets an index file (the server logs why) and its segments are searched by brute force.
    give_up = time.monotonic() + 5.0
    while not (built := any((data_dir / "collections" / name).rglob("*.idx"))):
        if time.monotonic() > give_up:
            break
        time.sleep(0.1)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    exact = np.argsort(-(unit @ unit.T), axis=1, kind="stable")[:, :K]
    ids = [r.id for r in rows]
    k = min(K, len(rows))
    recalls, latencies = [], []
    for query, truth in zip(vectors, exact, strict=True):
        began = time.perf_counter()
        [hits] = client.search(
            name, data=[query.tolist()], limit=k, search_params=search_params(index_type)
        )
        latencies.append((time.perf_counter() - began) * 1000)
        found = {str(h["id"]) for h in hits}
        recalls.append(len(found & {ids[i] for i in truth[:k]}) / k)
    client.drop_collection(name)
    latencies.sort()
    return {
        "recall": statistics.mean(recalls),
        "p50": statistics.median(latencies),
        "p99": latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
        "built": built,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--triton-url", help="use this Triton instead of an isolated one")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vip-recall-") as tmp:
        settings = load_settings(
            host="127.0.0.1", state_dir=Path(tmp) / "state", triton_http_port=free_port(),
            triton_grpc_port=free_port(), triton_metrics_port=free_port(),
        )  # fmt: skip
        blobs = LocalBlobStore(Path(tmp) / "blobs")
        with triton_at(args.triton_url, settings) as url, running_milvus(settings) as milvus:
            triton = thread_clients(url)
            triton().wait_for_ready(120, models=("image_tags", "text_embedding"))
            began = time.perf_counter()
            analyses = analyse_videos(shared_videos(), triton, blobs, settings)
            embedder = MomentEmbedder(triton, blobs, None)
            rows = [row for a in analyses for row in embedder.vectors(a).rows]
            images = sorted((SHARED_MEDIA / "image").iterdir())
            features = triton().image_features([p.read_bytes() for p in images])
            for path, vector in zip(images, features, strict=True):
                rows.append(
                    MomentRow(id=f"image:{path.stem}", vector=vector.tolist(), video_id="image",
                              source=str(path), chunk_index=0, start=0, end=0, text="",
                              labels="", thumbnail="", kind="visual")
                )  # fmt: skip
            print(f"{len(analyses)} moments from {len(shared_videos())} videos, "
                  f"{time.perf_counter() - began:.0f} s to analyse and embed\n")  # fmt: skip
            client = MilvusClient(uri=milvus.uri, grpc_options=GRPC_OPTIONS)
            print(
                "| collection | vectors | dim | index | index built | recall@10 | p50 ms | p99 ms |"
            )
            print("|---|---:|---:|---|---|---:|---:|---:|")
            for kind in KINDS:
                of_kind = [r for r in rows if r.kind == kind]
                for index_type in INDEX_TYPES:
                    try:
                        m = measure(client, milvus.data_dir, kind, of_kind, index_type)
                    except Exception as error:  # the table reports it
                        print(
                            f"| {kind} | {len(of_kind)} | | {index_type} | error: {error} | | | |"
                        )
                        continue
                    print(
                        f"| {kind} | {len(of_kind)} | {len(of_kind[0].vector)} | {index_type} | "
                        f"{'yes' if m['built'] else 'no (brute force)'} | {m['recall']:.3f} | "
                        f"{m['p50']:.2f} | {m['p99']:.2f} |"
                    )
            client.close()


if __name__ == "__main__":
    main()
