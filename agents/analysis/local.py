"""The "local" provider: our own models, served by Triton.

Each capability is one Triton model; they run concurrently (one client per thread: Triton's
HTTP client is not thread-safe) so that the server's instances overlap on the cores. Named
entities are read last, from the words the other models found (the transcript, the OCR lines).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from agents.analysis.core import entity_sources, mentions_in, representatives
from agents.analysis.inference.entities import NER_MODEL, recognise
from agents.analysis.inference.ocr_faces import FACE_MODEL, OCR_MODEL, detect_faces, read_text
from agents.analysis.inference.shots import SHOT_MODEL, detect_shots
from agents.analysis.inference.speech import SPEECH_MODEL, transcribe
from agents.analysis.inference.tags_and_slots import (
    SLOT_MODELS,
    TAG_MODEL,
    slot_status,
    tag_images_with_features,
)
from agents.analysis.providers.base import KeyframeImage, ProviderResult
from agents.shared.triton_client import DETECTION_MODEL, TritonClient
from streams.records import (
    EntityMention,
    FaceDetection,
    ObjectDetection,
    OcrLine,
    Shot,
    Tag,
    TranscriptSegment,
    Word,
)

MODELS = (
    DETECTION_MODEL,
    OCR_MODEL,
    FACE_MODEL,
    TAG_MODEL,
    SHOT_MODEL,
    SPEECH_MODEL,
    NER_MODEL,
)


@dataclass(frozen=True)
class LocalOptions:
    detection_min_score: float = 0.3
    ocr_min_score: float = 0.5
    face_min_score: float = 0.5
    tag_top_k: int = 3
    tag_min_score: float = 0.15


@dataclass(frozen=True)
class ChunkMedia:
    """What the local models read for one chunk: keyframes, the thumbnail strip, the audio."""

    frames: Sequence[KeyframeImage]
    strip: bytes | None
    audio: bytes | None
    start: float
    end: float


class LocalModels:
    name = "local"

    def __init__(
        self,
        client: Callable[[], TritonClient],
        options: LocalOptions,
        pool: ThreadPoolExecutor,
    ) -> None:
        self._client = client
        self._options = options
        self._pool = pool

    def versions(self) -> dict[str, str]:
        """Each model's version tag and a digest of its settings (the analysis cache key)."""
        client = self._client()
        return {model: client.model_fingerprint(model) for model in MODELS}

    def analyse(self, media: ChunkMedia) -> ProviderResult:
        """All local models on one chunk. The cheap, independent ones run concurrently; the
        expensive ones run where they can matter, which is what keeps analysis several times
        faster than real time on two cores (docs/benchmarks.md):

        * faces: only on keyframes where a person was detected;
        * OCR: on one keyframe per shot (on-screen text rarely changes within a shot);
        * named entities: one call over the transcript and the OCR lines, none without text.
        """
        images = [frame.jpeg for frame in media.frames]
        times = [frame.time for frame in media.frames]
        o = self._options
        run = self._pool.submit
        shots = run(lambda: self._shots(media))
        speech = run(lambda: self._speech(media))
        tags = run(
            lambda: tag_images_with_features(self._client(), images, o.tag_top_k, o.tag_min_score)
        )
        slots = run(lambda: {m: r for m in SLOT_MODELS if (r := slot_status(self._client(), m))})
        detections = self._client().detect_objects(images, o.detection_min_score)
        with_people = [
            i for i, found in enumerate(detections) if any(d.label == "person" for d in found)
        ]
        faces = run(
            lambda: detect_faces(self._client(), [images[i] for i in with_people], o.face_min_score)
        )
        with_text = representatives(shots.result(), times)
        lines = read_text(self._client(), [images[i] for i in with_text], o.ocr_min_score)
        ocr = tuple(
            OcrLine(text=line.text, score=_score(line.score), box=line.box, time=times[i])
            for i, found in zip(with_text, lines, strict=True)
            for line in found
        )
        transcript = speech.result()
        mentions = self._mentions(transcript, ocr)
        return ProviderResult(
            objects=tuple(
                ObjectDetection(label=d.label, score=_score(d.score), box=d.box, time=t)
                for t, found in zip(times, detections, strict=True)
                for d in found
            ),
            ocr=ocr,
            faces=tuple(
                FaceDetection(score=_score(face.score), box=face.box, time=times[i])
                for i, found in zip(with_people, faces.result(), strict=True)
                for face in found
            ),
            tags=tuple(
                Tag(label=tag.label, score=_score(tag.score), time=t)
                for t, found in zip(times, tags.result()[0], strict=True)
                for tag in found
            ),
            shots=shots.result(),
            transcript=transcript,
            mentions=mentions,
            models=self.versions(),
            unavailable=slots.result(),
            keyframe_features=tags.result()[1] if images else None,
        )

    def _shots(self, media: ChunkMedia) -> tuple[Shot, ...]:
        if media.strip is None:
            return (Shot(start=media.start, end=media.end),)
        return detect_shots(self._client(), media.strip).as_records()

    def _mentions(
        self, transcript: Sequence[TranscriptSegment], ocr: Sequence[OcrLine]
    ) -> tuple[EntityMention, ...]:
        sources = entity_sources(transcript, ocr)
        if not sources:
            return ()
        return mentions_in(sources, recognise(self._client(), [s.text for s in sources]))

    def _speech(self, media: ChunkMedia) -> tuple[TranscriptSegment, ...]:
        if not media.audio:
            return ()
        transcript = transcribe(self._client(), media.audio, offset_s=media.start)
        return tuple(
            TranscriptSegment(
                text=segment.text.strip(),
                start=max(0.0, segment.start),
                end=max(0.0, segment.end),
                words=tuple(
                    Word(
                        word=w.word.strip(),
                        start=max(0.0, w.start),
                        end=max(0.0, w.end),
                        probability=_score(w.probability),
                    )
                    for w in segment.words
                ),
            )
            for segment in transcript.segments
            if segment.text.strip()
        )


def _score(value: float) -> float:
    return round(min(1.0, max(0.0, float(value))), 4)
