"""Request and response schemas of the query API (v1)."""

from __future__ import annotations

import math
import re
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)

MAX_QUERY_CHARS = 1000
MAX_TOP_K = 100
MAX_FILTER_VALUES = 100
MAX_FILTER_LABELS = 20
# Video ids as the pipeline makes them (and as agents.shared.milvus_store.id_literal accepts).
VIDEO_ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"
# Detection and tag labels: lower-case words, as the analysis writes them ("mountain bike",
# "jack-o'-lantern"). Nothing that closes a quoted string or is a LIKE wildcard (% and _).
LABEL_PATTERN = r"^[a-z0-9][a-z0-9 '-]{0,63}$"
# A label as a client may write it: any case and runs of spaces, which normalising removes.
LABEL_INPUT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 '-]{0,63}$"
# Text with something in it besides white space (str.strip's white space, as Python's \s).
NOT_BLANK_PATTERN = r"\S"
MAX_TIME_S = 7 * 24 * 3600.0
_VIDEO_ID = re.compile(VIDEO_ID_PATTERN)
_LABEL_INPUT = re.compile(LABEL_INPUT_PATTERN)

Retriever = Literal["text", "multimodal", "visual", "vector", "graph", "keyword"]


class _Strict(BaseModel):
    # Strict: "5" is not a top_k nor 0 a boolean; the request must say what the schema says.
    model_config = ConfigDict(extra="forbid", strict=True)


def _whole_number(value: object) -> object:
    # JSON Schema's "integer" is any number without a fraction, 5.0 too; strict mode alone would
    # refuse it (and rightly still refuses "5" and true).
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


Integer = Annotated[int, BeforeValidator(_whole_number)]

# Patterns are checked with re.fullmatch, so "$" cannot match before a final newline: the same
# strings JSON Schema's pattern admits, which is what the published schema says.


def _video_id(value: str) -> str:
    if not _VIDEO_ID.fullmatch(value):
        raise ValueError(f"not a video id: {value[:80]!r} (1 to 64 of A-Z a-z 0-9 _ . : -)")
    return value


def _label(value: str) -> str:
    if not _LABEL_INPUT.fullmatch(value):
        raise ValueError(
            f"not a label: {value[:80]!r} (a letter or digit, then up to 63 letters, digits, "
            "spaces, ' and -)"
        )
    return " ".join(value.lower().split())


VideoId = Annotated[
    str,
    AfterValidator(_video_id),
    WithJsonSchema({"type": "string", "pattern": VIDEO_ID_PATTERN}),
]
Label = Annotated[
    str,
    AfterValidator(_label),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": LABEL_INPUT_PATTERN,
            "description": "Matched in lower case with single spaces.",
        }
    ),
]


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

    video_ids: list[VideoId] | None = Field(
        default=None, min_length=1, max_length=MAX_FILTER_VALUES
    )
    time_range: TimeRange | None = None
    labels: list[Label] | None = Field(default=None, min_length=1, max_length=MAX_FILTER_LABELS)


class SearchRequest(_Strict):
    # The schema says it too: not video_ids both at the top level and in filters.
    model_config = ConfigDict(
        json_schema_extra={
            "not": {
                "required": ["video_ids", "filters"],
                "properties": {
                    "video_ids": {"type": "array"},
                    "filters": {
                        "required": ["video_ids"],
                        "properties": {"video_ids": {"type": "array"}},
                    },
                },
            }
        }
    )

    query: str = Field(
        min_length=1,
        max_length=MAX_QUERY_CHARS,
        json_schema_extra={"pattern": NOT_BLANK_PATTERN},
    )
    top_k: Integer = Field(default=5, ge=1, le=MAX_TOP_K)
    filters: SearchFilters = Field(default_factory=SearchFilters)
    # Before filters existed the video ids were given at the top level; still accepted.
    video_ids: list[VideoId] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_FILTER_VALUES,
        description="Deprecated: use filters.video_ids (not both).",
        json_schema_extra={"deprecated": True},
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

    model_config = ConfigDict(
        json_schema_extra={
            "not": {
                "required": ["vector", "graph", "keyword"],
                "properties": {name: {"const": 0} for name in ("vector", "graph", "keyword")},
            }
        }
    )

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
    rrf_k: Integer = Field(default=60, ge=1, le=1000)


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


class ErrorPublic(BaseModel):
    """Every refusal other than request validation (which is HTTPValidationError)."""

    detail: str = Field(description="What was wrong, in words.")


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    checks: dict[str, str]
