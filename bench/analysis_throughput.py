"""Realtime factor of the analysis stage, per model and as a whole, and the gain of Triton's
dynamic batching over batch size 1, measured in one run.

    uv run vip stack up triton          # or the whole stack
    uv run python bench/analysis_throughput.py [--repeat N] [VIDEO ...]

Each video is cut exactly as the chunking agent cuts it (keyframes, thumbnail strip, audio in a
temporary blob store). Then, per chunk, every local model is timed on its own (sequential
calls), and the whole local analysis is timed as the stage runs it (models called
concurrently). Realtime factor = video seconds / processing seconds (higher is better).

Dynamic batching: the same requests, one image (or text) per request, sent one after another
(the server can never batch) and then from 8 threads at once (the dynamic batcher may merge
them). The gain is the ratio of the two throughputs.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from agents.analysis.inference.ocr_faces import detect_faces, read_text
from agents.analysis.inference.shots import detect_shots
from agents.analysis.inference.speech import transcribe
from agents.analysis.inference.tags_and_slots import tag_images
from agents.analysis.local import ChunkMedia, LocalModels, LocalOptions
from agents.analysis.providers.base import KeyframeImage
from agents.chunking.cutter import CutOptions, cut_video
from agents.shared.blob_store import LocalBlobStore
from agents.shared.triton_client import TritonClient
from streams.records import ChunkCut, VideoUploaded
from vip.settings import load_settings

MEDIA = Path(__file__).resolve().parents[2] / "shared" / "media" / "video"
DEFAULT_VIDEOS = [
    "bikes.mp4",
    "car-detection.mp4",
    "testvideo.mp4",
    "id2_vcd_swwp2s.mpg",
    "video_with_failing_audio.mp4",
]


def media_of(chunk: ChunkCut, blobs: LocalBlobStore) -> ChunkMedia:
    frames = [
        KeyframeImage(time=k.time, jpeg=blobs.get(k.uri), width=k.width, height=k.height)
        for k in chunk.keyframes
    ]
    return ChunkMedia(
        frames=frames,
        strip=blobs.get(chunk.strip_uri) if chunk.strip_uri else None,
        audio=blobs.get(chunk.audio_uri) if chunk.audio_uri else None,
        start=chunk.span.start,
        end=chunk.span.end,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("videos", nargs="*", type=Path)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    settings = load_settings()
    local_clients = threading.local()

    def client() -> TritonClient:
        if not hasattr(local_clients, "client"):
            local_clients.client = TritonClient(settings.triton_url, inference_timeout_s=300)
        made: TritonClient = local_clients.client
        return made

    client().wait_for_ready(60)
    options = LocalOptions(detection_min_score=settings.detection_min_score)
    models = LocalModels(client, options, ThreadPoolExecutor(settings.analysis_threads))
    per_model: dict[str, Callable[[ChunkMedia], object]] = {
        "object_detection": lambda m: client().detect_objects([f.jpeg for f in m.frames]),
        "ocr": lambda m: read_text(client(), [f.jpeg for f in m.frames]),
        "face_detection": lambda m: detect_faces(client(), [f.jpeg for f in m.frames]),
        "image_tags": lambda m: tag_images(client(), [f.jpeg for f in m.frames]),
        "shot_boundaries": lambda m: m.strip and detect_shots(client(), m.strip),
        "speech_to_text": lambda m: m.audio and transcribe(client(), m.audio, m.start),
    }
    seconds = dict.fromkeys([*per_model, "whole stage (concurrent)"], 0.0)
    video_seconds = 0.0
    keyframes = 0
    sample_images: list[bytes] = []
    with tempfile.TemporaryDirectory(prefix="vip-bench-") as tmp:
        blobs = LocalBlobStore(Path(tmp))
        for video in args.videos or [MEDIA / name for name in DEFAULT_VIDEOS]:
            upload = VideoUploaded(
                video_id="vbench",
                source=str(video),
                size_bytes=video.stat().st_size,
                content_hash="0" * 64,
            )
            cut = cut_video(
                upload,
                video,
                blobs,
                CutOptions(
                    settings.chunk_seconds, settings.keyframe_every_s, settings.keyframe_max_side
                ),
            )
            video_seconds += cut.probe.duration
            for chunk in cut.chunks:
                media = media_of(chunk, blobs)
                keyframes += len(media.frames)
                sample_images.extend(f.jpeg for f in media.frames)
                models.analyse(media)  # warm every model on this input once
                for name, call in [
                    *per_model.items(),
                    ("whole stage (concurrent)", models.analyse),
                ]:
                    runs = []
                    for _ in range(args.repeat):
                        began = time.perf_counter()
                        call(media)
                        runs.append(time.perf_counter() - began)
                    seconds[name] += statistics.median(runs)
    print(f"{video_seconds:.1f} s of video, {keyframes} keyframes\n")
    print(f"{'model':<26} {'seconds':>8} {'x realtime':>11}")
    for name, spent in seconds.items():
        print(f"{name:<26} {spent:>8.2f} {video_seconds / spent:>11.1f}")
    sequential_sum = sum(v for k, v in seconds.items() if k != "whole stage (concurrent)")
    print(
        f"{'sum of models (sequential)':<26} {sequential_sum:>8.2f} "
        f"{video_seconds / sequential_sum:>11.1f}"
    )

    print("\nDynamic batching: one item per request, sequential vs 8 concurrent senders")
    images = (sample_images * 4)[:48]
    texts = [f"a person riding a bicycle past car number {i}" for i in range(128)]
    cases: dict[str, tuple[list[object], Callable[[object], object]]] = {
        "image_tags (48 images)": (list(images), lambda x: tag_images(client(), [x])),  # type: ignore[list-item]
        "object_detection (48 images)": (list(images), lambda x: client().detect_objects([x])),  # type: ignore[list-item]
        "text_embedding (128 texts)": (list(texts), lambda x: client().embed_texts([x])),  # type: ignore[list-item]
    }
    print(f"{'model':<30} {'batch=1 items/s':>16} {'dynamic items/s':>16} {'gain':>6}")
    for name, (items, call) in cases.items():
        call(items[0])
        began = time.perf_counter()
        for item in items:
            call(item)
        serial = len(items) / (time.perf_counter() - began)
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(call, items[:8]))
            began = time.perf_counter()
            list(pool.map(call, items))
            concurrent = len(items) / (time.perf_counter() - began)
        print(f"{name:<30} {serial:>16.1f} {concurrent:>16.1f} {concurrent / serial:>6.2f}")


if __name__ == "__main__":
    main()
