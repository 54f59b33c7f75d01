"""Feeds on the query side: the registry's writer, its view, and its public schemas.

The app starts them in its lifespan (``app.state.feeds = start_feeds(settings)``) and closes
them on the way out; query_service/routers/feeds.py serves them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from query_service.feeds.schemas import (
    FeedCreate,
    FeedPublic,
    FeedsPublic,
    feed_public,
    new_feed_id,
)
from query_service.feeds.view import FeedsView
from vip.feeds.log import FeedTopics, RecordWriter
from vip.settings import Settings

__all__ = [
    "FeedCreate",
    "FeedPublic",
    "Feeds",
    "FeedsDep",
    "FeedsPublic",
    "FeedsView",
    "feed_public",
    "new_feed_id",
    "start_feeds",
]


@dataclass(frozen=True)
class Feeds:
    view: FeedsView
    writer: RecordWriter
    names: FeedTopics

    def close(self) -> None:
        self.view.close()
        self.writer.close()


def start_feeds(settings: Settings, names: FeedTopics | None = None) -> Feeds:
    """A started view of the registry and a writer to it; ``close()`` them when the app stops."""
    names = names or FeedTopics()
    view = FeedsView(settings.kafka_bootstrap, names)
    view.start()
    return Feeds(view, RecordWriter(settings.kafka_bootstrap), names)


def get_feeds(request: Request) -> Feeds:
    feeds: Feeds = request.app.state.feeds
    return feeds


FeedsDep = Annotated[Feeds, Depends(get_feeds)]
