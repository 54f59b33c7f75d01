"""People tracked by their faces within one chunk: greedy linking of face boxes between
keyframes by overlap. Without a face-embedding model there is no identity across chunks or
videos, so a track is a person seen in one chunk."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from streams.records import FaceDetection

Box = tuple[float, float, float, float]

MIN_IOU: Final = 0.2
MAX_GAP_S: Final = 4.5  # keyframes are about 2 s apart; one may miss the face


def iou(a: Box, b: Box) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


@dataclass
class Track:
    faces: list[FaceDetection] = field(default_factory=list)

    @property
    def last(self) -> FaceDetection:
        return self.faces[-1]


def track_faces(faces: Sequence[FaceDetection]) -> list[Track]:
    """Tracks in order of first appearance. Each face joins the open track whose last box
    overlaps it most (IoU ≥ MIN_IOU, seen within MAX_GAP_S, not already matched at this time);
    otherwise it starts a new track."""
    tracks: list[Track] = []
    by_time: dict[float, list[FaceDetection]] = {}
    for face in faces:
        by_time.setdefault(face.time, []).append(face)
    for time in sorted(by_time):
        taken: set[int] = set()
        for face in sorted(by_time[time], key=lambda f: -f.score):
            best, best_iou = None, MIN_IOU
            for index, track in enumerate(tracks):
                if index in taken or time - track.last.time > MAX_GAP_S:
                    continue
                overlap = iou(track.last.box, face.box)
                if overlap >= best_iou:
                    best, best_iou = index, overlap
            if best is None:
                tracks.append(Track([face]))
                taken.add(len(tracks) - 1)
            else:
                tracks[best].faces.append(face)
                taken.add(best)
    return tracks
