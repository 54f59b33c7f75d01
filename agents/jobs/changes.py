"""What each pipeline record does to the progress of the upload it belongs to (pure).

Every event of an upload agrees on its chunk count and duration, so the first one seen is
kept. A live feed is the exception (its upload id is ``live:<feed id>``, agents/live): while it
runs, each chunk says one more chunk follows its own (``index + 2``) and only the final
segment's chunk and Video delta say the true count, so its counts and its timeline only grow
and the largest seen is kept. A job then stays "processing" while the feed runs: whatever its
largest count, the chunk that would complete it has not been cut yet (a running chunk ``n``
raises the count to ``n + 2``), and only the final chunk can be the last one planned.
"""

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
# agents.live.core.feed_upload_id: every chunk of a live feed belongs to this one "upload".
LIVE_UPLOAD_PREFIX: Final = "live:"
T = TypeVar("T")
N = TypeVar("N", int, float)
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
        # A running feed's video_duration reaches one segment past the chunk; its end is known.
        live = is_live_upload(span.upload_id)
        apply = partial(
            _published,
            name=name,
            index=span.chunk_index,
            at=at,
            chunk_count=span.chunk_count,
            duration=span.end if live else span.video_duration,
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
        **_plan(upload, chunk_count, duration),
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
    return upload.model_copy(update=_plan(upload, count, duration))


def is_live_upload(upload_id: str | None) -> bool:
    return upload_id is not None and upload_id.startswith(LIVE_UPLOAD_PREFIX)


def _plan(upload: UploadProgress, count: int | None, duration: float | None) -> dict[str, object]:
    """The upload's chunk count and duration after an event that says ``count`` and
    ``duration``: the first said, or for a live feed the largest (see the module's doc)."""
    if is_live_upload(upload.upload_id):
        return {
            "chunks_planned": _largest(upload.chunks_planned, count),
            "video_duration": _largest(upload.video_duration, duration),
        }
    return {
        "chunks_planned": _first(upload.chunks_planned, count),
        "video_duration": _first(upload.video_duration, duration),
    }


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


def _largest(known: N | None, candidate: N | None) -> N | None:
    if known is None or candidate is None:
        return candidate if known is None else known
    return max(known, candidate)


def earliest(current: datetime | None, at: datetime) -> datetime:
    return at if current is None or at < current else current


def latest(current: datetime | None, at: datetime) -> datetime:
    return at if current is None or at > current else current
