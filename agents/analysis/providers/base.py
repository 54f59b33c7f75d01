"""What every external analysis provider offers, and the errors it may raise.

A provider turns keyframes into the ``ChunkAnalysed`` vocabulary (objects, OCR lines, faces,
tags, captions, shots, transcript, entity mentions). Its errors say what the stage should do
with the event: retry it later (:class:`ProviderUnavailable`) or dead-letter it
(:class:`ProviderRejected`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from streams.records import (
    Caption,
    EntityMention,
    FaceDetection,
    ObjectDetection,
    OcrLine,
    Shot,
    Tag,
    TranscriptSegment,
)

__all__ = [
    "KeyframeImage",
    "Provider",
    "ProviderError",
    "ProviderRejected",
    "ProviderResult",
    "ProviderUnavailable",
    "clip_box",
    "merge_results",
]


class ProviderError(RuntimeError):
    """Root of the providers' errors."""


class ProviderUnavailable(ProviderError):
    """Transient: throttled, a 5xx, a timeout or a lost connection. Retrying may help."""


class ProviderRejected(ProviderError):
    """Permanent: bad image, access denied, invalid request, or a provider not configured."""


@dataclass(frozen=True, slots=True)
class KeyframeImage:
    """One keyframe as JPEG bytes, with its time in the video (seconds) and its pixel size."""

    time: float
    jpeg: bytes
    width: int
    height: int

    def __post_init__(self) -> None:
        if self.time < 0:
            raise ValueError(f"keyframe time must be >= 0, got {self.time}")
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"keyframe size must be positive, got {self.width}x{self.height}")
        if not self.jpeg:
            raise ValueError("keyframe has no image bytes")


@dataclass(frozen=True)
class ProviderResult:
    """What a provider found; ``models`` maps each provider/model name to its version."""

    objects: tuple[ObjectDetection, ...] = ()
    ocr: tuple[OcrLine, ...] = ()
    faces: tuple[FaceDetection, ...] = ()
    tags: tuple[Tag, ...] = ()
    captions: tuple[Caption, ...] = ()
    shots: tuple[Shot, ...] = ()
    transcript: tuple[TranscriptSegment, ...] = ()
    mentions: tuple[EntityMention, ...] = ()
    models: dict[str, str] = field(default_factory=dict)
    # capability -> why it gave nothing (a slot with no weights, a model not deployed)
    unavailable: dict[str, str] = field(default_factory=dict)
    # One visual embedding per keyframe, in keyframe order (the local tagger gives them).
    keyframe_features: np.ndarray | None = None


def merge_results(results: Iterable[ProviderResult]) -> ProviderResult:
    """Concatenate several providers' findings, in the order given."""
    parts = list(results)
    models: dict[str, str] = {}
    unavailable: dict[str, str] = {}
    for part in parts:
        models.update(part.models)
        unavailable.update(part.unavailable)
    return ProviderResult(
        objects=tuple(x for p in parts for x in p.objects),
        ocr=tuple(x for p in parts for x in p.ocr),
        faces=tuple(x for p in parts for x in p.faces),
        tags=tuple(x for p in parts for x in p.tags),
        captions=tuple(x for p in parts for x in p.captions),
        shots=tuple(x for p in parts for x in p.shots),
        transcript=tuple(x for p in parts for x in p.transcript),
        mentions=tuple(x for p in parts for x in p.mentions),
        models=models,
        unavailable=unavailable,
        keyframe_features=next(
            (p.keyframe_features for p in parts if p.keyframe_features is not None), None
        ),
    )


def clip_box(x1: float, y1: float, x2: float, y2: float) -> tuple[float, float, float, float]:
    """A box as fractions of the image, clipped to [0, 1] (providers may overshoot the edge)."""

    def clip(value: float) -> float:
        return round(min(1.0, max(0.0, float(value))), 4)

    return (clip(x1), clip(y1), clip(x2), clip(y2))


@runtime_checkable
class Provider(Protocol):
    """An external analysis service. Calls block: run them off the event loop."""

    name: str

    def version(self) -> str:
        """The provider's version, for ``ChunkAnalysed.models``."""
        ...

    def analyse_keyframes(self, frames: Sequence[KeyframeImage]) -> ProviderResult:
        """Analyse each keyframe; results carry each frame's ``time``."""
        ...
