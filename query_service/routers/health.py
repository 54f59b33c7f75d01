from __future__ import annotations

import asyncio

from fastapi import APIRouter, Response

from query_service.deps import StoresDep
from query_service.schemas import Health

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health)
async def health(stores: StoresDep, response: Response) -> Health:
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
    return Health(status="ok" if ok else "degraded", checks=checks)
