"""Versioned, past-tense events carried by the pipeline's topics.

Records are pydantic models serialised with orjson. Every record names its type and schema
version, so a consumer can reject an unknown version with a clear reason instead of guessing.
Records carry references to media (paths, blob URIs), never pixels.
"""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from streams.errors import MalformedEvent, UnknownEventVersion

Seconds = Annotated[float, Field(ge=0)]
Score = Annotated[float, Field(ge=0, le=1)]
Box = tuple[float, float, float, float]


def _now() -> datetime:
    return datetime.now(UTC)


def _new_id() -> str:
    return uuid.uuid4().hex


class Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    version: Literal[1] = 1
    event_id: str = Field(default_factory=_new_id)
    occurred_at: datetime = Field(default_factory=_now)
    video_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")


class VideoUploaded(Event):
    type: Literal["VideoUploaded"] = "VideoUploaded"
    source: str = Field(min_length=1, max_length=2048)
    size_bytes: int = Field(ge=0)
    content_hash: str = Field(min_length=16, max_length=128)
    providers: tuple[str, ...] = ("local",)
    chunk_seconds: float | None = Field(default=None, gt=0)


class KeyframeRef(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    time: Seconds
    uri: str
    width: int = Field(gt=0)
    height: int = Field(gt=0)


class ChunkSpan(BaseModel):
    """The moment a chunk covers, shared by every per-chunk event."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str
    upload_id: str = Field(description="event_id of the VideoUploaded this chunk came from")
    chunk_index: int = Field(ge=0)
    chunk_count: int = Field(gt=0)
    start: Seconds
    end: Seconds
    video_duration: Seconds


class ChunkCut(Event):
    type: Literal["ChunkCut"] = "ChunkCut"
    span: ChunkSpan
    keyframes: tuple[KeyframeRef, ...]
    # Every decoded frame of the chunk as a tiny RGB thumbnail (.npz: frames uint8 (n, h, w, 3)
    # and times float64 (n,)), for shot-boundary detection. None when not produced.
    strip_uri: str | None = None
    # The chunk's audio as 16 kHz mono float32 PCM (.f32 little-endian); None without audio.
    audio_uri: str | None = None
    providers: tuple[str, ...] = ("local",)


class ObjectDetection(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    label: str
    score: Score
    box: Box
    time: Seconds


class Shot(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    start: Seconds
    end: Seconds
    keyframe: KeyframeRef | None = None


class OcrLine(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    text: str
    score: Score
    box: Box
    time: Seconds


class Word(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    word: str
    start: Seconds
    end: Seconds
    probability: Score | None = None


class TranscriptSegment(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    text: str
    start: Seconds
    end: Seconds
    words: tuple[Word, ...] = ()


class FaceDetection(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    score: Score
    box: Box
    time: Seconds


class Tag(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    label: str
    score: Score
    time: Seconds


class Caption(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    text: str
    time: Seconds
    source: str = Field(description="provider or model that wrote it")


class EntityMention(BaseModel):
    """A named entity read in the transcript or on screen (named-entity recognition)."""

    model_config = ConfigDict(frozen=True)

    text: str = Field(min_length=1, max_length=200)
    label: str = Field(description="the recogniser's label, e.g. PERSON, ORG, GPE")
    source: Literal["transcript", "ocr"]
    time: Seconds


class ChunkAnalysed(Event):
    type: Literal["ChunkAnalysed"] = "ChunkAnalysed"
    span: ChunkSpan
    keyframes: tuple[KeyframeRef, ...]
    shots: tuple[Shot, ...] = ()
    objects: tuple[ObjectDetection, ...] = ()
    ocr: tuple[OcrLine, ...] = ()
    transcript: tuple[TranscriptSegment, ...] = ()
    faces: tuple[FaceDetection, ...] = ()
    tags: tuple[Tag, ...] = ()
    captions: tuple[Caption, ...] = ()
    mentions: tuple[EntityMention, ...] = ()
    # An .npy blob: one visual embedding (float32 row) per keyframe, in keyframe order.
    keyframe_features_uri: str | None = None
    # name -> version of every model or provider whose output is in this event
    models: dict[str, str] = Field(default_factory=dict)
    # capability -> why it gave nothing (e.g. "not available: no weights present")
    unavailable: dict[str, str] = Field(default_factory=dict)
    cache_hit: bool = False


class MomentEmbedded(Event):
    type: Literal["MomentEmbedded"] = "MomentEmbedded"
    moment_id: str
    span: ChunkSpan
    text: str
    labels: tuple[str, ...] = ()
    thumbnail_uri: str | None = None
    model: str
    vector: tuple[float, ...]
    analysis_cache_hit: bool = False
    # The moment in the text space built from what was seen (class probabilities and
    # detections projected onto label embeddings, fused with on-screen text and speech).
    multimodal_vector: tuple[float, ...] | None = None
    # What the moment was built from, so the graph stage can derive entities and scene graphs.
    analysis: ChunkAnalysed | None = None


class NodeDelta(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    label: str
    key: str
    props: dict[str, Any] = Field(default_factory=dict)


class EdgeDelta(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    type: str
    start_label: str
    start_key: str
    end_label: str
    end_key: str
    # Distinguishes several relationships of one type between the same two nodes (e.g. one
    # CO_OCCURS per shot); None means at most one such relationship.
    key: str | None = None
    props: dict[str, Any] = Field(default_factory=dict)


class EdgeSet(BaseModel):
    """The relationships of one type that start at one node, named as a whole: a delta that
    lists an EdgeSet holds all of them, and the sink removes any other such relationship the
    node still has. A chunk's SIMILAR_TO neighbours are recomputed on each upload (the store
    has other videos by then); without this, every upload would add its picks to the last."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: str
    start_label: str
    start_key: str


