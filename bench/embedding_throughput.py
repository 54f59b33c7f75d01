"""Throughput of the embedding stage, in moments per second, and its latency per moment, with
the text-only embedding (what the stage did before visual and multimodal vectors) as the
baseline in the same process.

    uv run python bench/embedding_throughput.py [--repeat N] [--triton-url HOST:PORT] [VIDEO ...]

Without ``--triton-url`` an isolated tritonserver (every model, free loopback ports) is
started; an isolated Milvus Lite always is. The videos (default: the five of
bench/analysis_throughput.py) are analysed once as the analysis stage does; then each moment
is embedded, one after another as one agent thread does, in three ways:

* text only: the description embedded (baseline; nothing written);
* all vectors: text + one visual vector per keyframe (keyframes read from the blob store) +
  the multimodal (ConSE) vector, nothing written;
* all vectors + upsert: the same, upserted into the three Milvus collections (the stage).

Class-name vectors are cached in memory after their first use; one warm-up pass fills the
cache, as a running worker's would be.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from agents.embedding.embedder import MomentEmbedder
from agents.shared.blob_store import LocalBlobStore
from agents.shared.milvus_store import MomentCollections
from streams.records import ChunkAnalysed
from tests.integration.embedding_services import (
    SHARED_MEDIA,
    analyse_videos,
    running_milvus,
    thread_clients,
    triton_at,
)
from tests.ports import free_port
from vip.settings import load_settings

DEFAULT_VIDEOS = [
    "bikes.mp4",
    "car-detection.mp4",
    "testvideo.mp4",
    "id2_vcd_swwp2s.mpg",
    "video_with_failing_audio.mp4",
]


def timed(call: Callable[[ChunkAnalysed], object], analyses: list[ChunkAnalysed], repeat: int):
    per_moment: list[float] = []
    began = time.perf_counter()
    for _ in range(repeat):
        for analysis in analyses:
            start = time.perf_counter()
            call(analysis)
            per_moment.append((time.perf_counter() - start) * 1000)
    rate = len(per_moment) / (time.perf_counter() - began)
    per_moment.sort()
    p99 = per_moment[min(len(per_moment) - 1, int(0.99 * len(per_moment)))]
    return rate, statistics.median(per_moment), p99


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("videos", nargs="*", type=Path)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--triton-url", help="use this Triton instead of an isolated one")
    args = parser.parse_args()
    videos = args.videos or [SHARED_MEDIA / "video" / name for name in DEFAULT_VIDEOS]
    with tempfile.TemporaryDirectory(prefix="vip-embed-bench-") as tmp:
        settings = load_settings(
            host="127.0.0.1", state_dir=Path(tmp) / "state", triton_http_port=free_port(),
            triton_grpc_port=free_port(), triton_metrics_port=free_port(),
        )  # fmt: skip
        blobs = LocalBlobStore(Path(tmp) / "blobs")
        with triton_at(args.triton_url, settings) as url, running_milvus(settings) as milvus:
            triton = thread_clients(url)
            triton().wait_for_ready(120, models=("image_tags", "text_embedding"))
            analyses = analyse_videos(videos, triton, blobs, settings)
            keyframes = sum(len(a.keyframes) for a in analyses)
            stores = MomentCollections(milvus.uri, "bench")
            stores.ensure_collections()
            embedder = MomentEmbedder(triton, blobs, stores)
            for analysis in analyses:  # warm: connections, model configs, class-name vectors
                embedder.embed(analysis)
            print(
                f"{len(analyses)} moments, {keyframes} keyframes, {len(embedder.labels)} class "
                f"names cached; {args.repeat} passes\n"
            )
            cases: dict[str, Callable[[ChunkAnalysed], object]] = {
                "text only (baseline)": embedder.text_only,
                "text + visual + multimodal": embedder.vectors,
                "... + upsert (the stage)": embedder.embed,
            }
            print("| embedding | moments/s | p50 ms/moment | p99 ms/moment | vs baseline |")
            print("|---|---:|---:|---:|---:|")
            baseline = None
            for name, call in cases.items():
                rate, p50, p99 = timed(call, analyses, args.repeat)
                baseline = baseline or rate
                print(f"| {name} | {rate:.1f} | {p50:.1f} | {p99:.1f} | {rate / baseline:.2f} |")
            stores.close()


if __name__ == "__main__":
    main()
