"""Videos: the list, one video's status and moments, its keyframes, and its media by range.

The list and the moment pages are served from the query cache, kept fresh by the change feed
(docs/query_events.md); the ``X-Cache`` header says ``hit`` or ``miss``.
"""

from __future__ import annotations

import asyncio
import mimetypes
from collections.abc import Callable, Collection
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Header, HTTPException, Path, Query, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from agents.shared.blob_store import BlobNotFound, InvalidBlobKey
from agents.shared.sources import LocalSource, SourceError, parse_source
from query_service.cache import TaggedCache
from query_service.deps import StoresDep
from query_service.events import TrackingDep, VideoActivity
from query_service.graph_queries import UnknownVideo
from query_service.graph_schemas import VIDEO_ID_PATTERN, VideoMoments
from query_service.media import (
    KEYFRAME_NAME_PATTERN,
    RangeNotSatisfiable,
    keyframe_key,
    parse_range,
    read_span,
)
from query_service.routers.graph import ReaderDep
from query_service.schemas import (
    ChunkPublic,
    ErrorPublic,
    VideoDetail,
    VideoPublic,
    VideosPublic,
)

router = APIRouter(prefix="/v1/videos", tags=["videos"])
keyframes = APIRouter(prefix="/v1/keyframes", tags=["videos"])
VideoId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
StrictVideoId = Annotated[str, Path(pattern=VIDEO_ID_PATTERN)]
KeyframeName = Annotated[str, Path(pattern=KEYFRAME_NAME_PATTERN, examples=["00000_000002000.jpg"])]
CACHE_HEADER = "X-Cache"
T = TypeVar("T")


class VideoItem(VideoPublic):
    activity: VideoActivity | None = Field(
        default=None,
        description="What this API instance has seen happen to the video since it started",
    )


class VideoItems(BaseModel):
    data: list[VideoItem]
    count: int


async def _through_cache(
    cache: TaggedCache,
    response: Response,
    key: str,
    kind: type[T],
    videos: Collection[str] | None,
    read: Callable[[], T],
) -> T:
    """The cached value, or ``read()`` in a thread, cached for ``videos`` (None: global)."""
    found = cache.get(key, kind)
    response.headers[CACHE_HEADER] = "hit" if found is not None else "miss"
    if found is not None:
        return found
    started = cache.begin()
    value = await asyncio.to_thread(read)
    cache.put(key, value, videos, started)
    return value


def _public(props: dict[str, Any]) -> VideoPublic:
    return VideoPublic(
        video_id=props["key"],
        source=props.get("source"),
        status=props.get("status", "unknown"),
        duration=props.get("duration"),
        chunk_count=props.get("chunk_count"),
        indexed_chunks=props.get("indexed_chunks"),
        upload_id=props.get("upload_id"),
        analysis_cache_hits=props.get("analysis_cache_hits"),
        error=props.get("error"),
    )


