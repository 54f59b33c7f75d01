"""The graph retriever's statement against an earlier revision's, on the bench's 100k graph.

    uv run python bench/query_load.py --build-only       # the bench stores, built once
    uv run python bench/graph_retriever_ab.py --against 0774898 [--queries 40]

Both versions of ``query_service/retrieval/graph.py`` (this tree's and ``git show REV:…``) run
in this process against the bench's own Neo4j (bench/query_stores.py), each query alternately
with one then the other, for two rounds; the second (warm) round is reported: p50, p99 and
mean per version and their ratio, with and without a time-window filter, and how many queries
gave the same moments in the same order.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

from neo4j import GraphDatabase

from bench.query_corpus import search_queries
from bench.query_profile import percentile
from bench.query_stores import BuildSpec, load_manifest, servers
from query_service.retrieval import graph as current
from query_service.retrieval.terms import entity_names
from query_service.schemas import SearchFilters, TimeRange
from tests.ports import free_port
from vip.settings import load_settings

CACHE = Path.home() / ".cache" / "vip" / "bench" / "query_load"
POOL = 20


def module_at(revision: str) -> ModuleType:
    source = subprocess.run(
        ["git", "show", f"{revision}:query_service/retrieval/graph.py"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    path = Path(tempfile.mkdtemp()) / "graph_before.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("graph_before", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--against", required=True, help="git revision of the 'before' statement")
    parser.add_argument("--queries", type=int, default=40)
    parser.add_argument("--moments", type=int, default=100_000)
    args = parser.parse_args()
    logging.getLogger("neo4j.notifications").setLevel(logging.ERROR)
    spec = BuildSpec(args.moments, 1000, 7)
    settings = load_settings(state_dir=CACHE / spec.key(), neo4j_port=free_port(),
                             milvus_port=free_port(), api_port=free_port())  # fmt: skip
    if load_manifest(settings, spec) is None:
        sys.exit(f"no bench stores for {spec}: run bench/query_load.py --build-only first")
    before = module_at(args.against)
    queries = [entity_names(q) for q in search_queries(args.queries, spec.seed)]
    with servers(settings, ["neo4j"]):
        driver = GraphDatabase.driver(settings.neo4j_uri)
        versions = {
            "before": before.GraphMoments(driver, 30.0),
            "after": current.GraphMoments(driver, 30.0),
        }
        for filters in (SearchFilters(), SearchFilters(time_range=TimeRange(start=0, end=30))):
            times: dict[str, list[float]] = {name: [] for name in versions}
            same = 0
            for warm in (False, True):
                for i, names in enumerate(queries):
                    order = list(versions) if i % 2 == 0 else list(reversed(versions))
                    found = {}
                    for name in order:
                        began = time.perf_counter()
                        found[name] = [m.id for m in versions[name].moments(names, filters, POOL)]
                        if warm:
                            times[name].append((time.perf_counter() - began) * 1000)
                    same += warm and found["before"] == found["after"]
            label = "time window" if filters.time_range else "no filter"
            for name, spent in times.items():
                p50, p99 = statistics.median(spent), percentile(spent, 0.99)
                print(f"{label:11} {name:6}: p50 {p50:6.1f} ms  p99 {p99:6.1f} ms  "
                      f"mean {statistics.mean(spent):6.1f}")  # fmt: skip
            ratio = statistics.median(times["after"]) / statistics.median(times["before"])
            print(f"{label:11} after/before p50: {ratio:.2f}; same moments: {same}/{len(queries)}")
        driver.close()


if __name__ == "__main__":
    main()
