from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query

from query_service.deps import StoresDep
from query_service.schemas import ChunkPublic, VideoDetail, VideoPublic, VideosPublic

router = APIRouter(prefix="/v1/videos", tags=["videos"])
VideoId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]


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


@router.get("", response_model=VideosPublic)
async def list_videos(
    stores: StoresDep,
    skip: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> VideosPublic:
    rows, total = await asyncio.to_thread(stores.graph().list_videos, skip, limit)
    return VideosPublic(data=[_public(row) for row in rows], count=total)


@router.get("/{video_id}", response_model=VideoDetail)
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