@router.get("", response_model=VideoItems)
async def list_videos(
    stores: StoresDep,
    tracking: TrackingDep,
    response: Response,
    skip: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> VideoItems:
    """Newest first. The page is cached for every video (any change may reorder it); each
    item's ``activity`` is read live from the counters."""

    def read() -> VideosPublic:
        rows, total = stores.graph().list_videos(skip, limit)
        return VideosPublic(data=[_public(row) for row in rows], count=total)

    page = await _through_cache(
        tracking.cache, response, f"videos:{skip}:{limit}", VideosPublic, None, read
    )
    items = [
        VideoItem(**video.model_dump(), activity=tracking.activity.video(video.video_id))
        for video in page.data
    ]
    return VideoItems(data=items, count=page.count)


@router.get(
    "/{video_id}",
    response_model=VideoDetail,
    responses={404: {"model": ErrorPublic, "description": "unknown video"}},
)
async def get_video(video_id: VideoId, stores: StoresDep) -> VideoDetail:
    record = await asyncio.to_thread(stores.graph().get_video, video_id)
    if record is None:
        raise HTTPException(status_code=404, detail=f"video {video_id} not found")
    chunks = [
        ChunkPublic(
            index=c["index"],
            start=c["start"],
            end=c["end"],
            text=c.get("text"),
            labels=list(c.get("labels") or []),
        )
        for c in record.chunks
    ]
    return VideoDetail(**_public(record.props).model_dump(), chunks=chunks)


@router.get(
    "/{video_id}/moments",
    response_model=VideoMoments,
    responses={404: {"model": ErrorPublic, "description": "unknown video"}},
)
async def video_moments(
    video_id: StrictVideoId,
    reader: ReaderDep,
    tracking: TrackingDep,
    response: Response,
    skip: Annotated[int, Query(ge=0, le=100_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> VideoMoments:
    """The video's chunks in time order, each with its shots, labels, entities and thumbnail.
    Cached until the video changes (an unknown video is not cached)."""
    try:
        return await _through_cache(
            tracking.cache,
            response,
            f"moments:{video_id}:{skip}:{limit}",
            VideoMoments,
            [video_id],
            lambda: reader.video_moments(video_id, skip, limit),
        )
    except UnknownVideo as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from exc


@router.get(
    "/{video_id}/media",
    response_class=StreamingResponse,
    responses={
        200: {"description": "the whole source file"},
        206: {"description": "the requested byte range"},
        403: {"description": "the source lies outside the allowed roots"},
        404: {"description": "unknown video, or no local source to stream"},
        416: {"description": "the range starts past the end of the file"},
    },
)
async def video_media(
    video_id: StrictVideoId,
    reader: ReaderDep,
    stores: StoresDep,
    range_header: Annotated[str | None, Header(alias="range", max_length=200)] = None,
) -> Response:
    """The source video's bytes, honouring one ``Range: bytes=…`` so a player can seek to a
    moment. Only local sources under the allowed roots (``VIP_ALLOWED_SOURCE_ROOTS``) are
    served."""
    try:
        raw = await asyncio.to_thread(reader.video_source, video_id)
    except UnknownVideo as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from exc
    if not raw:
        raise HTTPException(status_code=404, detail=f"video {video_id} has no recorded source")
    try:
        source = parse_source(raw, stores.settings.allowed_source_roots)
    except SourceError as exc:
        status = 403 if "outside the allowed" in str(exc) else 404
        raise HTTPException(status_code=status, detail=f"cannot stream {video_id}: {exc}") from exc
    if not isinstance(source, LocalSource):
        raise HTTPException(
            status_code=404,
            detail=f"video {video_id} comes from {source}; only local sources are streamed",
        )
    path = source.path
    size = path.stat().st_size
    media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    headers = {"Accept-Ranges": "bytes"}
    try:
        wanted = parse_range(range_header, size)
    except RangeNotSatisfiable as exc:
        raise HTTPException(
            status_code=416,
            detail=f"range not satisfiable: {exc}",
            headers={**headers, "Content-Range": f"bytes */{size}"},
        ) from exc
    if wanted is None:
        headers["Content-Length"] = str(size)
        return StreamingResponse(read_span(path, 0, size), media_type=media_type, headers=headers)
    headers["Content-Length"] = str(wanted.length)
    headers["Content-Range"] = wanted.content_range(size)
    return StreamingResponse(
        read_span(path, wanted.start, wanted.length),
        status_code=206,
        media_type=media_type,
        headers=headers,
    )


@keyframes.get(
    "/{video_id}/{name}",
    response_class=Response,
    responses={
        200: {"content": {"image/jpeg": {}}, "description": "the keyframe JPEG"},
        404: {"description": "no such keyframe"},
    },
)
async def keyframe(video_id: StrictVideoId, name: KeyframeName, stores: StoresDep) -> Response:
    """A keyframe image (the thumbnail_url of a moment)."""
    blobs = stores.blobs()
    try:
        uri = blobs.uri_for(keyframe_key(video_id, name))
        data = await asyncio.to_thread(blobs.get, uri)
    except BlobNotFound as exc:
        raise HTTPException(
            status_code=404, detail=f"no keyframe {name} for video {video_id}"
        ) from exc
    except (InvalidBlobKey, ValueError) as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from exc
    # Keyframes never change: the video id is a content hash and the name a time.
    return Response(
        data, media_type="image/jpeg", headers={"Cache-Control": "public, max-age=86400"}
    )
