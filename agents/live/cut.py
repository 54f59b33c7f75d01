"""Turn one live segment's MP4 into the ChunkCut of its moment, with the chunking stage's
decoder, keyframe sampling and shot strip, every time moved onto the feed's timeline."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from agents.analysis.inference.audio import decode_audio_16k_mono
from agents.chunking import decoder
from agents.chunking.core import sample_times
from agents.chunking.cutter import CutOptions
from agents.chunking.strip import Strip, StripBuilder
from agents.live.core import segment_span
from agents.shared.blob_store import BlobStore
from streams.records import ChunkCut, KeyframeRef, LiveSegmentRecorded

__all__ = ["SegmentCut", "cut_segment"]


class SegmentCut:
    """A segment's ChunkCut and the probe of its file (for the feed's Video node)."""

    def __init__(self, chunk: ChunkCut, probe: decoder.VideoProbe) -> None:
        self.chunk = chunk
        self.probe = probe


def cut_segment(
    segment: LiveSegmentRecorded, path: Path, blobs: BlobStore, options: CutOptions
) -> SegmentCut:
    """Decode the segment once: keyframe images, every frame's thumbnail and the audio.
    Blob keys are named by feed and segment index, so a redelivered segment overwrites
    its own blobs."""
    span = segment_span(segment)
    probe = decoder.probe(path)
    offset, index, feed = segment.start, segment.segment_index, segment.video_id
    length = min(probe.duration, span.end - span.start)
    times = sample_times(0.0, length, options.keyframe_every_s, probe.keyframe_times)
    strip = StripBuilder()
    with ThreadPoolExecutor(1, "audio-decoder") as pool:
        audio_future = pool.submit(decode_audio_16k_mono, path, probe.origin)
        frames = next(
            decoder.keyframes_by_span(
                path, [times], [length], options.keyframe_max_side, strip, probe.origin
            )
        )
        audio = audio_future.result()
    refs = []
    for requested, frame in zip(times, frames, strict=True):
        at = round(offset + requested, 6)
        key = f"keyframes/{feed}/{index:05d}_{round(at * 1000):09d}.jpg"
        uri = blobs.put(key, frame.jpeg, "image/jpeg")
        refs.append(KeyframeRef(time=at, uri=uri, width=frame.width, height=frame.height))
    strip_uri = None
    local = strip.slice(0.0, length)
    if len(local):
        moved = Strip(frames=local.frames, times=local.times + offset)
        strip_uri = blobs.put(
            f"strips/{feed}/{index:05d}.npz", moved.encode(), "application/octet-stream"
        )
    audio_uri = None
    if audio.size:
        audio_uri = blobs.put(
            f"audio/{feed}/{index:05d}.f32", audio.astype("<f4").tobytes(),
            "application/octet-stream",
        )  # fmt: skip
    chunk = ChunkCut(
        video_id=feed,
        span=span,
        keyframes=tuple(refs),
        strip_uri=strip_uri,
        audio_uri=audio_uri,
    )
    return SegmentCut(chunk, probe)
