"""Pure mapping from model outputs to the ChunkAnalysed schema."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from streams.records import ChunkAnalysed, ChunkCut, ObjectDetection


class DetectionLike(Protocol):
    @property
    def label(self) -> str: ...
    @property
    def score(self) -> float: ...
    @property
    def box(self) -> tuple[float, float, float, float]: ...


def analysed(
    chunk: ChunkCut,
    detections_per_keyframe: Sequence[Sequence[DetectionLike]],
    models: dict[str, str],
    min_score: float,
) -> ChunkAnalysed:
    if len(detections_per_keyframe) != len(chunk.keyframes):
        raise ValueError(
            f"{len(detections_per_keyframe)} detection lists for {len(chunk.keyframes)} keyframes"
        )
    objects = tuple(
        ObjectDetection(
            label=d.label,
            score=round(float(d.score), 4),
            box=tuple(round(float(v), 4) for v in d.box),  # type: ignore[arg-type]
            time=frame.time,
        )
        for frame, detections in zip(chunk.keyframes, detections_per_keyframe, strict=True)
        for d in detections
        if d.score >= min_score
    )
    return ChunkAnalysed(
        video_id=chunk.video_id,
        span=chunk.span,
        keyframes=chunk.keyframes,
        objects=objects,
        models=models,
    )
