"""Request and response schemas of the query API (v1)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_QUERY_CHARS = 1000


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, max_length=MAX_QUERY_CHARS)
    top_k: int = Field(default=5, ge=1, le=100)
    video_ids: list[str] | None = Field(default=None, max_length=100)


class MomentPublic(BaseModel):
    video_id: str
    source: str
    start: float
    end: float
    score: float
    text: str
    labels: list[str]


class MomentsPublic(BaseModel):
    data: list[MomentPublic]
    count: int


class ChunkPublic(BaseModel):
    index: int
    start: float
    end: float
    text: str | None = None
    labels: list[str] = []


class VideoPublic(BaseModel):
    video_id: str
    source: str | None
    status: Literal["processing", "completed", "failed"] | str
    duration: float | None
    chunk_count: int | None
    indexed_chunks: int | None
    error: str | None = None
    upload_id: str | None = None
    analysis_cache_hits: int | None = None


class VideoDetail(VideoPublic):
    chunks: list[ChunkPublic]


class VideosPublic(BaseModel):
    data: list[VideoPublic]
    count: int


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    checks: dict[str, str]
