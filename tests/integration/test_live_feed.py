"""Live feeds on the running stack: a file played at real-time pace becomes searchable while
it plays, and a source cut mid-feed resumes without duplicating or losing a moment."""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from agents.shared.graph_store import Neo4jGraph
from agents.shared.milvus_store import MilvusMoments
from streams.records import LiveSegmentRecorded
from tests.integration.conftest import poll
from vip.live.publisher import FeedSpec, FeedStats, run_feed
from vip.live.timeline import Backoff
from vip.settings import Settings

pytestmark = pytest.mark.stack

FEED_DEADLINE_S = 80.0
BIKES_SEGMENTS_2S = [(0.0, 3.04), (3.04, 5.48), (5.48, 7.48), (7.48, 10.0)]


class FeedThread:
    """run_feed on a thread, with every published record kept in order."""

    def __init__(self, settings: Settings, spec: FeedSpec, backoff: Backoff | None = None):
        self.spec = spec
        self.published: list[LiveSegmentRecorded] = []
        self.published_at: dict[int, float] = {}
        self.stop = threading.Event()
        self.stats: FeedStats | None = None

        def seen(record: LiveSegmentRecorded) -> None:
            self.published.append(record)
            self.published_at.setdefault(record.segment_index, time.monotonic())

        def run() -> None:
            self.stats = run_feed(settings, spec, self.stop, backoff=backoff, on_segment=seen)

        self._thread = threading.Thread(target=run, name=f"feed-{spec.feed_id}", daemon=True)

    def __enter__(self) -> FeedThread:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self._thread.join(30)

    def running(self) -> bool:
        return self._thread.is_alive()

    def wait(self, deadline_s: float) -> FeedStats:
        self._thread.join(deadline_s)
        assert not self._thread.is_alive(), f"feed {self.spec.feed_id} still running"
        assert self.stats is not None
        return self.stats


class CuttableServer:
    """Serves one file over HTTP (with Range requests, as players seek) at about 1.5x its
    media rate, so a player never holds much of it; ``cut()`` drops every open connection and
    answers 503 until ``restore()``."""

    def __init__(self, path: Path, media_seconds: float) -> None:
        self.data = path.read_bytes()
        self.bytes_per_s = len(self.data) / media_seconds * 1.5
        self.down = threading.Event()
        self.refused = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if server.down.is_set():
                    server.refused += 1
                    self.send_error(503, "cut")
                    return
                start, end = 0, len(server.data) - 1
                wanted = re.match(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
                if wanted:
                    start = int(wanted[1])
                    end = int(wanted[2]) if wanted[2] else end
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{end}/{len(server.data)}")
                else:
                    self.send_response(200)
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Type", "video/mp4")
                self.send_header("Content-Length", str(end - start + 1))
                self.end_headers()
                block = 8192
                for offset in range(start, end + 1, block):
                    if server.down.wait(block / server.bytes_per_s):
                        self.close_connection = True
                        return  # the connection drops mid-body
                    self.wfile.write(server.data[offset : min(offset + block, end + 1)])

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/bikes.mp4"

    def cut(self) -> None:
        self.down.set()

    def restore(self) -> None:
        self.down.clear()

    def __enter__(self) -> CuttableServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


@pytest.fixture
def stores(running_stack: Settings) -> Iterator[tuple[MilvusMoments, Neo4jGraph]]:
    moments = MilvusMoments(running_stack.milvus_uri, running_stack.milvus_collection)
    graph = Neo4jGraph(running_stack.neo4j_uri)
    try:
        yield moments, graph
    finally:
        moments.close()
        graph.close()


def feed_id(name: str) -> str:
    return f"test-live-{name}-{uuid.uuid4().hex[:8]}"


def test_a_real_time_feed_is_searchable_while_it_plays(
    running_stack: Settings, api: httpx.Client, media: Path
):
    # 30 s with a keyframe every 4.8 s: bikes.mp4 (10 s) ends before its first moment is
    # searchable when the two cores are busy (7 s idle, over 17 s measured under load).
    video = media / "video" / "car-detection.mp4"
    spec = FeedSpec(feed_id("play"), str(video), segment_seconds=4.0)

    def first_moment() -> dict[str, Any] | None:
        response = api.post(
            "/v1/search",
            json={"query": "a car on the road", "top_k": 10, "video_ids": [spec.feed_id]},
        )
        assert response.status_code == 200, response.text
        data: list[dict[str, Any]] = response.json()["data"]
        return data[0] if data else None

    with FeedThread(running_stack, spec) as feed:
        moment = poll(first_moment, FEED_DEADLINE_S, f"a moment of {spec.feed_id}", 0.25)
        searchable_at = time.monotonic()
        still_running = feed.running()
        stats = feed.wait(FEED_DEADLINE_S)

    assert still_running, "the feed had ended before its first moment was searchable"
    index = int(moment["id"].rsplit(":", 1)[1])
    published = next(r for r in feed.published if r.segment_index == index)
    assert moment["video_id"] == spec.feed_id
    assert (moment["start"], moment["end"]) == (published.start, published.end)
    latency = searchable_at - feed.published_at[index]
    print(f"segment {index} searchable {latency:.1f}s after it was published")
    assert (stats.ended, stats.segments_published, stats.reconnects) == ("source-ended", 7, 0)
    assert [(r.start, r.end) for r in feed.published] == [
        (0.0, 4.8), (4.8, 9.6), (9.6, 14.4), (14.4, 19.2), (19.2, 24.0), (24.0, 28.8),
        (28.8, 30.16),
    ]  # fmt: skip


def test_a_cut_source_resumes_with_one_moment_per_segment(
    running_stack: Settings,
    api: httpx.Client,
    media: Path,
    stores: tuple[MilvusMoments, Neo4jGraph],
):
    moments, graph = stores
    with CuttableServer(media / "video" / "bikes.mp4", media_seconds=10.0) as server:
        spec = FeedSpec(feed_id("cut"), server.url, segment_seconds=2.0)
        with FeedThread(running_stack, spec, Backoff(base_s=0.5, max_s=2.0)) as feed:
            poll(lambda: feed.published, FEED_DEADLINE_S, "the first segment", 0.1)
            server.cut()
            poll(lambda: server.refused >= 1, 30, "a reconnect refused while the source is cut")
            server.restore()
            stats = feed.wait(FEED_DEADLINE_S)

    assert stats.ended == "source-ended" and stats.reconnects >= 1, stats
    indexes = sorted({r.segment_index for r in feed.published})
    assert indexes == [0, 1, 2, 3]
    spans = {r.segment_index: (r.start, r.end) for r in feed.published}
    assert [spans[i] for i in indexes] == BIKES_SEGMENTS_2S
    expected = [f"{spec.feed_id}:{i:05d}" for i in indexes]
    poll(lambda: moments.count(spec.feed_id) == 4, FEED_DEADLINE_S, "4 moments in Milvus")
    assert sorted(moments.ids(spec.feed_id)) == expected
    poll(
        lambda: graph.counts(spec.feed_id)["chunks"] == 4,
        FEED_DEADLINE_S,
        "4 chunks in Neo4j",
    )
    assert graph.counts(spec.feed_id) == {"chunks": 4, "next": 3}
    video = poll(
        lambda: (
            (api.get(f"/v1/videos/{spec.feed_id}").json() or {}).get("status") == "completed"
            and api.get(f"/v1/videos/{spec.feed_id}").json()
        ),
        FEED_DEADLINE_S,
        "the feed's video to complete",
    )
    assert [(c["start"], c["end"]) for c in video["chunks"]] == BIKES_SEGMENTS_2S
