"""Analysis agent: chunks → analyses."""

from __future__ import annotations

import asyncio

import faust

from agents.analysis.core import analysed
from agents.wiring import Dependencies
from streams import topics
from streams.app import PipelineTopics
from streams.records import ChunkAnalysed, ChunkCut, decode, encode

STAGE = "analysis"
DETECTOR = "object_detection"


def register(app: faust.App, pipeline: PipelineTopics, deps: Dependencies) -> None:
    stage = deps.stage(STAGE, topics.CHUNKS, app, pipeline)
    min_score = deps.settings.detection_min_score

    def analyse(chunk: ChunkCut) -> ChunkAnalysed:
        blobs = deps.blobs()
        images = [blobs.get(frame.uri) for frame in chunk.keyframes]
        triton = deps.triton()
        detections = triton.detect_objects(images, min_score=min_score)
        models = {DETECTOR: triton.model_version(DETECTOR)}
        return analysed(chunk, detections, models, min_score)

    async def handle(key: bytes | None, value: bytes | None) -> None:
        chunk = decode(value, ChunkCut)
        result = await asyncio.to_thread(analyse, chunk)
        await pipeline.analyses.send(key=chunk.video_id.encode(), value=encode(result))

    @app.agent(pipeline.chunks, name="vip.analysis")
    async def analyse_chunks(stream: faust.StreamT) -> None:
        await stage.run(stream.events(), handle)