class GraphUpdated(Event):
    """A delta to the knowledge graph. Neo4j is a materialised view of this topic."""

    type: Literal["GraphUpdated"] = "GraphUpdated"
    nodes: tuple[NodeDelta, ...] = ()
    edges: tuple[EdgeDelta, ...] = ()
    # Relationship sets this delta replaces whole (EdgeSet); absent from older events.
    replaces: tuple[EdgeSet, ...] = ()
    # The video was deleted (`vip delete`): the sink removes its subgraph and keeps a
    # DeletedVideo marker, so a late or replayed delta of the video does not bring it back.
    removed: bool = False


class LiveSegmentRecorded(Event):
    """A live feed's segment was written to the blob store (vip/live). ``video_id`` is the
    feed's id; ``segment_index`` and ``[start, end)`` place it on the feed's timeline (seconds
    from its first frame), which is what identifies it: a segment sent again after a reconnect
    or redelivered carries the same index and becomes the same moment downstream."""

    type: Literal["LiveSegmentRecorded"] = "LiveSegmentRecorded"
    segment_index: int = Field(ge=0)
    start: Seconds
    end: Seconds
    started_at: datetime = Field(description="wall-clock time the segment's first packet came")
    uri: str = Field(min_length=1, description="the segment's MP4 in the blob store")
    source: str = Field(min_length=1, max_length=2048)
    # The source ended (or the feed was stopped) with this segment: no segment follows it.
    final: bool = False


class FailedDelivery(Event):
    """What a failed event carries to a retry or dead-letter topic: why it failed, how many
    tries it had, where it came from, and its original bytes."""

    stage: str
    reason: str
    error_type: str = Field(description="module-qualified class of the exception")
    attempts: int = Field(ge=1, description="tries made so far, the first included")
    original_topic: str
    original_partition: int | None = None
    original_offset: int | None = None
    original_key: str | None = None
    payload: str = Field(description="The original value: UTF-8 text, or base64 when not UTF-8")
    payload_encoding: Literal["utf-8", "base64"] = "utf-8"
    # The first failure of an event that was retried before it got here; None otherwise.
    first_failed_at: datetime | None = None
    first_reason: str | None = None

    def original_value(self) -> bytes:
        if self.payload_encoding == "base64":
            return base64.b64decode(self.payload)
        return self.payload.encode("utf-8")


def payload_fields(value: bytes | None) -> dict[str, str]:
    """``payload`` and ``payload_encoding`` for a :class:`FailedDelivery` of ``value``."""
    raw = value or b""
    try:
        return {"payload": raw.decode("utf-8"), "payload_encoding": "utf-8"}
    except UnicodeDecodeError:
        return {"payload": base64.b64encode(raw).decode("ascii"), "payload_encoding": "base64"}


class DeadLettered(FailedDelivery):
    type: Literal["DeadLettered"] = "DeadLettered"


class RetryScheduled(FailedDelivery):
    """An event that failed for a reason a retry may cure, waiting on a retry topic."""

    type: Literal["RetryScheduled"] = "RetryScheduled"
    not_before: datetime


class DeadLetterReplayed(Event):
    """`vip dlq replay` sent a dead letter's original event back to its topic."""

    type: Literal["DeadLetterReplayed"] = "DeadLetterReplayed"
    letter_id: str = Field(description="event_id of the DeadLettered record")
    dead_letter_topic: str
    dead_letter_partition: int
    dead_letter_offset: int
    replayed_to: str


JobStatus = Literal["queued", "processing", "completed", "failed"]


class StageProgress(BaseModel):
    """Which chunks one stage has published output for, and when (Kafka message timestamps)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    chunks: tuple[int, ...] = Field(default=(), description="chunk indexes, sorted, no repeats")
    first_at: datetime | None = None
    last_at: datetime | None = None


class JobDeadLetter(BaseModel):
    """A dead letter of one upload, as its job shows it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    letter_id: str = Field(description="event_id of the DeadLettered record")
    stage: str
    reason: str
    error_type: str
    attempts: int = Field(ge=1)
    original_topic: str
    original_partition: int | None = None
    original_offset: int | None = None
    original_event_id: str | None = None
    chunk_index: int | None = Field(default=None, ge=0)
    at: datetime
    # When `vip dlq replay` sent it back, or its original event was seen again after it.
    replayed_at: datetime | None = None


