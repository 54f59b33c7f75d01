"""Typed graph traversals (``POST /v1/graph/query``) and the video moment schemas (v1).

A traversal is one of four request shapes, told apart by ``kind``; the response names the
same ``kind``. Entity names are matched the way the graph merges them (``normalise``), so
"The Bicycle" finds ``object:bicycle``.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from agents.graph.knowledge import normalise
from query_service.schemas import Integer

# Entity kinds the graph stage writes: detections, ImageNet tags, face tracks and the
# lower-case named-entity labels (docs/graph.md).
EntityKind = Literal[
    "object",
    "tag",
    "face",
    "person",
    "org",
    "gpe",
    "loc",
    "norp",
    "fac",
    "product",
    "event",
    "work_of_art",
    "law",
    "language",
]
ENTITY_KINDS: tuple[str, ...] = EntityKind.__args__  # type: ignore[attr-defined]

MAX_ENTITY_CHARS = 200
MAX_VIDEO_FILTER = 100
MAX_PATH_HOPS = 8
MAX_NEIGHBOUR_SHOTS = 10
MAX_TIME_S = 1_000_000.0

VIDEO_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
SHOT_KEY_PATTERN = r"^[A-Za-z0-9_-]{1,64}:shot:[0-9]{9}$"
VideoIdStr = Annotated[str, StringConstraints(pattern=VIDEO_ID_PATTERN)]
ShotKeyStr = Annotated[str, StringConstraints(pattern=SHOT_KEY_PATTERN)]
# A graph traversal's query runs for at most this long (seconds).
QUERY_TIMEOUT_S = 10.0
# A character that normalising keeps: not white space, "_" or the punctuation trimmed from the
# ends (agents.graph.knowledge.normalise). A name needs one to name anything.
ENTITY_NAME_PATTERN = "[^\\s_\"'`.,;:!?()\\[\\]{}<>\u00ab\u00bb\u201c\u201d\u2018\u2019]"
_NAMING_CHARACTER = re.compile(ENTITY_NAME_PATTERN)


class _Strict(BaseModel):
    # Strict: "5" is not a top_k nor 0 a boolean; the request must say what the schema says.
    model_config = ConfigDict(extra="forbid", strict=True)


class EntityRef(_Strict):
    """An entity by name (matched after normalisation) and, optionally, kind."""

    name: str = Field(
        min_length=1,
        max_length=MAX_ENTITY_CHARS,
        json_schema_extra={"pattern": ENTITY_NAME_PATTERN},
    )
    kind: EntityKind | None = None

    @field_validator("name")
    @classmethod
    def _has_a_normal_form(cls, value: str) -> str:
        if not _NAMING_CHARACTER.search(value) or not normalise(value):
            raise ValueError("names no entity once normalised (only spaces or punctuation)")
        return value

    @property
    def normalised(self) -> str:
        return normalise(self.name)

    def candidate_keys(self) -> list[str]:
        """Every graph key (entity or alias) this reference may name."""
        kinds = (self.kind,) if self.kind else ENTITY_KINDS
        return [f"{kind}:{self.normalised}" for kind in kinds]

    def describe(self) -> str:
        kind = f" of kind {self.kind}" if self.kind else ""
        return f"entity named {self.name!r}{kind} (normalised {self.normalised!r})"


def _entity_shorthand(value: object) -> object:
    return {"name": value} if isinstance(value, str) else value


EntityArg = Annotated[EntityRef, BeforeValidator(_entity_shorthand)]
VideoFilter = Annotated[list[VideoIdStr] | None, Field(max_length=MAX_VIDEO_FILTER)]


class AppearsQuery(_Strict):
    """Where an entity appears (is seen or mentioned): shots, times and scores."""

    kind: Literal["appears"]
    entity: EntityArg
    video_ids: VideoFilter = None
    limit: Integer = Field(default=50, ge=1, le=200)


class WithQuery(_Strict):
    """What appears in the same shots as an entity, most frequent first."""

    kind: Literal["with"]
    entity: EntityArg
    video_ids: VideoFilter = None
    limit: Integer = Field(default=20, ge=1, le=100)


class PathQuery(_Strict):
    """The shortest chain of shots and entities linking two entities."""

    # Only "from" and "to", as the schema says (not also the field names).
    model_config = ConfigDict(extra="forbid", strict=True)

    kind: Literal["path"]
    source: EntityArg = Field(alias="from")
    target: EntityArg = Field(alias="to")
    max_hops: Integer = Field(default=6, ge=1, le=MAX_PATH_HOPS)


class AroundQuery(_Strict):
    """The shots just before and after a moment (a time in a video, or a shot key)."""

    # Exactly one anchor, said in the schema too; that the shot is of video_id cannot be.
    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "oneOf": [
                {"required": ["time"], "properties": {"time": {"type": "number"}}},
                {"required": ["shot"], "properties": {"shot": {"type": "string"}}},
            ]
        },
    )

    kind: Literal["around"]
    video_id: VideoIdStr
    time: float | None = Field(default=None, ge=0, le=MAX_TIME_S)
    shot: ShotKeyStr | None = None
    before: Integer = Field(default=2, ge=0, le=MAX_NEIGHBOUR_SHOTS)
    after: Integer = Field(default=2, ge=0, le=MAX_NEIGHBOUR_SHOTS)

    @model_validator(mode="after")
    def _one_anchor(self) -> AroundQuery:
        if (self.time is None) == (self.shot is None):
            raise ValueError("give exactly one of time or shot")
        if self.shot is not None and not self.shot.startswith(f"{self.video_id}:shot:"):
            raise ValueError(f"shot {self.shot!r} is not a shot of video {self.video_id!r}")
        return self


GraphQuery = Annotated[
    AppearsQuery | WithQuery | PathQuery | AroundQuery, Field(discriminator="kind")
]


# Responses -------------------------------------------------------------------------------


class EntityPublic(BaseModel):
    key: str
    kind: str
    name: str


class ShotMoment(BaseModel):
    """One shot of a video: a moment with its keyframe thumbnail and what is in it."""

    video_id: str
    source: str | None
    shot: str
    start: float
    end: float
    score: float | None = None
    thumbnail_url: str | None = None
    entities: list[EntityPublic] = []


class Appearance(ShotMoment):
    times: list[float]
    how: list[Literal["seen", "mentioned"]]


class AppearsResult(BaseModel):
    kind: Literal["appears"] = "appears"
    entities: list[EntityPublic]
    data: list[Appearance]
    count: int


class CoOccurrence(BaseModel):
    entity: EntityPublic
    shots: int
    videos: int
    moments: list[ShotMoment]


class WithResult(BaseModel):
    kind: Literal["with"] = "with"
    entities: list[EntityPublic]
    data: list[CoOccurrence]
    count: int


class EntityNode(BaseModel):
    type: Literal["entity"] = "entity"
    entity: EntityPublic


class ShotNode(BaseModel):
    type: Literal["shot"] = "shot"
    moment: ShotMoment


PathNode = Annotated[EntityNode | ShotNode, Field(discriminator="type")]


class PathResult(BaseModel):
    kind: Literal["path"] = "path"
    source: list[EntityPublic] = Field(serialization_alias="from")
    target: list[EntityPublic] = Field(serialization_alias="to")
    found: bool
    hops: int | None
    nodes: list[PathNode]
    relationships: list[str]


class Neighbour(ShotMoment):
    offset: int = Field(description="shots from the anchor: negative before, 0 the anchor")


class AroundResult(BaseModel):
    kind: Literal["around"] = "around"
    video_id: str
    anchor: str
    data: list[Neighbour]
    count: int


GraphResult = Annotated[
    AppearsResult | WithResult | PathResult | AroundResult, Field(discriminator="kind")
]


class ChunkMoment(BaseModel):
    """A chunk of a video (the unit of search), with its shots."""

    video_id: str
    source: str | None
    index: int
    start: float
    end: float
    score: float | None = None
    text: str | None = None
    labels: list[str] = []
    thumbnail_url: str | None = None
    entities: list[EntityPublic] = []
    shots: list[ShotMoment] = []


class VideoMoments(BaseModel):
    video_id: str
    data: list[ChunkMoment]
    count: int = Field(description="chunks of the video, all pages together")
