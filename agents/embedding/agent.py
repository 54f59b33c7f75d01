"""Embedding agent: analyses → embeddings (and an idempotent upsert into Milvus)."""

from __future__ import annotations

import asyncio

import faust

from agents.embedding.core import describe, moment_id
from agents.shared.milvus_store import MomentRow
from agents.wiring import Dependencies
from streams import topics
from streams.app import PipelineTopics
from streams.records import ChunkAnalysed, MomentEmbedded, decode, encode

STAGE = "embedding"
TEXT_MODEL = "text_embedding"


def register(app: faust.App, pipeline: PipelineTopics, deps: Dependencies) -> None:
    stage = deps.stage(STAGE, topics.ANALYSES, app, pipeline)

    def embed(analysis: ChunkAnalysed) -> MomentEmbedded:
        text, labels = describe(analysis)
        triton = deps.triton()
        vector = triton.embed_texts([text])[0]
        span = analysis.span
        mid = moment_id(analysis.video_id, span.chunk_index)
        thumbnail = analysis.keyframes[0].uri if analysis.keyframes else ""
        deps.milvus().upsert(
            [
                MomentRow(
                    id=mid,
                    vector=[float(v) for v in vector],
                    video_id=analysis.video_id,
                    source=span.source,
                    chunk_index=span.chunk_index,
                    start=span.start,
                    end=span.end,
                    text=text,
                    labels=",".join(labels),
                    thumbnail=thumbnail,
                )
            ]
        )
        return MomentEmbedded(
            video_id=analysis.video_id,
            moment_id=mid,
            span=span,
            text=text,
            labels=labels,
            thumbnail_uri=thumbnail or None,
            model=f"{TEXT_MODEL}:{triton.model_version(TEXT_MODEL)}",
            vector=tuple(round(float(v), 6) for v in vector),
            analysis_cache_hit=analysis.cache_hit,
        )

    async def handle(key: bytes | None, value: bytes | None) -> None:
        analysis = decode(value, ChunkAnalysed)
        moment = await asyncio.to_thread(embed, analysis)
        await pipeline.embeddings.send(key=moment.video_id.encode(), value=encode(moment))

    @app.agent(pipeline.analyses, name="vip.embedding")
    async def embed_moments(stream: faust.StreamT) -> None:
        await stage.run(stream.events(), handle)
