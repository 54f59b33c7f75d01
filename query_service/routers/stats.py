"""``GET /v1/stats``: counters kept fresh by the change feed, the cache and the feed itself.

Nothing here reads Milvus or Neo4j: the numbers are what this API instance has seen on the
``embeddings`` and ``graph.updates`` topics since it started.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query
from pydantic import BaseModel

from query_service.cache import CacheStats
from query_service.events import ActivityTotals, FeedHealth, TrackingDep, VideoActivity
from query_service.graph_schemas import VIDEO_ID_PATTERN

router = APIRouter(prefix="/v1/stats", tags=["stats"])


class VideoStats(BaseModel):
    video_id: str
    activity: VideoActivity


class StatsPublic(BaseModel):
    totals: ActivityTotals
    cache: CacheStats
    feed: FeedHealth | None
    videos: list[VideoStats]


@router.get("", response_model=StatsPublic)
async def stats(
    tracking: TrackingDep, limit: Annotated[int, Query(ge=0, le=1000)] = 20
) -> StatsPublic:
    """Totals, the cache, the change feed, and the ``limit`` most recently active videos."""
    return StatsPublic(
        totals=tracking.activity.totals(),
        cache=tracking.cache.stats(),
        feed=tracking.health(),
        videos=[
            VideoStats(video_id=video_id, activity=activity)
            for video_id, activity in tracking.activity.recent(limit)
        ],
    )


@router.get(
    "/videos/{video_id}",
    response_model=VideoActivity,
    responses={404: {"description": "no event about the video since this instance started"}},
)
async def video_stats(
    video_id: Annotated[str, Path(pattern=VIDEO_ID_PATTERN)], tracking: TrackingDep
) -> VideoActivity:
    activity = tracking.activity.video(video_id)
    if activity is None:
        raise HTTPException(
            status_code=404,
            detail=f"no event about video {video_id} since {tracking.activity.since.isoformat()}",
        )
    return activity
