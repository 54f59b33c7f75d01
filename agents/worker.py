"""Builds and runs one worker process: the Faust app of the given stages (one consumer group,
``streams.app.app_id_for``), at the stages' priority, recycled and stopped within their limits
(agents.lifecycle). `vip worker --stage X` runs it; plain `vip worker` supervises one per stage."""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
from collections.abc import Sequence
from typing import Any, NoReturn

import faust

from agents.lifecycle import Limits, run_stage_app
from agents.shared.metrics import MetricsServer, serve_worker_metrics
from agents.wiring import Dependencies
from streams.app import app_id_for, create_app, pipeline_topics
from vip.settings import Settings

log = logging.getLogger(__name__)

# Each stage's agent module (with its `register(app, pipeline, deps)`), imported only by the
# workers that run the stage: a chunking worker never loads the analysis models' clients.
STAGES = {
    "chunking": "agents.chunking.agent",
    "analysis": "agents.analysis.agent",
    "embedding": "agents.embedding.agent",
    "graph": "agents.graph.agent",
    "jobs": "agents.jobs.agent",
    "live": "agents.live.agent",
    "alerts": "agents.alerts.agent",
}


def build_worker_app(settings: Settings, stages: Sequence[str]) -> faust.App:
    """One Faust app (one consumer group) with the given stages' agents."""
    chosen = list(dict.fromkeys(stages))
    if not chosen:
        raise ValueError("a worker runs at least one stage")
    unknown = set(chosen) - set(STAGES)
    if unknown:
        raise ValueError(f"unknown stage(s) {sorted(unknown)}; known: {', '.join(STAGES)}")
    app = create_app(settings, app_id_for("-".join(chosen)))
    pipeline = pipeline_topics(app)
    deps = Dependencies(settings)
    for name in chosen:
        importlib.import_module(STAGES[name]).register(app, pipeline, deps)
        main_agent = app.agents.get(f"vip.{name}")
        if main_agent is not None:  # the stage's concurrency, whatever register chose
            main_agent.concurrency = settings.stage_worker(name).concurrency

    @app.task
    async def warm_up() -> None:
        # Connections and model metadata now, not on the first event (whose latency it was).
        try:
            await asyncio.to_thread(deps.warm_up, chosen)
        except Exception as exc:  # a service still starting: adapters connect on first use
            log.warning("warm-up incomplete (%s: %s)", type(exc).__name__, exc)

    metrics_servers: list[MetricsServer] = []

    @app.task
    async def serve_metrics() -> None:
        # Prometheus scrapes http://host:worker_metrics_port/metrics (0: not served); the
        # supervisor (`vip worker`) gives each stage's process its own port.
        server = serve_worker_metrics(settings.host, settings.worker_metrics_port, chosen)
        if server is not None:
            metrics_servers.append(server)

    @app.on_before_shutdown.connect
    async def close_adapters(app: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        deps.close()
        for server in metrics_servers:
            server.close()

    return app


def run_worker(settings: Settings, stages: Sequence[str]) -> NoReturn:
    """Run the stages' worker in this process until SIGTERM or a recycle; exits with
    agents.lifecycle's code for how it ended."""
    # Ingestion yields the CPU to the query API (never niced) and to the lighter stages.
    os.nice(min(settings.stage_worker(stage).nice for stage in stages))
    run_stage_app(build_worker_app(settings, stages), Limits.for_stages(settings, stages))
