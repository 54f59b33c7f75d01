"""FastAPI query service over the materialised stores (Milvus, Neo4j)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from neo4j.exceptions import ServiceUnavailable, SessionExpired

from agents.shared.errors import InferenceError
from agents.wiring import Dependencies
from query_service import metrics, security
from query_service.alerts import start_alerts
from query_service.answer.service import AnswerService
from query_service.cache import CachedAnswers
from query_service.chat.neighbours import Neighbours
from query_service.chat.service import ChatService
from query_service.chat.sessions import SessionStore
from query_service.events import build_tracking
from query_service.feeds import start_feeds
from query_service.jobs import start_jobs_view
from query_service.lag_sampler import LagSampler
from query_service.retrieval.errors import RETRY_AFTER_S, StoreUnavailable
from query_service.retrieval.service import SearchService
from query_service.routers import alerts as alert_routes
from query_service.routers import answer, chat, graph, health, jobs, lag, search, stats, videos
from query_service.routers import feeds as feed_routes
from vip.settings import Settings

log = logging.getLogger(__name__)


def _retry_later(detail: str) -> JSONResponse:
    """503 with an ErrorPublic body and Retry-After: the request may succeed when asked again."""
    return JSONResponse(
        status_code=503,
        content={"detail": f"{detail}; retry in {RETRY_AFTER_S} s"},
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stores = Dependencies(settings)
        stores.milvus()
        stores.graph()
        app.state.stores = stores
        # The query cache and its change feed (embeddings, graph.updates): docs/query_events.md
        app.state.tracking = build_tracking(settings)
        app.state.tracking.start()
        app.state.jobs = start_jobs_view(settings)
        # Alert rules and the alerts SSE stream (docs/alerts.md).
        app.state.alerts = start_alerts(settings)
        # The live feed registry and its runners' statuses (docs/live.md, "Feed registry").
        app.state.feeds = start_feeds(settings)
        # Consumer lag for GET /v1/lag and the vip_consumer_* gauges (docs/operations.md).
        app.state.lag = LagSampler.from_settings(settings) if settings.lag_sampler_enabled else None
        if app.state.lag is not None:
            app.state.lag.start()
        app.state.search = SearchService(settings, stores)
        answers = AnswerService(app.state.search, stores)
        # /v1/answer through the cache; chat turns depend on their session, so not cached.
        app.state.answers = CachedAnswers(answers, app.state.tracking.cache)
        app.state.chat = ChatService(
            answers,
            Neighbours(stores.graph().driver),
            SessionStore(
                settings.chat_max_sessions, settings.chat_session_ttl_s, settings.chat_history_turns
            ),
        )
        try:
            yield
        finally:
            await asyncio.to_thread(app.state.tracking.stop)
            await asyncio.to_thread(app.state.jobs.close)
            await asyncio.to_thread(app.state.alerts.close)
            await asyncio.to_thread(app.state.feeds.close)
            if app.state.lag is not None:
                await asyncio.to_thread(app.state.lag.stop)
            app.state.search.close()
            app.state.stores.close()

    app = FastAPI(
        title="Video Intelligence Platform",
        version="0.1.0",
        lifespan=lifespan,
        dependencies=[security.CheckApiKey],
    )
    security.install(app, settings)
    metrics.install(app)

    @app.exception_handler(InferenceError)
    async def inference_unavailable(request: Request, exc: InferenceError) -> JSONResponse:
        return JSONResponse(status_code=503, content={"detail": f"inference failed: {exc}"})

    @app.exception_handler(StoreUnavailable)
    async def store_unavailable(request: Request, exc: StoreUnavailable) -> JSONResponse:
        log.warning("%s %s: %s (%s)", request.method, request.url.path, exc, exc.operation)
        return _retry_later(str(exc))

    # The other routes read Neo4j through the shared adapter: unreachable is not a fault here.
    @app.exception_handler(ServiceUnavailable)
    @app.exception_handler(SessionExpired)
    async def neo4j_unavailable(request: Request, exc: Exception) -> JSONResponse:
        log.warning("%s %s: neo4j unavailable: %s", request.method, request.url.path, exc)
        return _retry_later("neo4j is unavailable")

    app.include_router(health.router)
    app.include_router(videos.router)
    app.include_router(search.router)
    app.include_router(graph.router)
    app.include_router(answer.router)
    app.include_router(chat.router)
    app.include_router(stats.router)
    app.include_router(jobs.router)
    app.include_router(lag.router)
    app.include_router(videos.keyframes)
    app.include_router(alert_routes.router)
    app.include_router(feed_routes.router)
    return app
