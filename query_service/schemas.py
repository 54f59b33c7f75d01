"""Request and response schemas of the query API (v1)."""

from __future__ import annotations

import math
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

MAX_QUERY_CHARS = 1000
MAX_TOP_K = 100
MAX_FILTER_VALUES = 100
# Video ids as the pipeline makes them (and as agents.shared.milvus_store.id_literal accepts).
VIDEO_ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"
# Detection and tag labels: lower-case words, as the analysis writes them ("mountain bike",
# "jack-o'-lantern"). Nothing that closes a quoted string or is a LIKE wildcard (% and _).
LABEL_PATTERN = r"^[a-z0-9][a-z0-9 '-]{0,63}$"
MAX_TIME_S = 7 * 24 * 3600.0

Retriever = Literal["text", "multimodal", "visual", "vector", "graph", "keyword"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TimeRange(_Strict):
    """Seconds from the start of a video; a moment matches when it overlaps the range."""

    start: float = Field(default=0.0, ge=0, le=MAX_TIME_S)
    end: float | None = Field(default=None, ge=0, le=MAX_TIME_S)

    @field_validator("start", "end")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        if value is not None and not math.isfinite(value):
            raise ValueError("must be a finite number of seconds")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> TimeRange:
        if self.end is not None and self.end < self.start:
            raise ValueError(f"end ({self.end}) is before start ({self.start})")
        return self


class SearchFilters(_Strict):
    """Every given filter must hold: one of ``video_ids``, overlapping ``time_range``, and all
    of ``labels``."""

    video_ids: list[str] | None = Field(default=None, min_length=1, max_length=MAX_FILTER_VALUES)
    time_range: TimeRange | None = None
    labels: list[str] | None = Field(default=None, min_length=1, max_length=20)

    @field_validator("video_ids")
    @classmethod
    def _video_ids(cls, values: list[str] | None) -> list[str] | None:
        for value in values or []:
            if not re.match(VIDEO_ID_PATTERN, value):
                raise ValueError(f"not a video id: {value[:80]!r}")
        return values

    @field_validator("labels")
    @classmethod
    def _labels(cls, values: list[str] | None) -> list[str] | None:
        if values is None:
            return None
        normalised = [" ".join(value.lower().split()) for value in values]
        for value in normalised:
            if not re.match(LABEL_PATTERN, value):
                raise ValueError(
                    f"not a label: {value[:80]!r} (lower-case letters, digits, spaces, ' - only)"
                )
        return normalised


class SearchRequest(_Strict):
    query: str = Field(min_length=1, max_length=MAX_QUERY_CHARS)
    top_k: int = Field(default=5, ge=1, le=MAX_TOP_K)
    filters: SearchFilters = Field(default_factory=SearchFilters)
    # Before filters existed the video ids were given at the top level; still accepted.
    video_ids: list[str] | None = Field(
        default=None,
        max_length=MAX_FILTER_VALUES,
        description="Deprecated: use filters.video_ids.",
    )

    @field_validator("query")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("query is blank")
        return value

    @model_validator(mode="after")
    def _one_place_for_video_ids(self) -> SearchRequest:
        if self.video_ids is not None:
            if self.filters.video_ids is not None:
                raise ValueError("give video_ids in filters only, not also at the top level")
            self.filters = SearchFilters.model_validate(
                {**self.filters.model_dump(exclude_none=True), "video_ids": self.video_ids}
            )
            self.video_ids = None
        return self


class HybridWeights(_Strict):
    """The weight of each retriever in reciprocal-rank fusion; 0 leaves one out."""

    vector: float = Field(default=1.0, ge=0, le=10)
    graph: float = Field(default=0.5, ge=0, le=10)
    keyword: float = Field(default=0.5, ge=0, le=10)

    @model_validator(mode="after")
    def _some_weight(self) -> HybridWeights:
        if self.vector == self.graph == self.keyword == 0:
            raise ValueError("at least one retriever needs a weight above 0")
        return self


class HybridSearchRequest(SearchRequest):
    weights: HybridWeights = Field(default_factory=HybridWeights)
    # The k of RRF, 1 / (k + rank): larger flattens the difference between ranks.
    rrf_k: int = Field(default=60, ge=1, le=1000)


class MomentPublic(BaseModel):
    """A moment of a video: a chunk (text, multimodal, hybrid search) or one keyframe (image
    search, where ``start == end`` is the keyframe's time)."""

    id: str
    video_id: str
    source: str
    start: float
    end: float
    score: float = Field(description="Cosine similarity, or the fused score for hybrid search.")
    text: str
    labels: list[str]
    matched_labels: list[str] = Field(
        default_factory=list, description="Labels of the moment named by the query."
    )
    entities: list[str] = Field(
        default_factory=list, description="Graph entities the query named and the moment has."
    )
    retrievers: list[Retriever] = Field(description="Which retrievers found the moment.")
    scores: dict[str, float] = Field(
        default_factory=dict, description="Each retriever's own score (cosine, RRF share)."
    )
    thumbnail_url: str | None = None


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
