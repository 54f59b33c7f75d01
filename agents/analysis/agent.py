"""Analysis agent: chunks → analyses."""

from __future__ import annotations

import asyncio

import faust

from agents.shared.stage import with_retries
from agents.wiring import Dependencies
from streams import topics
from streams.app import PipelineTopics
from streams.records import ChunkCut, decode, encode

STAGE = "analysis"


def register(app: faust.App, pipeline: PipelineTopics, deps: Dependencies) -> None:
    stage = deps.stage(STAGE, topics.CHUNKS, app, pipeline)

    async def handle(key: bytes | None, value: bytes | None) -> None:
        chunk = decode(value, ChunkCut)
        result = await asyncio.to_thread(deps.analyser().analyse, chunk)
        await pipeline.analyses.send(key=chunk.video_id.encode(), value=encode(result))

    stage = with_retries(stage, app, deps.settings, handle)

    @app.agent(pipeline.chunks, name="vip.analysis", concurrency=deps.settings.analysis_concurrency)
    async def analyse_chunks(stream: faust.StreamT) -> None:
        await stage.run(stream.events(), handle)
