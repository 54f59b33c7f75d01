"""Builds the Faust app with every stage's agent registered: what `vip worker` runs."""

from __future__ import annotations

from typing import Any

import faust

from agents.analysis import agent as analysis
from agents.chunking import agent as chunking
from agents.embedding import agent as embedding
from agents.graph import agent as graph
from agents.wiring import Dependencies
from streams.app import create_app, pipeline_topics
from vip.settings import Settings

STAGES = {
    "chunking": chunking.register,
    "analysis": analysis.register,
    "embedding": embedding.register,
    "graph": graph.register,
}


def build_worker_app(settings: Settings, stages: list[str] | None = None) -> faust.App:
    app = create_app(settings)
    pipeline = pipeline_topics(app)
    deps = Dependencies(settings)
    for name in stages or list(STAGES):
        STAGES[name](app, pipeline, deps)

    @app.on_before_shutdown.connect
    async def close_adapters(app: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        deps.close()

    return app
