"""Locust users for bench/query_load.py: one endpoint per run, a closed loop without think time
(each user sends its next request when the last one is answered), so ``--users N`` is the
concurrency.

    QUERY_LOAD_ENDPOINT=search|hybrid|answer QUERY_LOAD_QUERIES=queries.json \
        locust -f bench/query_locustfile.py --headless --users 8 --spawn-rate 8 --run-time 60s \
        --host http://127.0.0.1:PORT --csv out/run

The queries are taken in order from the file, shared by all users, so a run repeats none while
the file lasts (response caches see no repeats); each run gets its own slice.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Iterator
from pathlib import Path

from locust import FastHttpUser, constant, task

PATHS = {"search": "/v1/search", "hybrid": "/v1/search/hybrid", "answer": "/v1/answer"}


@functools.cache
def _queries() -> Iterator[str]:
    texts: list[str] = json.loads(Path(os.environ["QUERY_LOAD_QUERIES"]).read_text())

    def cycle() -> Iterator[str]:
        while True:
            yield from texts

    return cycle()


class QueryUser(FastHttpUser):
    wait_time = constant(0)

    @task
    def ask(self) -> None:
        endpoint = os.environ.get("QUERY_LOAD_ENDPOINT", "search")
        text = next(_queries())
        body = {"question": text} if endpoint == "answer" else {"query": text, "top_k": 5}
        with self.client.post(
            PATHS[endpoint], json=body, name=endpoint, catch_response=True
        ) as response:
            if response.status_code != 200:
                response.failure(f"{response.status_code}: {(response.text or '')[:200]}")
