"""Latency of the query service under load: /v1/search, /v1/search/hybrid and extractive
/v1/answer at concurrency 1 and 8, driven by Locust, over 100,000 moments.

    make up       # the dev stack: its Triton embeds; its shared-media moments are copied
    uv run python bench/query_load.py [--moments 100000] [--run-time 60] [--repeat 2]

The bench has its own Milvus Lite and Neo4j (free loopback ports, data under
``~/.cache/vip/bench/query_load/<spec>``, built once and reused while the spec is the same; see
bench/query_stores.py for how the synthetic moments and vectors are made) plus the real media's
moments copied from the dev stack, and its own `vip api` over them. The dev stack is only read.

Printed, in this order:
* quality: for queries with a known answer in the shared media, the rank of that video's first
  moment with all moments indexed and with the search limited to the real videos;
* the same-process baseline: each store call a request makes, timed alone, beside the use case
  run in this process and one HTTP request at a time;
* under load: Locust (closed loop, no think time) for each endpoint and concurrency, repeated
  and interleaved; p50/p95/p99, requests/s, and CPU seconds per request of each process.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from pymilvus import MilvusClient

from agents.shared.milvus_store import (
    GRPC_OPTIONS,
    KINDS,
    MomentCollections,
    VectorIndex,
    collection_name,
)
from agents.shared.triton_client import TritonClient
from bench.query_corpus import QUALITY_QUERIES, build_corpus, questions, search_queries
from bench.query_milvus import (
    INDEXES,
    LOAD_INDEX,
    STORES,
    Server,
    vector_store,
    wait_indexed,
)
from bench.query_profile import HYBRID_CALLS, SEARCH_CALLS, profile
from bench.query_stores import (
    BuildSpec,
    build,
    environment_note,
    fill_milvus,
    load_manifest,
    moment_vectors,
    process_cpu_s,
    real_rows,
    servers,
    wipe,
)
from tests.ports import free_port
from vip.settings import load_settings
from vip.stack.stack import manager as dev_stack_manager

LOCUSTFILE = Path(__file__).with_name("query_locustfile.py")
ENDPOINTS = ("search", "hybrid", "answer")
POOL = 3000  # distinct queries (the answer runs get half as many distinct questions)
SLICE = 500  # how far each run's start moves along the pool
CACHE_DIR = Path.home() / ".cache" / "vip" / "bench" / "query_load"
WARM_QUERIES = 400  # the profile's, never used under load


def quality(api_url: str, real_videos: dict[str, str]) -> list[dict[str, Any]]:
    """Rank (1-based, None past 10) of the expected video's first moment."""
    rows = []
    with httpx.Client(base_url=api_url, timeout=120) as http:
        for query, expected in QUALITY_QUERIES:
            row: dict[str, Any] = {"query": query, "expected": expected}
            for scope, filters in (("all", {}), ("real", {"video_ids": sorted(real_videos)})):
                for name, path in (("search", "/v1/search"), ("hybrid", "/v1/search/hybrid")):
                    body = {"query": query, "top_k": 10, "filters": filters}
                    try:
                        response = http.post(path, json=body)
                    except httpx.HTTPError as exc:
                        row[f"{name}_{scope}"] = type(exc).__name__
                        continue
                    if response.status_code != 200:
                        row[f"{name}_{scope}"] = f"HTTP {response.status_code}"
                        continue
                    hits = response.json()["data"]
                    ranks = [i + 1 for i, h in enumerate(hits) if h["source"].endswith(expected)]
                    row[f"{name}_{scope}"] = ranks[0] if ranks else None
            rows.append(row)
    return rows


def warm_up(api_url: str, queries: list[str]) -> dict[str, int]:
    """A service that has been running: collections loaded, Neo4j's page cache and query plans
    warm, connections open. Answers other than 200 are counted, not raised."""
    statuses: dict[str, int] = {}
    with httpx.Client(base_url=api_url, timeout=120) as http:
        for query in queries:
            for path, body in (
                ("/v1/search", {"query": query}),
                ("/v1/search/hybrid", {"query": query}),
                ("/v1/answer", {"question": query}),
            ):
                try:
                    code = str(http.post(path, json=body).status_code)
                except httpx.HTTPError as exc:
                    code = type(exc).__name__
                statuses[code] = statuses.get(code, 0) + 1
    return statuses


