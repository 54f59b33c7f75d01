"""Chunking agent: videos.uploaded → chunks (plus the job's "processing" delta).

Chunks are published one by one as the decoder passes each chunk's end, so analysis of the
first chunk starts while the rest of the video is still being decoded.
"""

from __future__ import annotations

import asyncio
from contextlib import ExitStack

import faust

from agents.chunking.cutter import CutOptions, VideoCut
from agents.shared.sources import local_copy, parse_source
from agents.shared.stage import with_retries
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

    def open_cut(upload: VideoUploaded, files: ExitStack) -> VideoCut:
        source = parse_source(upload.source, settings.allowed_source_roots)
        path = files.enter_context(local_copy(source))
        return VideoCut(upload, path, deps.blobs(), options)

    async def handle(key: bytes | None, value: bytes | None) -> None:
        upload = decode(value, VideoUploaded)
        key_bytes = upload.video_id.encode()
        with ExitStack() as files:
            cut = await asyncio.to_thread(open_cut, upload, files)
            await pipeline.graph_updates.send(key=key_bytes, value=encode(_processing(cut)))
            chunks = cut.chunks()
            files.callback(chunks.close)
            # Each step decodes in a worker thread; the generator keeps its state between them.
            while (chunk := await asyncio.to_thread(next, chunks, None)) is not None:
                await pipeline.chunks.send(key=key_bytes, value=encode(chunk))

    stage = with_retries(stage, app, deps.settings, handle)

    @app.agent(pipeline.videos_uploaded, name="vip.chunking")
    async def chunk_videos(stream: faust.StreamT) -> None:
        await stage.run(stream.events(), handle)


def _processing(cut: VideoCut) -> GraphUpdated:
    upload, probe = cut.upload, cut.probe
    video = NodeDelta(
        label="Video",
        key=upload.video_id,
        props={
            "source": upload.source,
            "status": "processing",
            "upload_id": upload.event_id,
            "error": None,
            "duration": probe.duration,
            "chunk_count": len(cut.plan),
            "content_hash": upload.content_hash,
            "width": probe.width,
            "height": probe.height,
            "codec": probe.codec,
            "uploaded_at": upload.occurred_at.isoformat(),
        },
    )
    return GraphUpdated(video_id=upload.video_id, nodes=(video,))