class UploadProgress(BaseModel):
    """One upload of a video (one VideoUploaded event_id) and how far the pipeline took it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    upload_id: str | None = None
    source: str | None = None
    providers: tuple[str, ...] = ()
    size_bytes: int | None = None
    uploaded_at: datetime | None = Field(default=None, description="its VideoUploaded's time")
    started_at: datetime | None = Field(default=None, description="its earliest event's time")
    updated_at: datetime | None = None
    chunks_planned: int | None = Field(default=None, description="None until a chunk says")
    video_duration: float | None = None
    stages: dict[str, StageProgress] = Field(default_factory=dict)
    cache_hits: tuple[int, ...] = ()
    dead_letters: tuple[JobDeadLetter, ...] = ()


class JobState(Event):
    """The latest state of a video's job, materialised from the pipeline's topics and their
    dead letters by the jobs stage (agents/jobs); the compacted ``jobs`` topic keeps one per
    video."""

    type: Literal["JobState"] = "JobState"
    status: JobStatus = "queued"
    error: str | None = None
    failed_stage: str | None = None
    finished_at: datetime | None = None
    upload: UploadProgress = Field(default_factory=UploadProgress)
    # Other uploads of the same video whose order against ``upload`` is not settled yet
    # (their events arrived before their VideoUploaded), and uploads known to be older.
    other_uploads: tuple[UploadProgress, ...] = ()
    superseded_uploads: tuple[str, ...] = ()


class AlertClip(BaseModel):
    """The stretch of a video or live feed an alert is about: the matching moment's span."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    video_id: str
    start: Seconds
    end: Seconds


class AlertMatch(BaseModel):
    """What made a rule fire; which fields are set depends on the rule's kind."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["label", "text", "semantic"]
    label: str | None = None
    count: int | None = Field(default=None, ge=1, description="most seen in one keyframe")
    phrase: str | None = None
    source: Literal["ocr", "transcript"] | None = None
    excerpt: str | None = None
    query: str | None = None


class AlertRaised(Event):
    """An alert rule matched a moment (agents/alerts). ``video_id`` is the uploaded video's or
    the live feed's id. ``alert_id`` (also the event id) is derived from the rule and the
    moment, so a redelivered moment raises the same alert again, never a second one."""

    type: Literal["AlertRaised"] = "AlertRaised"
    alert_id: str = Field(min_length=1, max_length=64)
    rule_id: str = Field(min_length=1, max_length=64)
    rule_name: str
    moment_id: str
    clip: AlertClip
    matched: AlertMatch
    score: float = Field(ge=-1, le=1, description="cosine, detection or OCR confidence")
    # When the moment was embedded: occurred_at minus this is the alerting latency.
    moment_at: datetime
    thumbnail_uri: str | None = None


FeedState = Literal["registered", "running", "reconnecting", "stopped", "failed"]


class FeedRegistered(Event):
    """A live feed was registered (POST /v1/feeds). ``video_id`` is the feed's id: its live
    segments become moments of that video. The compacted ``feeds`` topic keeps the latest
    registration per feed; a tombstone (a record without a value) deletes the feed."""

    type: Literal["FeedRegistered"] = "FeedRegistered"
    source: str = Field(min_length=1, max_length=2048)
    segment_seconds: float = Field(gt=0, le=600)
    realtime: bool = True
    name: str | None = Field(default=None, max_length=200)
    labels: dict[str, str] = Field(default_factory=dict)


class FeedStatusChanged(Event):
    """What a feed runner (vip/feeds) last said about a feed; the compacted ``feeds.status``
    topic keeps the latest per feed id. ``registration_id`` is the event_id of the
    FeedRegistered it is about, so a status left from an earlier registration of the same id
    is told apart from the current one."""

    type: Literal["FeedStatusChanged"] = "FeedStatusChanged"
    registration_id: str = Field(min_length=1)
    state: FeedState
    detail: str | None = Field(default=None, description="why it is in this state, in words")
    segments_published: int = Field(default=0, ge=0)
    last_segment_at: datetime | None = None
    last_error: str | None = None
    restarts: int = Field(default=0, ge=0, description="runs started again after a crash")
    runner: str = Field(min_length=1, description="host:pid of the runner process")


E = TypeVar("E", bound=Event)


def encode(event: Event) -> bytes:
    return orjson.dumps(event.model_dump(mode="json"))


def decode(raw: bytes | str | None, record: type[E]) -> E:
    """Parse and validate one record; raise a domain error that says exactly what is wrong."""
    if raw is None:
        raise MalformedEvent("empty message value")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise MalformedEvent(f"value is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise MalformedEvent(f"value is a JSON {type(data).__name__}, expected an object")
    expected_type = record.model_fields["type"].default
    if data.get("type") != expected_type:
        raise MalformedEvent(f"expected a {expected_type} event, got type={data.get('type')!r}")
    if data.get("version") != 1:
        raise UnknownEventVersion(
            f"{expected_type} version {data.get('version')!r} is not supported (known: 1)"
        )
    try:
        return record.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
            for err in exc.errors()
        )
        raise MalformedEvent(f"invalid {expected_type}: {problems}") from exc
