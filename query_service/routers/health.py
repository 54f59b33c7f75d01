from __future__ import annotations

import asyncio

from fastapi import APIRouter, Response

from query_service.deps import StoresDep
from query_service.events import FeedHealth, TrackingDep
from query_service.schemas import Health

router = APIRouter(tags=["health"])


class ServiceHealth(Health):
    events: FeedHealth | None = None


@router.get("/health", response_model=ServiceHealth)
@router.get("/v1/health", response_model=ServiceHealth)
async def health(stores: StoresDep, tracking: TrackingDep, response: Response) -> ServiceHealth:
    """The stores and Triton answer (503 when one does not), and the change feed's state. The
    feed does not make the service unhealthy: without it the cache is off and every read goes
    to the stores."""
    checks: dict[str, str] = {}

    def probe() -> None:
        for name, check in (
            ("neo4j", lambda: stores.graph().list_videos(0, 1)),
            ("milvus", lambda: stores.milvus().ensure_collection()),
            ("triton", lambda: stores.triton().wait_for_ready(deadline_s=1.0)),
        ):
            try:
                check()
                checks[name] = "ok"
            except Exception as exc:
                checks[name] = f"error: {type(exc).__name__}: {exc}"[:300]

    await asyncio.to_thread(probe)
    ok = all(value == "ok" for value in checks.values())
    if not ok:
        response.status_code = 503
    return ServiceHealth(status="ok" if ok else "degraded", checks=checks, events=tracking.health())
