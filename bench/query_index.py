"""Vector search and keyword-scan latency of one private vector store at 100,000 moments, FLAT
against an approximate index (HNSW; IVF_FLAT on Milvus Lite 2.5), in one process, without the
query service:

    make up    # only for its Triton, which embeds the synthetic texts and the queries
    uv run python bench/query_index.py --store milvus-lite
    uv run python bench/query_index.py --store milvus-lite-2.5 [--index ivf]
    uv sync --inexact --group bench-milvus
    uv run python bench/query_index.py --store milvus-embedded

The moments and vectors are bench/query_load.py's (bench/query_stores.py: real MiniLM
embeddings mixed per moment plus noise, clustered by theme; the scalar fields as
agents/shared/milvus_store makes them). Two text collections are made through
agents/shared/milvus_store (one FLAT, one with the approximate index: HNSW M 16 /
efConstruction 200, or IVF_FLAT nlist 1024), filled, flushed (Milvus Lite builds its faiss
HNSW only for flushed segments; the embedded Milvus builds its index after the flush, waited
for), loaded, then searched in turn as the query service searches (pool 20, Strong consistency,
the scalar fields returned): FLAT, the approximate index with its search parameters (ef 64,
nprobe 32) and with the server's defaults. recall@10 is the approximate index's against FLAT's
(exact) top 10. The keyword query is the `LIKE` expression the query service's keyword
retriever used until it moved to Neo4j's full-text index (:func:`keyword_expression`), for one
word.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pymilvus import MilvusClient

from agents.shared.milvus_store import GRPC_OPTIONS, OUTPUT_FIELDS, MilvusMoments, VectorIndex
from agents.shared.triton_client import TritonClient
from bench.query_corpus import build_corpus, search_queries
from bench.query_milvus import APPROXIMATE, FLAT, INDEXES, STORES, vector_store, wait_indexed
from bench.query_profile import percentile
from bench.query_stores import INSERT_BATCH, _row, embed_all, moment_vectors
from vip.settings import load_settings

CACHE = Path.home() / ".cache" / "vip" / "bench" / "query_index"
KEYWORDS = ("person", "bicycle", "penguin", "kitchen", "snow", "guitar")


def keyword_expression(terms: Sequence[str]) -> str:
    """Moments whose text or labels contain any of the terms. LIKE is case-sensitive, so each
    term is tried as written (lower case), capitalised and in capitals (on-screen text)."""
    clauses: list[str] = []
    for term in terms:
        for form in dict.fromkeys((term, term.capitalize(), term.upper())):
            clauses.append(f'text like "%{form}%"')
        clauses.append(f'labels like "%{term}%"')
    return "(" + " or ".join(clauses) + ")" if clauses else ""


def vectors(moments: int, themes: int, seed: int) -> tuple[Any, np.ndarray, np.ndarray]:
    corpus = build_corpus(moments, themes, seed)
    path = CACHE / f"vectors-m{moments}-t{themes}-s{seed}.npz"
    if path.is_file():
        saved = np.load(path)
        return corpus, saved["text"], saved["queries"]
    with TritonClient(load_settings().triton_url) as triton:
        text, _ = moment_vectors(corpus, triton, seed)
        queries = embed_all(triton, search_queries(400, seed)[:400])
    CACHE.mkdir(parents=True, exist_ok=True)
    np.savez(path, text=text, queries=queries)
    return corpus, text, queries


def timed(call: Any, n: int) -> tuple[dict[str, float], list[Any]]:
    spent, out = [], []
    for i in range(n):
        began = time.perf_counter()
        out.append(call(i))
        spent.append((time.perf_counter() - began) * 1000)
    return {
        "p50": round(statistics.median(spent), 1),
        "p99": round(percentile(spent, 0.99), 1),
        "n": n,
    }, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--store", choices=STORES, default="milvus-lite")
    parser.add_argument("--moments", type=int, default=100_000)
    parser.add_argument("--themes", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--keyword-queries", type=int, default=12)
    parser.add_argument("--index", choices=sorted(INDEXES), help="the approximate index")
    args = parser.parse_args()
    approximate = INDEXES[args.index or APPROXIMATE[args.store]]
    corpus, text, queries = vectors(args.moments, args.themes, args.seed)
    queries = queries[: args.queries]
    result: dict[str, Any] = {
        "store": args.store,
        "moments": len(corpus.moments),
        "approximate": vars(approximate),
    }
    with vector_store(args.store) as server:
        result["version"] = server.version
        client = MilvusClient(uri=server.uri, timeout=600, grpc_options=GRPC_OPTIONS)
        stores = {}
        for name, index in (("flat", FLAT), ("approx", approximate)):
            store = MilvusMoments(server.uri, f"bench_{name}", 60, client=client, index=index)
            store.ensure_collection()
            began = time.perf_counter()
            for start in range(0, len(corpus.moments), INSERT_BATCH):
                stop = min(start + INSERT_BATCH, len(corpus.moments))
                rows = [_row(corpus, i, text[i], "text") for i in range(start, stop)]
                client.insert(store.collection, rows)
            inserted = time.perf_counter()
            client.flush(store.collection)
            wait_indexed(client, store.collection)
            client.release_collection(store.collection)
            client.load_collection(store.collection)
            result[f"{name}_fill_s"] = round(inserted - began, 1)
            result[f"{name}_flush_index_load_s"] = round(time.perf_counter() - inserted, 1)
            result[f"{name}_index"] = client.describe_index(store.collection, "vector")
            print(json.dumps({k: v for k, v in result.items() if k.startswith(name)}, default=str),
                  flush=True)  # fmt: skip
            stores[name] = store
        cpu0 = server.cpu_s()

        def search(name: str, index: VectorIndex, consistency: str = "Strong") -> Any:
            reader = MilvusMoments(server.uri, stores[name].collection, 60, client=client,
                                   index=index, consistency=consistency)  # fmt: skip

            def call(i: int) -> list[str]:
                return [h.id for h in reader.search(queries[i].tolist(), 20)]

            return call

        defaults = VectorIndex(approximate.type)  # no search parameters: the server's
        for _ in range(3):  # warm: collections loaded, connections open
            search("flat", FLAT)(0)
            search("approx", approximate)(0)
        n = len(queries)
        result["flat_search"], exact = timed(search("flat", FLAT), n)
        result["flat_search"]["server_cpu_ms"] = round((server.cpu_s() - cpu0) * 1000 / n, 1)
        for label, index, consistency in (
            ("approx_search", approximate, "Strong"),
            ("approx_search_server_defaults", defaults, "Strong"),
            ("approx_search_bounded", approximate, "Bounded"),
        ):
            cpu0 = server.cpu_s()
            result[label], found = timed(search("approx", index, consistency), n)
            result[label]["server_cpu_ms"] = round((server.cpu_s() - cpu0) * 1000 / n, 1)
            recall = [
                len(set(a[:10]) & set(b[:10])) / 10 for a, b in zip(exact, found, strict=True)
            ]
            result[label]["recall@10"] = round(float(np.mean(recall)), 4)
        words = [KEYWORDS[i % len(KEYWORDS)] for i in range(args.keyword_queries)]
        for name in ("flat", "approx"):
            collection = stores[name].collection

            def keyword(i: int, collection: str = collection) -> int:
                try:
                    return len(client.query(collection, filter=keyword_expression([words[i]]),
                                            output_fields=["id", *OUTPUT_FIELDS],
                                            limit=1000, consistency_level="Strong"))  # fmt: skip
                except Exception as exc:  # e.g. Milvus 2.3 refuses infix LIKE
                    return f"{type(exc).__name__}: {str(exc)[:160]}"  # type: ignore[return-value]

            result[f"{name}_keyword"], counts = timed(keyword, len(words))
            result[f"{name}_keyword"]["rows"] = counts[: len(KEYWORDS)]
        client.close()
    print(json.dumps(result, indent=1, default=str))
    CACHE.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    record = CACHE / f"{args.store}-{approximate.type.lower()}-{stamp}.json"
    record.write_text(json.dumps(result, indent=1, default=str))
    print(f"recorded in {record}")


if __name__ == "__main__":
    main()
