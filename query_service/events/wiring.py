"""The cache, the counters and the change feed that keeps both fresh, built from Settings and
kept on ``app.state.tracking`` (started and stopped by the app's lifespan)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from query_service.cache import TaggedCache
from query_service.events.activity import Activity
from query_service.events.consumer import ChangeFeed, FeedHealth
from query_service.events.freshness import Freshness
from vip.settings import Settings


@dataclass
class ChangeTracking:
    cache: TaggedCache
    activity: Activity
    feed: ChangeFeed | None  # None: no change feed, so the cache stays off

    def start(self) -> None:
        if self.feed is not None:
            self.feed.start()

    def stop(self) -> None:
        if self.feed is not None:
            self.feed.stop()

    def health(self) -> FeedHealth | None:
        return self.feed.health() if self.feed is not None else None


def build_tracking(settings: Settings) -> ChangeTracking:
    cache = TaggedCache(settings.query_cache_max_entries, settings.query_cache_ttl_s)
    activity = Activity()
    feed = None
    if settings.query_events_enabled:
        feed = ChangeFeed(settings, Freshness(cache, activity), settings.query_events_sink_group)
    return ChangeTracking(cache, activity, feed)


def get_tracking(request: Request) -> ChangeTracking:
    tracking: ChangeTracking = request.app.state.tracking
    return tracking


TrackingDep = Annotated[ChangeTracking, Depends(get_tracking)]
