"""Graph agents: embeddings → graph.updates, and the sink graph.updates → Neo4j."""

from __future__ import annotations

import asyncio

import faust

from agents.graph.core import moment_delta, nearest_elsewhere
from agents.graph.knowledge import entity_names
from agents.shared.stage import with_retries
from agents.wiring import Dependencies
from streams import topics
from streams.app import PipelineTopics
from streams.records import GraphUpdated, MomentEmbedded, decode, encode

STAGE = "graph"
SIMILAR_K = 3
SIMILAR_MIN = 0.6
SINK = "graph-sink"


def register(app: faust.App, pipeline: PipelineTopics, deps: Dependencies) -> None:
    stage = deps.stage(STAGE, topics.EMBEDDINGS, app, pipeline)
    sink = deps.stage(SINK, topics.GRAPH_UPDATES, app, pipeline, report_job_failure=False)

    def build(moment: MomentEmbedded) -> GraphUpdated:
        similar = similar_moments(moment)
        if moment.analysis is None:
            return moment_delta(moment, similar=similar)
        resolution = deps.resolver().resolve(entity_names(moment.analysis))
        return moment_delta(moment, resolution.canonical, resolution.new_vectors, similar)

    def similar_moments(moment: MomentEmbedded) -> list[tuple[str, float]]:
        """The nearest moments of other videos in the multimodal space (k-NN)."""
        if moment.multimodal_vector is None:
            return []
        hits = deps.milvus_collections()["multimodal"].search(
            moment.multimodal_vector, top_k=SIMILAR_K * 4
        )
        return nearest_elsewhere(
            moment.video_id, [(h.id, h.video_id, h.score) for h in hits], SIMILAR_K, SIMILAR_MIN
        )

    async def to_delta(key: bytes | None, value: bytes | None) -> None:
        moment = decode(value, MomentEmbedded)
        delta = await asyncio.to_thread(build, moment)
        await pipeline.graph_updates.send(key=moment.video_id.encode(), value=encode(delta))

    async def apply(key: bytes | None, value: bytes | None) -> None:
        update = decode(value, GraphUpdated)
        await asyncio.to_thread(deps.graph().apply, update)

    stage = with_retries(stage, app, deps.settings, to_delta)
    sink = with_retries(sink, app, deps.settings, apply)

    @app.agent(pipeline.embeddings, name="vip.graph")
    async def graph_moments(stream: faust.StreamT) -> None:
        await stage.run(stream.events(), to_delta)

    @app.agent(pipeline.graph_updates, name="vip.graph_sink")
    async def sink_graph_updates(stream: faust.StreamT) -> None:
        await sink.run(stream.events(), apply)
