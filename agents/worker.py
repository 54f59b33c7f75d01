"""Builds the Faust app with every stage's agent registered: what `vip worker` runs."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import faust

from agents.analysis import agent as analysis
from agents.chunking import agent as chunking
from agents.embedding import agent as embedding
from agents.graph import agent as graph
from agents.wiring import Dependencies
from streams.app import create_app, pipeline_topics
from vip.settings import Settings

log = logging.getLogger(__name__)

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
    chosen = stages or list(STAGES)
    for name in chosen:
        STAGES[name](app, pipeline, deps)

    @app.task
    async def warm_up() -> None:
        # Connections and model metadata now, not on the first event (whose latency it was).
        try:
            await asyncio.to_thread(deps.warm_up, chosen)
        except Exception as exc:  # a service still starting: adapters connect on first use
            log.warning("warm-up incomplete (%s: %s)", type(exc).__name__, exc)

    @app.on_before_shutdown.connect
    async def close_adapters(app: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        deps.close()

    return app
