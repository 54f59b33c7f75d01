"""Live agent: live.segments → chunks, plus the feed's Video node on graph.updates.

Each segment of a feed becomes one chunk (chunk_index = segment_index, on the feed's
timeline), so the analysis, embedding and graph stages treat live moments as any others and
they are searchable while the feed still runs.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import faust

from agents.chunking.cutter import CutOptions
from agents.live.core import feed_video_delta
from agents.live.cut import SegmentCut, cut_segment
from agents.shared.stage import with_retries
from agents.wiring import Dependencies
from streams import topics
from streams.app import PipelineTopics
from streams.records import LiveSegmentRecorded, decode, encode

STAGE = "live"


def register(app: faust.App, pipeline: PipelineTopics, deps: Dependencies) -> None:
    settings = deps.settings
    options = CutOptions(
        settings.chunk_seconds, settings.keyframe_every_s, settings.keyframe_max_side
    )
    stage = deps.stage(STAGE, topics.LIVE_SEGMENTS, app, pipeline)

    def cut(segment: LiveSegmentRecorded) -> SegmentCut:
        data = deps.blobs().get(segment.uri)
        with tempfile.TemporaryDirectory(prefix="vip-live-") as tmp:
            path = Path(tmp) / "segment.mp4"
            path.write_bytes(data)
            return cut_segment(segment, path, deps.blobs(), options)

    async def handle(key: bytes | None, value: bytes | None) -> None:
        segment = decode(value, LiveSegmentRecorded)
        done = await asyncio.to_thread(cut, segment)
        key_bytes = segment.video_id.encode()
        probe = done.probe
        video = feed_video_delta(segment, probe.width, probe.height, probe.codec)
        await pipeline.graph_updates.send(key=key_bytes, value=encode(video))
        await pipeline.chunks.send(key=key_bytes, value=encode(done.chunk))

    stage = with_retries(stage, app, deps.settings, handle)

    @app.agent(pipeline.live_segments, name="vip.live")
    async def cut_live_segments(stream: faust.StreamT) -> None:
        await stage.run(stream.events(), handle)
