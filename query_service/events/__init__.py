"""The query service's change feed: ``embeddings`` and ``graph.updates`` keep its cache and
counters fresh (docs/query_events.md)."""

from query_service.events.activity import Activity, ActivityTotals, VideoActivity
from query_service.events.changes import VideoChange, read_change
from query_service.events.consumer import ChangeFeed, FeedHealth
from query_service.events.freshness import Freshness
from query_service.events.wiring import ChangeTracking, TrackingDep, build_tracking

__all__ = [
    "Activity",
    "ActivityTotals",
    "ChangeFeed",
    "ChangeTracking",
    "FeedHealth",
    "Freshness",
    "TrackingDep",
    "VideoActivity",
    "VideoChange",
    "build_tracking",
    "read_change",
]
