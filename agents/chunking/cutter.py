"""Turn one VideoUploaded into ChunkCut events: probe, plan, take keyframes, store them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from agents.chunking import decoder
from agents.chunking.core import plan_chunks, sample_times
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
    frames = decoder.take_keyframes(path, all_times, options.keyframe_max_side)
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
        span = ChunkSpan(
            source=upload.source,
            upload_id=upload.event_id,
            chunk_index=planned.index,
            chunk_count=len(plan),
            start=planned.start,
            end=planned.end,
            video_duration=probe.duration,
        )
        events.append(ChunkCut(video_id=upload.video_id, span=span, keyframes=tuple(refs)))
    return CutResult(probe=probe, chunks=events)
