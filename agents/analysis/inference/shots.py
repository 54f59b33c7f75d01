"""Shot boundaries of a chunk through the ``shot_boundaries`` Triton model
(``triton_models/shot_boundaries``).

The model takes the chunk's thumbnail strip (the ``.npz`` that
:mod:`agents.chunking.strip` writes, referenced by ``ChunkCut.strip_uri``) and answers where
its shots change. Frame numbers index the strip; times are the strip's presentation times.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, cast, get_args

from agents.shared.errors import InferenceError
from agents.shared.triton_client import TritonClient
from streams.records import Shot

__all__ = [
    "SHOT_MODEL",
    "BoundaryKind",
    "ShotBoundary",
    "ShotList",
    "ShotSpan",
    "detect_shots",
]

SHOT_MODEL: Final = "shot_boundaries"
_STRIP_INPUT: Final = "STRIP"

BoundaryKind = Literal["cut", "fade", "dissolve"]


@dataclass(frozen=True, slots=True)
class ShotBoundary:
    """The first frame of a new shot: ``"cut"`` for a hard cut, ``"fade"`` for a transition
    through black (placed in the middle of the black), ``"dissolve"`` for a cross-fade."""

    frame: int
    time: float
    kind: BoundaryKind


@dataclass(frozen=True, slots=True)
class ShotSpan:
    """One shot: frames ``[start_frame, end_frame)`` of the strip, ``start`` to ``end`` in
    seconds. The last shot ends one frame interval after its last frame."""

    start: float
    end: float
    start_frame: int
    end_frame: int


@dataclass(frozen=True, slots=True)
class ShotList:
    cuts: tuple[ShotBoundary, ...]
    shots: tuple[ShotSpan, ...]

    def as_records(self) -> tuple[Shot, ...]:
        """The shots as ``ChunkAnalysed.shots`` entries."""
        return tuple(Shot(start=span.start, end=span.end) for span in self.shots)


def detect_shots(client: TritonClient, strip: bytes) -> ShotList:
    """The shots of one strip. Raises :class:`~agents.shared.errors.InferenceRejected` for
    bytes that are not a strip, or a strip without frames."""
    [answer] = client.call_json(SHOT_MODEL, _STRIP_INPUT, [strip])
    try:
        return _parse(answer)
    except (KeyError, TypeError, ValueError) as error:
        raise InferenceError(f"{SHOT_MODEL} answered an unexpected document: {error}") from error


def _parse(answer: Mapping[str, Any]) -> ShotList:
    kinds = get_args(BoundaryKind)
    cuts = []
    for entry in answer["cuts"]:
        if entry["kind"] not in kinds:
            raise ValueError(f"unknown boundary kind {entry['kind']!r}")
        cuts.append(
            ShotBoundary(
                frame=int(entry["frame"]),
                time=float(entry["time"]),
                kind=cast(BoundaryKind, entry["kind"]),
            )
        )
    shots = [
        ShotSpan(
            start=float(entry["start"]),
            end=float(entry["end"]),
            start_frame=int(entry["start_frame"]),
            end_frame=int(entry["end_frame"]),
        )
        for entry in answer["shots"]
    ]
    return ShotList(cuts=tuple(cuts), shots=tuple(shots))
