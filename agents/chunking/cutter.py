"""Turn one VideoUploaded into ChunkCut events: probe, plan, take keyframes, store them."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from agents.analysis.inference.audio import SAMPLE_RATE, decode_audio_16k_mono
from agents.chunking import decoder
from agents.chunking.core import plan_chunks, sample_times
from agents.chunking.strip import StripBuilder
from agents.shared.blob_store import BlobStore
from streams.records import ChunkCut, ChunkSpan, KeyframeRef, VideoUploaded


@dataclass(frozen=True)
class CutOptions:
    chunk_seconds: float
    keyframe_every_s: float
    keyframe_max_side: int


@dataclass(frozen=True)
class CutResult:
    probe: decoder.VideoProbe
    chunks: list[ChunkCut]


def cut_video(
    upload: VideoUploaded, path: Path, blobs: BlobStore, options: CutOptions
) -> CutResult:
    probe = decoder.probe(path)
    target = upload.chunk_seconds or options.chunk_seconds
    plan = plan_chunks(probe.keyframe_times, probe.duration, target)
    times_per_chunk = [
        sample_times(c.start, c.end, options.keyframe_every_s, probe.keyframe_times) for c in plan
    ]
    all_times = [t for times in times_per_chunk for t in times]
    strip = StripBuilder()
    # The audio decodes on a second thread while the video decodes (both release the GIL),
    # on the video's clock: sample 0 is at the first frame.
    with ThreadPoolExecutor(1, "audio-decoder") as pool:
        audio_future = pool.submit(decode_audio_16k_mono, path, probe.origin)
        frames = decoder.take_keyframes(
            path, all_times, options.keyframe_max_side, strip, origin=probe.origin
        )
        audio = audio_future.result()
    events: list[ChunkCut] = []
    cursor = 0
    for planned, times in zip(plan, times_per_chunk, strict=True):
        refs = []
        for requested, frame in zip(times, frames[cursor : cursor + len(times)], strict=True):
            key = (
                f"keyframes/{upload.video_id}/{planned.index:05d}_{round(requested * 1000):09d}.jpg"
            )
            uri = blobs.put(key, frame.jpeg, "image/jpeg")
            refs.append(
                KeyframeRef(time=requested, uri=uri, width=frame.width, height=frame.height)
            )
        cursor += len(times)
        strip_uri = None
        chunk_strip = strip.slice(planned.start, planned.end)
        if len(chunk_strip):
            strip_uri = blobs.put(
                f"strips/{upload.video_id}/{planned.index:05d}.npz",
                chunk_strip.encode(),
                "application/octet-stream",
            )
        strip.discard_before(planned.end)
        audio_uri = None
        samples = audio[round(planned.start * SAMPLE_RATE) : round(planned.end * SAMPLE_RATE)]
        if samples.size:
            audio_uri = blobs.put(
                f"audio/{upload.video_id}/{planned.index:05d}.f32",
                samples.astype("<f4").tobytes(),
                "application/octet-stream",
            )
        span = ChunkSpan(
            source=upload.source,
            upload_id=upload.event_id,
            chunk_index=planned.index,
            chunk_count=len(plan),
            start=planned.start,
            end=planned.end,
            video_duration=probe.duration,
        )
        events.append(
            ChunkCut(
                video_id=upload.video_id,
                span=span,
                keyframes=tuple(refs),
                strip_uri=strip_uri,
                audio_uri=audio_uri,
                providers=upload.providers,
            )
        )
    return CutResult(probe=probe, chunks=events)
