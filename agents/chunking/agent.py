"""Chunking agent: videos.uploaded → chunks (plus the job's "processing" delta)."""

from __future__ import annotations

import asyncio

import faust

from agents.chunking.cutter import CutOptions, CutResult, cut_video
from agents.shared.sources import local_copy, parse_source
from agents.wiring import Dependencies
from streams import topics
from streams.app import PipelineTopics
from streams.records import GraphUpdated, NodeDelta, VideoUploaded, decode, encode

STAGE = "chunking"


def register(app: faust.App, pipeline: PipelineTopics, deps: Dependencies) -> None:
    settings = deps.settings
    options = CutOptions(
        settings.chunk_seconds, settings.keyframe_every_s, settings.keyframe_max_side
    )
    stage = deps.stage(STAGE, topics.VIDEOS_UPLOADED, app, pipeline)

    def cut(upload: VideoUploaded) -> CutResult:
        source = parse_source(upload.source, settings.allowed_source_roots)
        with local_copy(source) as path:
            return cut_video(upload, path, deps.blobs(), options)

    async def handle(key: bytes | None, value: bytes | None) -> None:
        upload = decode(value, VideoUploaded)
        result = await asyncio.to_thread(cut, upload)
        video = NodeDelta(
            label="Video",
            key=upload.video_id,
            props={
                "source": upload.source,
                "status": "processing",
                "upload_id": upload.event_id,
                "error": None,
                "duration": result.probe.duration,
                "chunk_count": len(result.chunks),
                "content_hash": upload.content_hash,
                "width": result.probe.width,
                "height": result.probe.height,
                "codec": result.probe.codec,
                "uploaded_at": upload.occurred_at.isoformat(),
            },
        )
        key_bytes = upload.video_id.encode()
        await pipeline.graph_updates.send(
            key=key_bytes, value=encode(GraphUpdated(video_id=upload.video_id, nodes=(video,)))
        )
        for chunk in result.chunks:
            await pipeline.chunks.send(key=key_bytes, value=encode(chunk))

    @app.agent(pipeline.videos_uploaded, name="vip.chunking")
    async def chunk_videos(stream: faust.StreamT) -> None:
        await stage.run(stream.events(), handle)
