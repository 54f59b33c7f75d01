"""What each pipeline record does to the progress of the upload it belongs to (pure)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from functools import partial
from operator import attrgetter
from typing import Final, TypeVar

from agents.jobs.letters import job_letter, letter_origin
from streams.records import (
    ChunkAnalysed,
    ChunkCut,
    DeadLettered,
    Event,
    GraphUpdated,
    JobDeadLetter,
    MomentEmbedded,
    StageProgress,
    UploadProgress,
    VideoUploaded,
)

MAX_LETTERS: Final = 50
T = TypeVar("T")
Apply = Callable[[UploadProgress], UploadProgress]


def stage(upload: UploadProgress, name: str) -> StageProgress:
    return upload.stages.get(name) or StageProgress()


def change(record: Event, at: datetime) -> tuple[str | None, Apply] | None:
    """The upload a record is about (None: the shown one) and what it does to its progress."""
    if isinstance(record, VideoUploaded):
        return record.event_id, partial(_uploaded, record=record, at=at)
    if isinstance(record, ChunkCut | ChunkAnalysed | MomentEmbedded):
        span = record.span
        name = {ChunkCut: "chunking", ChunkAnalysed: "analysis"}.get(type(record), "embedding")
        cache_hit = isinstance(record, ChunkAnalysed) and record.cache_hit
        apply = partial(
            _published,
            name=name,
            index=span.chunk_index,
            at=at,
            chunk_count=span.chunk_count,
            duration=span.video_duration,
            source=span.source,
            cache_hit=cache_hit,
        )
        return span.upload_id, apply
    if isinstance(record, GraphUpdated):
        return _graphed(record, at)
    if isinstance(record, DeadLettered):
        origin = letter_origin(record)
        return origin.upload_id, partial(_lettered, letter=job_letter(record, origin, at))
    return None


def _uploaded(upload: UploadProgress, *, record: VideoUploaded, at: datetime) -> UploadProgress:
    return upload.model_copy(
        update={
            "source": record.source,
            "providers": record.providers,
            "size_bytes": record.size_bytes,
            "uploaded_at": earliest(upload.uploaded_at, at),
        }
    )


def _published(
    upload: UploadProgress,
    *,
    name: str,
    index: int,
    at: datetime,
    chunk_count: int | None,
    duration: float | None = None,
    source: str | None = None,
    cache_hit: bool = False,
) -> UploadProgress:
    """A stage published its output for one chunk."""
    before = stage(upload, name)
    after = StageProgress(
        chunks=_with(before.chunks, index),
        first_at=earliest(before.first_at, at),
        last_at=latest(before.last_at, at),
    )
    update: dict[str, object] = {
        "stages": {**upload.stages, name: after},
        "chunks_planned": _first(upload.chunks_planned, chunk_count),
        "video_duration": _first(upload.video_duration, duration),
        "source": upload.source or source,
    }
    if cache_hit:
        update["cache_hits"] = _with(upload.cache_hits, index)
    return upload.model_copy(update=update)


def _graphed(record: GraphUpdated, at: datetime) -> tuple[str | None, Apply] | None:
    """The graph stage's delta for a chunk; other deltas (job status) are no progress."""
    count = next((n.props.get("chunk_count") for n in record.nodes if n.label == "Video"), None)
    for node in record.nodes:
        index, upload_id = node.props.get("index"), node.props.get("upload_id")
        if node.label == "Chunk" and isinstance(index, int) and isinstance(upload_id, str):
            apply = partial(
                _published,
                name="graph",
                index=index,
                at=at,
                chunk_count=count if isinstance(count, int) else None,
            )
            return upload_id, apply
    return _planned(record)


def _planned(record: GraphUpdated) -> tuple[str | None, Apply] | None:
    """The chunking stage's "processing" delta: it has probed the video and planned its cut."""
    for node in record.nodes:
        upload_id, count = node.props.get("upload_id"), node.props.get("chunk_count")
        if node.label == "Video" and isinstance(upload_id, str) and isinstance(count, int):
            duration = node.props.get("duration")
            known = duration if isinstance(duration, int | float) else None
            return upload_id, partial(_with_plan, count=count, duration=known)
    return None


def _with_plan(upload: UploadProgress, *, count: int, duration: float | None) -> UploadProgress:
    return upload.model_copy(
        update={
            "chunks_planned": _first(upload.chunks_planned, count),
            "video_duration": _first(upload.video_duration, duration),
        }
    )


def _lettered(upload: UploadProgress, *, letter: JobDeadLetter) -> UploadProgress:
    if any(lt.letter_id == letter.letter_id for lt in upload.dead_letters):
        return upload
    letters = sorted((*upload.dead_letters, letter), key=attrgetter("at"))[-MAX_LETTERS:]
    return upload.model_copy(update={"dead_letters": tuple(letters)})


# Small helpers ----------------------------------------------------------------------------


def _with(indexes: Iterable[int], index: int) -> tuple[int, ...]:
    return tuple(sorted({*indexes, index}))


def _first(known: T | None, candidate: T | None) -> T | None:
    """What an earlier event said, else this one's: every event of an upload agrees."""
    return known if known is not None else candidate


def earliest(current: datetime | None, at: datetime) -> datetime:
    return at if current is None or at < current else current


def latest(current: datetime | None, at: datetime) -> datetime:
    return at if current is None or at > current else current
