"""The main job: stack up, one real clip ingested end to end, one search answered."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from vip.settings import Settings
from vip.stack import stack
from vip.upload import build_event, publish


def wait_for_video(
    settings: Settings, video_id: str, upload_id: str, timeout_s: float, poll_s: float = 0.5
) -> dict[str, object]:
    """Poll the query API with a deadline until this upload's job completes or fails (a
    re-upload of known bytes is processed again, so an earlier upload's status won't do)."""
    deadline = time.monotonic() + timeout_s
    last: dict[str, object] = {}
    while time.monotonic() < deadline:
        response = httpx.get(f"{settings.api_url}/v1/videos/{video_id}", timeout=10)
        if response.status_code == 200:
            last = response.json()
            if last["upload_id"] == upload_id and last["status"] in {"completed", "failed"}:
                return last
        time.sleep(poll_s)
    raise TimeoutError(f"video {video_id} not indexed within {timeout_s:.0f}s (last: {last})")


def run_demo(settings: Settings, video: Path, query: str, timeout_s: float) -> None:
    started = time.monotonic()
    stack.up(settings)
    print(f"stack ready in {time.monotonic() - started:.1f}s")
    event = build_event(str(video), settings)
    publish(event, settings)
    print(f"uploaded {video} as {event.video_id}")
    ingest_started = time.monotonic()
    detail = wait_for_video(settings, event.video_id, event.event_id, timeout_s)
    if detail["status"] != "completed":
        raise RuntimeError(f"ingestion failed: {detail.get('error')}")
    print(
        f"indexed {detail['indexed_chunks']} chunk(s) of {detail['duration']:.2f}s video in "
        f"{time.monotonic() - ingest_started:.1f}s"
    )
    response = httpx.post(
        f"{settings.api_url}/v1/search",
        json={"query": query, "top_k": 3, "video_ids": [event.video_id]},
        timeout=30,
    )
    response.raise_for_status()
    body = response.json()
    print(f'search "{query}": {body["count"]} result(s)')
    for hit in body["data"]:
        print(
            f"  {hit['score']:.3f}  {hit['start']:6.2f}s - {hit['end']:6.2f}s  "
            f"{hit['source']}  | {hit['text']}"
        )
    if not body["data"]:
        raise RuntimeError("search returned no moments")
