"""`vip api` for bench/query_load.py with other vector search parameters: ``python -m
bench.query_api`` sets agents/shared/milvus_store.SEARCH_PARAMS from the JSON in
VIP_BENCH_SEARCH_PARAMS (e.g. HNSW's ef) before the query service imports it, then runs
``vip api``. The project has no setting for them; this is how a bench measures one."""

from __future__ import annotations

import json
import os
import sys

from agents.shared import milvus_store

params = os.environ.get("VIP_BENCH_SEARCH_PARAMS")
if params:
    milvus_store.SEARCH_PARAMS = json.loads(params)  # type: ignore[misc]

from vip.cli import main  # noqa: E402  (after the parameters are set)

sys.argv = [sys.argv[0], "api"]
main()
