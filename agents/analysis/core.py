"""Pure assembly of one chunk's analysis from what the providers found."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from agents.analysis.inference.entities import NamedEntity
from agents.analysis.providers.base import ProviderResult
from streams.records import (
    ChunkAnalysed,
    ChunkCut,
    EntityMention,
    KeyframeRef,
    OcrLine,
    Shot,
    TranscriptSegment,
)

# EntityMention.text's limit: a longer "entity" is a misread run of text, not a name.
MAX_MENTION_CHARS = 200


@dataclass(frozen=True, slots=True)
class EntitySource:
    """A text that named entities are read from, and where and when it was said or shown."""

    source: Literal["transcript", "ocr"]
    text: str
    time: float


def keyframe_for(shot: Shot, keyframes: tuple[KeyframeRef, ...]) -> KeyframeRef | None:
    """The keyframe that best represents a shot: the one inside it nearest its middle, or,
    when the shot is too short to contain one, the nearest keyframe overall."""
    if not keyframes:
        return None
    middle = (shot.start + shot.end) / 2
    inside = [k for k in keyframes if shot.start <= k.time < shot.end]
    return min(inside or keyframes, key=lambda k: abs(k.time - middle))


def representatives(shots: Sequence[Shot], times: Sequence[float]) -> list[int]:
    """Indexes of the keyframes (by time) that represent the shots, one per shot, in order."""
    if not times:
        return []
    chosen = set()
    for shot in shots:
        middle = (shot.start + shot.end) / 2
        inside = [i for i, t in enumerate(times) if shot.start <= t < shot.end]
        chosen.add(min(inside or range(len(times)), key=lambda i: abs(times[i] - middle)))
    return sorted(chosen)


def entity_sources(
    transcript: Sequence[TranscriptSegment], ocr: Sequence[OcrLine]
) -> list[EntitySource]:
    """The chunk's texts for named-entity recognition, blank ones left out: each transcript
    segment at its start, then each OCR line at its keyframe's time."""
    sources = [EntitySource("transcript", segment.text, segment.start) for segment in transcript]
    sources += [EntitySource("ocr", line.text, line.time) for line in ocr]
    return [source for source in sources if source.text.strip()]


def mentions_in(
    sources: Sequence[EntitySource], entities: Sequence[Sequence[NamedEntity]]
) -> tuple[EntityMention, ...]:
    """Each source's entities (``entities[i]`` found in ``sources[i]``) as mentions at the
    source's time, in order."""
    if len(sources) != len(entities):
        raise ValueError(f"{len(entities)} entity lists for {len(sources)} texts")
    return tuple(
        EntityMention(text=entity.text, label=entity.label, source=source.source, time=source.time)
        for source, found in zip(sources, entities, strict=True)
        for entity in found
        if entity.text.strip() and len(entity.text) <= MAX_MENTION_CHARS
    )


def within(found: ProviderResult, start: float, end: float) -> ProviderResult:
    """A whole-video result cut down to one chunk: timed findings inside [start, end), the
    transcript segments overlapping it, the shots left for :func:`clip_shots`."""

    def inside(t: float) -> bool:
        return start <= t < end

    return ProviderResult(
        objects=tuple(x for x in found.objects if inside(x.time)),
        ocr=tuple(x for x in found.ocr if inside(x.time)),
        faces=tuple(x for x in found.faces if inside(x.time)),
        tags=tuple(x for x in found.tags if inside(x.time)),
        captions=tuple(x for x in found.captions if inside(x.time)),
        mentions=tuple(x for x in found.mentions if inside(x.time)),
        shots=found.shots,
        transcript=tuple(s for s in found.transcript if s.start < end and s.end > start),
        models=found.models,
        unavailable=found.unavailable,
    )


def clip_shots(shots: tuple[Shot, ...], start: float, end: float) -> tuple[Shot, ...]:
    """Shots limited to the chunk's range (providers may report whole-video shots)."""
    clipped = []
    for shot in shots:
        lo, hi = max(shot.start, start), min(shot.end, end)
        if hi > lo:
            clipped.append(Shot(start=round(lo, 6), end=round(hi, 6), keyframe=shot.keyframe))
    return tuple(clipped) or (Shot(start=start, end=end),)


def assemble(chunk: ChunkCut, found: ProviderResult) -> ChunkAnalysed:
    span = chunk.span
    shots = tuple(
        Shot(start=s.start, end=s.end, keyframe=s.keyframe or keyframe_for(s, chunk.keyframes))
        for s in clip_shots(found.shots, span.start, span.end)
    )
    return ChunkAnalysed(
        video_id=chunk.video_id,
        span=span,
        keyframes=chunk.keyframes,
        shots=shots,
        objects=found.objects,
        ocr=found.ocr,
        transcript=found.transcript,
        faces=found.faces,
        tags=found.tags,
        captions=found.captions,
        mentions=found.mentions,
        models=dict(sorted(found.models.items())),
        unavailable=dict(sorted(found.unavailable.items())),
    )
