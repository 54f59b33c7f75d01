"""Upload-to-searchable realtime factor of the whole pipeline on the running local stack.

    make up
    uv run python bench/ingest_realtime.py [VIDEO ...]

Each clip is remuxed to fresh bytes (a new content hash, so nothing is answered from the
analysis cache), uploaded with `vip upload`'s own code, and timed until its job is completed
in the query API. First one untimed upload of the first clip, whose time is printed apart: the
first upload after the stack starts pays for cold caches (Triton's first inference per model,
Neo4j's query plans and page cache; 13.5 s against 3.3 s for bikes.mp4 on 2026-11-29). Then
two runs in the same process:

* one at a time: per-video latency on an idle, warm stack;
* together: every clip published at once, timed until the last is searchable (throughput,
  with the stages working on different videos at the same time).

Realtime factor = video seconds / seconds from publish to searchable.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from tests.integration.media_copies import unique_copy
from vip.demo import wait_for_video
from vip.settings import Settings, load_settings
from vip.upload import build_event, publish

MEDIA = Path(__file__).resolve().parents[2] / "shared" / "media" / "video"
POLL_S = 0.2  # the job status is polled this often (the API reads Neo4j each time)
DEFAULT_VIDEOS = [
    "bikes.mp4",
    "car-detection.mp4",
    "testvideo.mp4",
    "bottle-detection.mp4",
    "video_with_failing_audio.mp4",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("videos", nargs="*", type=Path)
    args = parser.parse_args()
    settings = load_settings()
    videos = args.videos or [MEDIA / name for name in DEFAULT_VIDEOS]
    with tempfile.TemporaryDirectory(prefix="vip-ingest-") as tmp:
        name, _, spent, status = _one(videos[0], unique_copy(videos[0], Path(tmp)), settings)
        print(f"warm-up upload (not counted): {name} in {spent:.2f} s, {status}\n")
        print("one at a time")
        _report([_one(video, unique_copy(video, Path(tmp)), settings) for video in videos])
        fresh = [unique_copy(video, Path(tmp)) for video in videos]
        print("\ntogether (all published at once)")
        began = time.perf_counter()
        events = []
        for copy in fresh:
            event = build_event(str(copy), settings)
            publish(event, settings)
            events.append(event)
        details = [wait_for_video(settings, e.video_id, e.event_id, 600, POLL_S) for e in events]
        wall = time.perf_counter() - began
        total = sum(float(d["duration"]) for d in details)  # type: ignore[arg-type]
        statuses = {str(d["status"]) for d in details}
        print(
            f"{len(details)} videos, {total:.1f} s of video searchable in {wall:.2f} s: "
            f"{total / wall:.1f}x realtime ({', '.join(sorted(statuses))})"
        )


def _one(video: Path, fresh: Path, settings: Settings) -> tuple[str, float, float, object]:
    event = build_event(str(fresh), settings)
    began = time.perf_counter()
    publish(event, settings)
    detail = wait_for_video(settings, event.video_id, event.event_id, 600, POLL_S)
    spent = time.perf_counter() - began
    return video.name, float(detail["duration"]), spent, detail["status"]  # type: ignore[arg-type]


def _report(rows: list[tuple[str, float, float, object]]) -> None:
    print(f"{'video':<32} {'video s':>8} {'ingest s':>9} {'x realtime':>11}  status")
    for name, duration, spent, status in rows:
        print(f"{name:<32} {duration:>8.1f} {spent:>9.2f} {duration / spent:>11.1f}  {status}")
    total_video = sum(r[1] for r in rows)
    total_spent = sum(r[2] for r in rows)
    print(f"{'all':<32} {total_video:>8.1f} {total_spent:>9.2f} {total_video / total_spent:>11.1f}")
    print(
        f"per-video latency p50 {statistics.median(r[2] for r in rows):.2f}s, "
        f"max {max(r[2] for r in rows):.2f}s"
    )


if __name__ == "__main__":
    main()
