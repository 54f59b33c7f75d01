"""Live feeds (/v1/feeds): register, list, show and delete them (docs/live.md, "Feed registry").

The registry is the compacted ``feeds`` topic; the feed runners (`vip feeds run`) follow it and
report each feed's status on ``feeds.status``. Every replica reads both (query_service/feeds),
so all of them answer the same; the one that wrote a change waits until it has read it back.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError

from agents.shared.sources import SourceError
from query_service.feeds import (
    FeedCreate,
    FeedPublic,
    Feeds,
    FeedsDep,
    FeedsPublic,
    feed_public,
    new_feed_id,
)
from query_service.feeds.schemas import FEED_ID_PATTERN
from query_service.schemas import ErrorPublic
from query_service.security import RequireApiKey, body_as
from streams.records import FeedRegistered
from vip.feeds.errors import RegistryUnavailable
from vip.feeds.sources import check_source
from vip.settings import Settings

router = APIRouter(prefix="/v1/feeds", tags=["feeds"])
FeedId = Annotated[str, Path(pattern=FEED_ID_PATTERN, examples=["f0123456789abcdef"])]
# How long a write waits to be read back by this replica before it answers anyway.
READ_BACK_S = 5.0
UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {"model": ErrorPublic, "description": "the registry is loading or Kafka is unreachable"}
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorPublic, "description": "no such feed"}
}


def _loaded(feeds: Feeds) -> None:
    if not feeds.view.loaded:
        detail = "the feed registry is still loading"
        if feeds.view.last_error:
            detail += f" ({feeds.view.last_error})"
        raise HTTPException(status_code=503, detail=detail, headers={"Retry-After": "1"})


async def _write(feeds: Feeds, feed_id: str, record: FeedRegistered | None) -> None:
    """Write a registration (None: a tombstone) and wait until this replica has read it."""
    try:
        partition, offset = await asyncio.to_thread(
            feeds.writer.write, feeds.names.registry, feed_id, record
        )
    except RegistryUnavailable as exc:
        raise HTTPException(status_code=503, detail=str(exc), headers={"Retry-After": "5"}) from exc
    await asyncio.to_thread(
        feeds.view.wait_until_read, feeds.names.registry, partition, offset, READ_BACK_S
    )


@router.post(
    "",
    status_code=201,
    response_model=FeedPublic,
    dependencies=[RequireApiKey, body_as("application/json")],
    responses={
        409: {"model": ErrorPublic, "description": "a feed with this id is registered"},
        422: {"description": "an invalid feed, or a source a feed may not read"},
        **UNAVAILABLE,
    },
)
async def register_feed(
    body: FeedCreate, feeds: FeedsDep, request: Request, response: Response
) -> FeedPublic:
    """Register a feed; a runner starts it. Its segments become moments whose video id is the
    feed id. Stream hosts must resolve to public addresses (private and loopback ones only
    where the server allows them); files must lie under the server's allowed roots."""
    _loaded(feeds)
    feed_id = body.feed_id or new_feed_id()
    if feeds.view.get(feed_id) is not None:
        raise HTTPException(status_code=409, detail=f"feed {feed_id} is already registered")
    settings: Settings = request.app.state.settings
    try:
        source = await asyncio.to_thread(check_source, settings, body.source)
    except SourceError as exc:
        raise RequestValidationError(
            [{"type": "value_error", "loc": ("body", "source"), "msg": str(exc), "input": None}]
        ) from exc
    record = FeedRegistered(
        video_id=feed_id,
        source=str(source),
        segment_seconds=body.segment_seconds,
        realtime=body.realtime,
        name=body.name,
        labels=body.labels,
    )
    await _write(feeds, feed_id, record)
    response.headers["Location"] = f"{router.prefix}/{feed_id}"
    return feed_public(record, None)


@router.get("", response_model=FeedsPublic, responses=UNAVAILABLE)
async def list_feeds(
    feeds: FeedsDep,
    skip: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> FeedsPublic:
    """Most recently registered first, each with the status its runner last reported."""
    _loaded(feeds)
    page, total = feeds.view.page(skip, limit)
    return FeedsPublic(data=[feed_public(*feed) for feed in page], count=total)


@router.get("/{feed_id}", response_model=FeedPublic, responses={**NOT_FOUND, **UNAVAILABLE})
async def get_feed(feed_id: FeedId, feeds: FeedsDep) -> FeedPublic:
    found = feeds.view.get(feed_id)
    if found is None:
        _loaded(feeds)
        raise HTTPException(status_code=404, detail=f"no feed {feed_id}")
    return feed_public(*found)


@router.delete(
    "/{feed_id}",
    status_code=204,
    response_class=Response,
    dependencies=[RequireApiKey],
    responses={**NOT_FOUND, **UNAVAILABLE},
)
async def delete_feed(feed_id: FeedId, feeds: FeedsDep) -> Response:
    """Delete the feed: its runner stops it and reports it stopped. Its moments stay."""
    _loaded(feeds)
    if feeds.view.get(feed_id) is None:
        raise HTTPException(status_code=404, detail=f"no feed {feed_id}")
    await _write(feeds, feed_id, None)
    return Response(status_code=204)
