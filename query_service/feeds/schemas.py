"""What POST /v1/feeds takes and what the feed routes answer."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from agents.shared.sources import redacted
from streams.records import FeedRegistered, FeedState, FeedStatusChanged

# A feed's id is the video id of its moments and a folder of the blob store (live/<id>/): a
# video id without ":" (vip.live.publisher.FeedSpec's rule), and neither "." nor "..".
FEED_ID_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
# Uploaded videos are named by their content ("v" and 16 hex digits): not for feeds.
_UPLOAD_ID = re.compile(r"v[0-9a-f]{16}")
LABEL_KEY_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,62}$"
MAX_LABELS = 20
MIN_SEGMENT_S = 1.0
MAX_SEGMENT_S = 300.0

FeedId = Annotated[str, StringConstraints(pattern=FEED_ID_PATTERN)]
LabelKey = Annotated[str, StringConstraints(pattern=LABEL_KEY_PATTERN)]
LabelValue = Annotated[str, StringConstraints(max_length=200)]


def new_feed_id() -> str:
    """A generated feed id: "f" and 16 hex digits, never an uploaded video's."""
    return f"f{uuid.uuid4().hex[:16]}"


class FeedCreate(BaseModel):
    # Strict: "5" is not a number of seconds; the request must say what the schema says.
    model_config = ConfigDict(extra="forbid", strict=True)

    feed_id: FeedId | None = Field(
        default=None, description="The feed's id and its moments' video id; generated if absent"
    )
    source: str = Field(
        min_length=1,
        max_length=2048,
        description="An rtsp, rtmp or http(s) (HLS) URL, or an absolute path to a video file "
        "under the server's allowed source roots",
        examples=["rtsp://camera.example.com/stream1"],
    )
    segment_seconds: float = Field(
        default=5.0,
        ge=MIN_SEGMENT_S,
        le=MAX_SEGMENT_S,
        description="Segment length (cuts fall on the first keyframe after it)",
    )
    realtime: bool = Field(default=True, description="Read a file at its own pace, as if live")
    name: str | None = Field(default=None, min_length=1, max_length=200)
    labels: dict[LabelKey, LabelValue] = Field(default_factory=dict, max_length=MAX_LABELS)

    @field_validator("feed_id")
    @classmethod
    def _not_an_upload_id(cls, value: str | None) -> str | None:
        if value is not None and _UPLOAD_ID.fullmatch(value):
            raise ValueError(
                f"{value!r} has the form of an uploaded video's id (v and 16 hex digits)"
            )
        if value in {".", ".."}:
            raise ValueError(f"{value!r} is not a feed id")
        return value


class FeedPublic(BaseModel):
    feed_id: str
    source: str = Field(description="The source, any password in its URL replaced by ***")
    segment_seconds: float
    realtime: bool
    name: str | None
    labels: dict[str, str]
    registered_at: datetime
    status: FeedState = Field(
        description="registered: no runner has reported on it yet; running; reconnecting: "
        "waiting to start again after a crash; stopped: deleted, ended or its runner shut "
        "down; failed: its source was refused or it crashed too often"
    )
    detail: str | None = Field(description="Why it is in this state, in words")
    segments_published: int = Field(description="Segments on the segments topic, this run")
    last_segment_at: datetime | None = Field(description="Wall-clock start of the latest one")
    last_error: str | None
    restarts: int = Field(description="Runs started again after a crash")
    runner: str | None = Field(description="host:pid of the runner reporting on it")
    status_at: datetime | None = Field(description="When the runner reported last")


class FeedsPublic(BaseModel):
    data: list[FeedPublic]
    count: int


def feed_public(registration: FeedRegistered, status: FeedStatusChanged | None) -> FeedPublic:
    """A feed as the API shows it. A status about another registration of the same id (an
    earlier one, deleted since) is not this feed's: it is "registered" until a runner says."""
    if status is not None and status.registration_id != registration.event_id:
        status = None
    return FeedPublic(
        feed_id=registration.video_id,
        source=redacted(registration.source),
        segment_seconds=registration.segment_seconds,
        realtime=registration.realtime,
        name=registration.name,
        labels=dict(registration.labels),
        registered_at=registration.occurred_at,
        status=status.state if status else "registered",
        detail=status.detail if status else None,
        segments_published=status.segments_published if status else 0,
        last_segment_at=status.last_segment_at if status else None,
        last_error=status.last_error if status else None,
        restarts=status.restarts if status else 0,
        runner=status.runner if status else None,
        status_at=status.occurred_at if status else None,
    )
