"""Embedding agent: analyses → text, visual and multimodal vectors, upserted into Milvus."""

from __future__ import annotations

import asyncio

import faust

from agents.shared.stage import with_retries
from agents.wiring import Dependencies
from streams import topics
from streams.app import PipelineTopics
from streams.records import ChunkAnalysed, decode, encode

STAGE = "embedding"


def register(app: faust.App, pipeline: PipelineTopics, deps: Dependencies) -> None:
    stage = deps.stage(STAGE, topics.ANALYSES, app, pipeline)

    async def handle(key: bytes | None, value: bytes | None) -> None:
        analysis = decode(value, ChunkAnalysed)
        moment = await asyncio.to_thread(deps.embedder().embed, analysis)
        await pipeline.embeddings.send(key=moment.video_id.encode(), value=encode(moment))

    stage = with_retries(stage, app, deps.settings, handle)

    @app.agent(pipeline.analyses, name="vip.embedding")
    async def embed_moments(stream: faust.StreamT) -> None:
        await stage.run(stream.events(), handle)
