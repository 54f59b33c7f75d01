"""Turn one VideoUploaded into ChunkCut events: probe, plan, take keyframes, store them.

:class:`VideoCut` yields each chunk as soon as the decoder has passed its end, so the
analysis of the first chunks overlaps with decoding the rest of the video.
"""

from __future__ import annotations

from collections.abc import Generator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from agents.analysis.inference.audio import SAMPLE_RATE, decode_audio_16k_mono
from agents.chunking import decoder
from agents.chunking.core import PlannedChunk, plan_chunks, sample_times
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


class VideoCut:
    """One video's cut: probed and planned on construction (cheap, demux only); the decoding
    happens while :meth:`chunks` is iterated."""

    def __init__(
        self, upload: VideoUploaded, path: Path, blobs: BlobStore, options: CutOptions
    ) -> None:
        self.upload = upload
        self.path = path
        self.probe = decoder.probe(path)
        self._blobs = blobs
        self._options = options
        target = upload.chunk_seconds or options.chunk_seconds
        self.plan = plan_chunks(self.probe.keyframe_times, self.probe.duration, target)

    def chunks(self) -> Generator[ChunkCut]:
        probe, options = self.probe, self._options
        times_per_chunk = [
            sample_times(c.start, c.end, options.keyframe_every_s, probe.keyframe_times)
            for c in self.plan
        ]
        strip = StripBuilder()
        # The audio decodes on a second thread while the video decodes (both release the GIL),
        # on the video's clock: sample 0 is at the first frame.
        with ThreadPoolExecutor(1, "audio-decoder") as pool:
            audio_future = pool.submit(decode_audio_16k_mono, self.path, probe.origin)
            groups = decoder.keyframes_by_span(
                self.path,
                times_per_chunk,
                [c.end for c in self.plan],
                options.keyframe_max_side,
                strip,
                origin=probe.origin,
            )
            for planned, times, frames in zip(self.plan, times_per_chunk, groups, strict=True):
                audio = audio_future.result()
                yield self._store(planned, times, frames, strip, audio)

    def _store(
        self,
        planned: PlannedChunk,
        times: list[float],
        frames: list[decoder.Keyframe],
        strip: StripBuilder,
        audio: np.ndarray,
    ) -> ChunkCut:
        upload, blobs = self.upload, self._blobs
        refs = []
        for requested, frame in zip(times, frames, strict=True):
            key = (
                f"keyframes/{upload.video_id}/{planned.index:05d}_{round(requested * 1000):09d}.jpg"
            )
            uri = blobs.put(key, frame.jpeg, "image/jpeg")
            refs.append(
                KeyframeRef(time=requested, uri=uri, width=frame.width, height=frame.height)
            )
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
            chunk_count=len(self.plan),
            start=planned.start,
            end=planned.end,
            video_duration=self.probe.duration,
        )
        return ChunkCut(
            video_id=upload.video_id,
            span=span,
            keyframes=tuple(refs),
            strip_uri=strip_uri,
            audio_uri=audio_uri,
            providers=upload.providers,
        )


def cut_video(
    upload: VideoUploaded, path: Path, blobs: BlobStore, options: CutOptions
) -> CutResult:
    """The whole cut at once (tests and benchmarks)."""
    cut = VideoCut(upload, path, blobs, options)
    return CutResult(probe=cut.probe, chunks=list(cut.chunks()))
