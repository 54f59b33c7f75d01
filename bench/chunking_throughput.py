"""Chunking throughput as a ratio against raw PyAV decoding of the same files, in one process.

    uv run python bench/chunking_throughput.py [--repeat N] [VIDEO ...]

For each video the baseline decodes every frame with PyAV (no conversion), and the chunker
runs exactly as the agent does (probe, plan, take keyframes as JPEG, write them to a local
blob store). Runs alternate so that both see the same cache and load. The ratio is
chunker throughput / decode throughput (>1 means the chunker is faster than a plain decode).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import av

from agents.chunking.cutter import CutOptions, cut_video
from agents.shared.blob_store import LocalBlobStore
from streams.records import VideoUploaded

MEDIA = Path(__file__).resolve().parents[2] / "shared" / "media" / "video"
DEFAULT_VIDEOS = [
    "car-detection.mp4",
    "big_buck_bunny_0_30.webm",
    "testvideo.mp4",
    "one-by-one-person-detection.mp4",
    "bikes.mp4",
]


def raw_decode(path: Path) -> int:
    frames = 0
    with av.open(str(path)) as container:
        for _ in container.decode(video=0):
            frames += 1
    return frames


def chunk(path: Path, blobs: LocalBlobStore, options: CutOptions) -> int:
    upload = VideoUploaded(
        video_id="vbench", source=str(path), size_bytes=path.stat().st_size, content_hash="0" * 64
    )
    return len(cut_video(upload, path, blobs, options).chunks)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("videos", nargs="*", type=Path)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    videos = args.videos or [MEDIA / name for name in DEFAULT_VIDEOS]
    options = CutOptions(chunk_seconds=10.0, keyframe_every_s=2.0, keyframe_max_side=640)
    print(
        f"{'video':<36} {'frames':>6} {'decode s':>9} {'chunk s':>8} {'ratio':>6} "
        f"{'p50 s':>6} {'p99 s':>6}"
    )
    total_raw = total_chunk = 0.0
    with tempfile.TemporaryDirectory(prefix="vip-bench-") as tmp:
        blobs = LocalBlobStore(Path(tmp))
        for video in videos:
            raw_decode(video)  # warm the page cache and codec tables once
            raw_times, chunk_times = [], []
            frames = 0
            for _ in range(args.repeat):
                began = time.perf_counter()
                frames = raw_decode(video)
                raw_times.append(time.perf_counter() - began)
                began = time.perf_counter()
                chunk(video, blobs, options)
                chunk_times.append(time.perf_counter() - began)
            raw, cut = statistics.median(raw_times), statistics.median(chunk_times)
            total_raw += raw
            total_chunk += cut
            print(
                f"{video.name:<36} {frames:>6} {raw:>9.3f} {cut:>8.3f} {raw / cut:>6.2f} "
                f"{percentile(chunk_times, 0.5):>6.3f} {percentile(chunk_times, 0.99):>6.3f}"
            )
    print(
        f"{'all (sum of medians)':<36} {'':>6} {total_raw:>9.3f} {total_chunk:>8.3f} "
        f"{total_raw / total_chunk:>6.2f}"
    )


if __name__ == "__main__":
    main()
