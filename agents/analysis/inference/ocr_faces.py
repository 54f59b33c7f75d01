"""Read text in, and find faces in, encoded images through the ``ocr`` and ``face_detection``
Triton models (``triton_models/ocr``, ``triton_models/face_detection``).

Both take one encoded image (JPEG/PNG bytes) per item and answer one JSON list per image.
Boxes are ``(x1, y1, x2, y2)`` as fractions of the image size, the shape of
:data:`streams.records.Box`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from agents.shared.errors import InferenceError
from agents.shared.triton_client import TritonClient

__all__ = [
    "FACE_MODEL",
    "OCR_MODEL",
    "Face",
    "TextLine",
    "detect_faces",
    "read_text",
]

OCR_MODEL: Final = "ocr"
FACE_MODEL: Final = "face_detection"
_IMAGE_INPUT: Final = "IMAGE"
_MIN_SCORE_INPUT: Final = "MIN_SCORE"

Box = tuple[float, float, float, float]


@dataclass(frozen=True, slots=True)
class TextLine:
    """One line of text read in an image; ``score`` is the recogniser's confidence (0..1)."""

    text: str
    score: float
    box: Box


@dataclass(frozen=True, slots=True)
class Face:
    """One frontal face; ``score`` (0..1) orders detections but is not a calibrated probability."""

    score: float
    box: Box


def read_text(
    client: TritonClient, images: Sequence[bytes], min_score: float = 0.5
) -> list[list[TextLine]]:
    """The text lines of each image, in reading order, keeping those scoring ``min_score`` or
    more. Raises :class:`~agents.shared.errors.InferenceRejected` for bytes that are not an
    image."""
    answers = _call(client, OCR_MODEL, images, min_score)
    return [
        [
            TextLine(text=str(entry["text"]), score=float(entry["score"]), box=_box(entry))
            for entry in _entries(OCR_MODEL, answer)
        ]
        for answer in answers
    ]


def detect_faces(
    client: TritonClient, images: Sequence[bytes], min_score: float = 0.5
) -> list[list[Face]]:
    """The frontal faces in each image, best first, keeping those scoring ``min_score`` or
    more. Raises :class:`~agents.shared.errors.InferenceRejected` for bytes that are not an
    image."""
    answers = _call(client, FACE_MODEL, images, min_score)
    return [
        [
            Face(score=float(entry["score"]), box=_box(entry))
            for entry in _entries(FACE_MODEL, answer)
        ]
        for answer in answers
    ]


def _call(client: TritonClient, model: str, images: Sequence[bytes], min_score: float) -> list[Any]:
    if not 0 <= min_score <= 1:
        raise ValueError(f"min_score must lie in [0, 1], got {min_score}")
    if not images:
        return []
    answers = client.call_json(model, _IMAGE_INPUT, images, scalars={_MIN_SCORE_INPUT: min_score})
    if len(answers) != len(images):
        raise InferenceError(f"{model} answered {len(answers)} results for {len(images)} images")
    return answers


def _entries(model: str, answer: Any) -> list[dict[str, Any]]:
    if not isinstance(answer, list) or not all(isinstance(entry, dict) for entry in answer):
        raise InferenceError(f"{model} answered {answer!r:.200}, not a JSON list of objects")
    return answer


def _box(entry: dict[str, Any]) -> Box:
    x1, y1, x2, y2 = (float(value) for value in entry["box"])
    return (x1, y1, x2, y2)
