"""Speech to text through the ``speech_to_text`` Triton model.

The model takes raw PCM (16 kHz, mono, float32 little-endian, no header: what
:func:`agents.analysis.inference.audio.decode_audio_16k_mono` returns, as :func:`pcm_bytes`)
and answers segments with word times, shifted by ``offset_s`` so that a chunk's transcript
lands on the video's timeline.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from agents.shared.errors import InferenceError
from agents.shared.triton_client import TritonClient

__all__ = [
    "SPEECH_MODEL",
    "Segment",
    "Transcript",
    "Word",
    "parse_transcript",
    "pcm_bytes",
    "transcribe",
]

SPEECH_MODEL: Final = "speech_to_text"


@dataclass(frozen=True, slots=True)
class Word:
    word: str
    start: float
    end: float
    probability: float


@dataclass(frozen=True, slots=True)
class Segment:
    text: str
    start: float
    end: float
    words: tuple[Word, ...]


@dataclass(frozen=True, slots=True)
class Transcript:
    language: str
    segments: tuple[Segment, ...]

    @property
    def text(self) -> str:
        return " ".join(segment.text for segment in self.segments)

    @property
    def words(self) -> tuple[Word, ...]:
        return tuple(word for segment in self.segments for word in segment.words)


def pcm_bytes(samples: np.ndarray) -> bytes:
    """Mono samples as the model's input: float32 little-endian bytes, no header."""
    array = np.asarray(samples)
    if array.ndim != 1:
        raise ValueError(f"expected mono samples (one dimension), got shape {array.shape}")
    return array.astype("<f4", copy=False).tobytes()


def transcribe(client: TritonClient, pcm: bytes, offset_s: float = 0.0) -> Transcript:
    """Transcribe one 16 kHz mono float32 PCM buffer; times are seconds plus ``offset_s``.

    Raises :class:`~agents.shared.errors.InferenceRejected` for bytes the model refuses (a
    length that is not a multiple of 4, NaNs, more than 10 minutes).
    """
    [answer] = client.call_json(SPEECH_MODEL, "AUDIO", [pcm], scalars={"OFFSET_S": offset_s})
    return parse_transcript(answer)


def parse_transcript(answer: Any) -> Transcript:
    """The model's JSON document as a :class:`Transcript`."""
    try:
        return Transcript(
            language=str(answer["language"]),
            segments=tuple(_segment(entry) for entry in answer["segments"]),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise InferenceError(
            f"{SPEECH_MODEL} answered a malformed transcript: {type(error).__name__}: {error}"
        ) from error


def _segment(entry: Mapping[str, Any]) -> Segment:
    return Segment(
        text=str(entry["text"]),
        start=float(entry["start"]),
        end=float(entry["end"]),
        words=tuple(
            Word(
                word=str(word["word"]),
                start=float(word["start"]),
                end=float(word["end"]),
                probability=float(word["probability"]),
            )
            for word in entry["words"]
        ),
    )