def locust_run(
    api_url: str, endpoint: str, users: int, run_time_s: int, texts: list[str], out: Path
) -> dict[str, Any]:
    queries = out.with_suffix(".json")
    queries.write_text(json.dumps(texts))
    env = {**os.environ, "QUERY_LOAD_ENDPOINT": endpoint, "QUERY_LOAD_QUERIES": str(queries)}
    command = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--users",
        str(users),
        "--spawn-rate",
        str(users),
        "--run-time",
        f"{run_time_s}s",
        "--host",
        api_url,
        "--csv",
        str(out),
        "--only-summary",
        "--loglevel",
        "WARNING",
        "--stop-timeout",
        "30",
    ]
    subprocess.run(command, env=env, check=False, timeout=run_time_s + 120)
    with out.with_name(out.name + "_stats.csv").open() as handle:
        [row] = [r for r in csv.DictReader(handle) if r["Name"] == endpoint]
    return {
        "requests": int(row["Request Count"]),
        "failures": int(row["Failure Count"]),
        "rps": float(row["Requests/s"]),
        "p50": float(row["50%"]),
        "p95": float(row["95%"]),
        "p99": float(row["99%"]),
        "max": float(row["Max Response Time"]),
    }


def load(
    args: argparse.Namespace, api_url: str, manager: Any, dev: Any, vectors: Server | None = None
) -> list[dict]:
    """Every endpoint at every concurrency, ``args.repeat`` times, interleaved. Each run walks a
    pool of distinct queries from its own starting point (the profile's are not in it); the
    bench API runs without its response cache, so a repeat would be answered the same way."""
    pools = {
        "search": search_queries(WARM_QUERIES + POOL, args.seed)[WARM_QUERIES:],
        "answer": questions(POOL // 2, args.seed),
    }
    used = {"search": 0, "answer": 0}
    results = []
    with tempfile.TemporaryDirectory(prefix="vip-query-load-") as tmp:
        for repeat in range(args.repeat):
            for users in args.concurrency:
                for endpoint in args.endpoints:
                    pool = pools["answer" if endpoint == "answer" else "search"]
                    start = used["answer" if endpoint == "answer" else "search"]
                    texts = pool[start:] + pool[:start]  # the next run starts where this one did
                    used["answer" if endpoint == "answer" else "search"] += SLICE
                    out = Path(tmp) / f"{endpoint}-{users}-{repeat}"
                    result = measured_run(
                        api_url, endpoint, users, args.run_time, texts, out, manager, dev, vectors
                    )
                    result["repeat"] = repeat
                    print(json.dumps(result), flush=True)
                    results.append(result)
    return results


def measured_run(
    api_url: str,
    endpoint: str,
    users: int,
    run_time_s: int,
    texts: list[str],
    out: Path,
    manager: Any,
    dev: Any,
    vectors: Server | None = None,
) -> dict[str, Any]:
    """One Locust run, with the load average and each process's CPU time per request.
    ``vectors``: the vector store the bench started itself, if not the manager's Milvus."""
    owners = {"api": manager, "milvus": manager, "neo4j": manager, "triton": dev}

    def process_cpu(owner: Any, name: str) -> float:
        if name == "milvus" and vectors is not None:
            return vectors.cpu_s()
        return process_cpu_s(owner, name)

    cpu = {name: process_cpu(owner, name) for name, owner in owners.items()}
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    load_before = os.getloadavg()[0]
    stats = locust_run(api_url, endpoint, users, run_time_s, texts, out)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    served = max(1, stats["requests"])
    per_request = {
        name: 1000 * (process_cpu(owners[name], name) - spent) / served
        for name, spent in cpu.items()
    }
    locust_cpu = after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime
    return {
        "endpoint": endpoint,
        "users": users,
        **stats,
        "load_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "cpu_ms_per_request": {k: round(v, 1) for k, v in per_request.items()},
        "locust_cpu_share": round(locust_cpu / run_time_s, 3),
    }


def print_tables(baseline: dict, results: list[dict], rows: list[dict]) -> None:
    print(
        "\n| query | expected | search (all) | hybrid (all) | search (real only) | "
        "hybrid (real only) |\n|---|---|---:|---:|---:|---:|"
    )
    for r in rows:
        ranks = [r[k] or ">10" for k in ("search_all", "hybrid_all", "search_real", "hybrid_real")]
        print(f"| {r['query']} | {r['expected']} | " + " | ".join(map(str, ranks)) + " |")
    print("\n| same-process call | p50 ms | p99 ms | n | error |\n|---|---:|---:|---:|---|")
    for name, st in baseline.items():
        print(f"| {name} | {st['p50']:.1f} | {st['p99']:.1f} | {st['n']} | {st.get('error', '')} |")
    # Each endpoint against the store calls it needs, made one after another in this process.
    floors = {
        "search": baseline[SEARCH_CALLS]["p50"],
        "hybrid": baseline[HYBRID_CALLS]["p50"],
        "answer": baseline[HYBRID_CALLS]["p50"],
    }
    print(
        "\n| endpoint | users | run | requests | failed | req/s | p50 ms | p95 ms | p99 ms | "
        "p50 / baseline | load avg | CPU ms/request: api, milvus, neo4j, triton* | locust CPU |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---:|")
    for r in results:
        cpu = r["cpu_ms_per_request"]
        spent = ", ".join(f"{cpu[k]:.0f}" for k in ("api", "milvus", "neo4j", "triton"))
        ratio = r["p50"] / floors[r["endpoint"]]
        print(
            f"| {r['endpoint']} | {r['users']} | {r['repeat'] + 1} | {r['requests']} | "
            f"{r['failures']} | "
            f"{r['rps']:.2f} | {r['p50']:.0f} | {r['p95']:.0f} | {r['p99']:.0f} | "
            f"{ratio:.2f} | {r['load_1m'][0]}-{r['load_1m'][1]} | {spent} | "
            f"{r['locust_cpu_share']:.0%} |"
        )


def fill_other_store(
    uri: str, spec: BuildSpec, settings: Any, dev: Any, index: VectorIndex
) -> None:
    """The Lite build's moments (the same synthetic ones, vectors made again the same way, and
    the dev stack's real ones) into another, empty vector store, in collections with ``index``
    made by agents/shared/milvus_store, flushed and indexed before the API starts."""
    began = time.perf_counter()
    corpus = build_corpus(spec.moments, spec.themes, spec.seed)
    vectors: tuple[Any, ...] = ()
    if corpus.moments:
        with TritonClient(dev.triton_url) as triton:
            vectors = moment_vectors(corpus, triton, spec.seed)
    real, _ = real_rows(dev)
    collections = MomentCollections(uri, settings.milvus_collection, 60, index=index)
    try:
        collections.ensure_collections()
    finally:
        collections.close()
    client = MilvusClient(uri=uri, timeout=600, grpc_options=GRPC_OPTIONS)
    try:
        filled = time.perf_counter()
        fill_milvus(client, corpus, vectors, real)
        flushed = time.perf_counter()
        for kind in KINDS:
            name = collection_name(settings.milvus_collection, kind)
            client.flush(name)
            wait_indexed(client, name)
            client.release_collection(name)
            client.load_collection(name)
    finally:
        client.close()
    print(
        f"  vectors made in {filled - began:.0f} s, inserted and flushed in "
        f"{flushed - filled:.0f} s, indexed and loaded in {time.perf_counter() - flushed:.0f} s",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--moments", type=int, default=100_000, help="synthetic moments")
    parser.add_argument("--themes", type=int, default=1000, help="kinds of footage")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--run-time", type=int, default=60, help="seconds per Locust run")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--endpoints", nargs="+", choices=ENDPOINTS, default=list(ENDPOINTS))
    parser.add_argument("--profile-queries", type=int, default=12)
    parser.add_argument("--warm-up", type=int, default=5, help="queries per endpoint first")
    parser.add_argument("--rebuild", action="store_true", help="build the stores again")
    parser.add_argument("--build-only", action="store_true", help="build (or check) and stop")
    parser.add_argument("--cache-dir", type=Path, default=CACHE_DIR)
    parser.add_argument(
        "--vector-store",
        choices=STORES,
        default="milvus-lite",
        help="milvus-lite: the stack's, FLAT, built once and reused; milvus-lite-2.5: Milvus "
        "Lite 2.5.1 (C++, installed by the bench under ~/.cache/vip/bench); milvus-embedded: "
        "the `milvus` package's Milvus 2.3 standalone (uv sync --inexact --group "
        "bench-milvus). Those two are started by the bench in a temporary directory and filled "
        "anew with the same moments; the graph is the Lite build's",
    )
    parser.add_argument(
        "--index",
        choices=sorted(INDEXES),
        help="the vector index of a store other than milvus-lite (default: HNSW M 16, "
        "efConstruction 200, ef 64 on milvus-embedded; FLAT on milvus-lite-2.5, which builds "
        "no index of its own), set in the API as a deployment sets it (VIP_MILVUS_INDEX)",
    )
    parser.add_argument(
        "--consistency",
        choices=["Strong", "Bounded"],
        help="the API's milvus_consistency (default: the project's, Strong)",
    )
    args = parser.parse_args()
    # The graph query names Alias, which the bench graph lacks: Neo4j says so on every call.
    logging.getLogger("neo4j.notifications").setLevel(logging.ERROR)
    dev = load_settings()
    spec = BuildSpec(args.moments, args.themes, args.seed)
    ports = {"milvus_port": free_port(), "neo4j_port": free_port(), "api_port": free_port()}
    settings = load_settings(state_dir=args.cache_dir / spec.key(), **ports)
    print(f"{spec} in {settings.state_dir}; {environment_note()}", flush=True)
    manifest = None if args.rebuild else load_manifest(settings, spec)
    if manifest is None:
        wipe(settings)
        with servers(settings, ["milvus", "neo4j"]):
            manifest = build(spec, settings, dev, dev.triton_url)
    print(f"stores: {manifest}", flush=True)
    if args.build_only:
        return
    with contextlib.ExitStack() as stack:
        vectors = None
        names, index = ["milvus", "neo4j", "api"], None
        if args.vector_store != "milvus-lite":
            index = INDEXES[args.index or LOAD_INDEX[args.vector_store]]
            vectors = stack.enter_context(
                vector_store(args.vector_store, port=ports["milvus_port"])
            )
            fill_other_store(vectors.uri, spec, settings, dev, index)
            names = ["neo4j", "api"]
            print(f"{vectors.name} {vectors.version} filled, {index}; {environment_note()}",
                  flush=True)  # fmt: skip
        manager = stack.enter_context(servers(settings, names, index, args.consistency))
        began = time.perf_counter()
        warm = search_queries(WARM_QUERIES, args.seed)
        statuses = warm_up(settings.api_url, warm[-args.warm_up :])
        print(f"warmed up in {time.perf_counter() - began:.0f} s: {statuses}", flush=True)
        began = time.perf_counter()
        rows = quality(settings.api_url, manifest["real_videos"])
        print(f"quality checked in {time.perf_counter() - began:.0f} s; {environment_note()}")
        baseline = profile(settings, warm[: args.profile_queries], settings.api_url)
        print(f"profiled; {environment_note()}", flush=True)
        results = load(args, settings.api_url, manager, dev_stack_manager(dev, echo=print), vectors)
    print_tables(baseline, results, rows)
    store = "" if index is None else f"{args.vector_store}-{index.type.lower()}-"
    store += f"{args.consistency.lower()}-" if args.consistency else ""
    record = settings.state_dir / f"results-{store}{time.strftime('%Y%m%dT%H%M%S')}.json"
    record.write_text(
        json.dumps(
            {
                "vector_store": args.vector_store,
                "index": None if index is None else vars(index),
                "consistency": args.consistency or settings.milvus_consistency,
                "manifest": manifest,
                "baseline": baseline,
                "quality": rows,
                "load": results,
            },
            indent=2,
        )
    )
    print(f"\nrecorded in {record}")


if __name__ == "__main__":
    main()
