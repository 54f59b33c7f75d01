"""One moment's three embeddings (text, per-keyframe visual, multimodal) and their upsert.

Blocking work (Triton calls, blob reads, Milvus writes): the agent runs it in a thread.
"""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np

from agents.analysis.inference.tags_and_slots import slot_status
from agents.embedding.conse import (
    DETECTION_SHARE,
    TAG_SHARE,
    TEXT_WEIGHT,
    VISUAL_WEIGHT,
    conse_vector,
    fuse,
    unit,
    visual_concepts,
)
from agents.embedding.core import (
    describe,
    keyframe_id,
    keyframe_labels,
    moment_id,
    words_in_moment,
)
from agents.shared.blob_store import BlobError, BlobStore
from agents.shared.errors import InferenceError
from agents.shared.milvus_store import Kind, MomentCollections, MomentRow
from agents.shared.triton_client import EMBEDDING_MODEL, IMAGE_FEATURES_MODEL, TritonClient
from streams.records import ChunkAnalysed, MomentEmbedded

__all__ = ["JOINT_MODEL", "LabelVectors", "MomentEmbedder", "MultimodalSource"]

log = logging.getLogger(__name__)

JOINT_MODEL: Final = "image_text_embedding"
MultimodalSource = Literal["conse", "image_text_embedding"]


class LabelVectors:
    """Class names embedded by ``text_embedding``, each asked once and kept in memory (per
    model version, so a redeployed model is not mixed with the old one's vectors)."""

    def __init__(self) -> None:
        self._vectors: dict[tuple[str, str], np.ndarray] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._vectors)

    def vectors(self, triton: TritonClient, labels: Sequence[str]) -> dict[str, np.ndarray]:
        version = triton.model_version(EMBEDDING_MODEL)
        with self._lock:
            missing = sorted({label for label in labels if (version, label) not in self._vectors})
        if missing:
            embedded = triton.embed_texts(missing)
            with self._lock:
                for label, vector in zip(missing, embedded, strict=True):
                    self._vectors[(version, label)] = vector
        with self._lock:
            return {label: self._vectors[(version, label)] for label in labels}


@dataclass(frozen=True)
class Embedded:
    """A moment's event and the rows it writes, one list per collection."""

    event: MomentEmbedded
    rows: list[MomentRow]


class MomentEmbedder:
    """``triton`` returns this thread's client (they are not thread-safe)."""

    def __init__(
        self,
        triton: Callable[[], TritonClient],
        blobs: BlobStore,
        stores: MomentCollections | None,
        multimodal_source: MultimodalSource = "conse",
        labels: LabelVectors | None = None,
    ) -> None:
        self._triton = triton
        self._blobs = blobs
        self._stores = stores
        self.multimodal_source = multimodal_source
        self.labels = labels or LabelVectors()
        self._warned: set[str] = set()

    def embed(self, analysis: ChunkAnalysed) -> MomentEmbedded:
        """Build the moment's vectors, upsert them and return the event."""
        embedded = self.vectors(analysis)
        if self._stores is None:
            raise RuntimeError("this embedder has no Milvus collections to write to")
        self._stores.upsert(embedded.rows)
        return embedded.event

    def text_only(self, analysis: ChunkAnalysed) -> MomentEmbedded:
        """Only the description vector, as the stage did before visual and multimodal vectors
        (the baseline of bench/embedding_throughput.py); nothing is written."""
        text, labels = describe(analysis)
        triton = self._triton()
        [vector] = triton.embed_texts([text])
        return self._event(analysis, text, labels, vector, None)

    def vectors(self, analysis: ChunkAnalysed) -> Embedded:
        triton = self._triton()
        text, labels = describe(analysis)
        words = words_in_moment(analysis)
        embedded_texts = triton.embed_texts([text, words] if words else [text])
        text_vector = embedded_texts[0]
        words_vector = embedded_texts[1] if words else None
        features = self._features(triton, analysis)

        multimodal = None
        if self.multimodal_source == JOINT_MODEL:
            images = [self._blobs.get(k.uri) for k in analysis.keyframes]
            multimodal = self._joint(triton, images, words)
        if multimodal is None:
            multimodal = self._conse(triton, analysis, words_vector)

        span = analysis.span
        mid = moment_id(analysis.video_id, span.chunk_index)
        thumbnail = analysis.keyframes[0].uri if analysis.keyframes else ""

        def row(
            key: str,
            vector: np.ndarray,
            kind: Kind,
            start: float,
            end: float,
            labelled: Sequence[str],
            thumb: str,
        ) -> MomentRow:
            return MomentRow(
                id=key, vector=vector.tolist(), video_id=analysis.video_id, source=span.source,
                chunk_index=span.chunk_index, start=start, end=end, text=text,
                labels=",".join(labelled), thumbnail=thumb, kind=kind,
            )  # fmt: skip

        rows = [row(mid, text_vector, "text", span.start, span.end, labels, thumbnail)]
        rows += [
            row(keyframe_id(analysis.video_id, span.chunk_index, keyframe.time), vector,
                "visual", keyframe.time, keyframe.time,
                keyframe_labels(analysis, keyframe.time), keyframe.uri)
            for keyframe, vector in zip(analysis.keyframes, features, strict=True)
        ]  # fmt: skip
        if multimodal is not None:
            rows.append(row(mid, multimodal, "multimodal", span.start, span.end, labels, thumbnail))
        event = self._event(analysis, text, labels, text_vector, multimodal)
        return Embedded(event=event, rows=rows)

    def _features(self, triton: TritonClient, analysis: ChunkAnalysed) -> np.ndarray:
        """The keyframes' visual embeddings: those the analysis stage stored (computed with
        the tags, in the same inference), else computed now."""
        if analysis.keyframe_features_uri:
            try:
                raw = self._blobs.get(analysis.keyframe_features_uri)
                stored = np.load(io.BytesIO(raw), allow_pickle=False)
            except (BlobError, OSError, ValueError) as exc:
                log.warning("stored keyframe features unreadable (%s); recomputing", exc)
            else:
                if stored.ndim == 2 and stored.shape[0] == len(analysis.keyframes):
                    return stored.astype(np.float32, copy=False)
                log.warning("stored keyframe features have shape %s; recomputing", stored.shape)
        images = [self._blobs.get(k.uri) for k in analysis.keyframes]
        return triton.image_features(images) if images else np.zeros((0, 0), np.float32)

    def _event(
        self,
        analysis: ChunkAnalysed,
        text: str,
        labels: tuple[str, ...],
        vector: np.ndarray,
        multimodal: np.ndarray | None,
    ) -> MomentEmbedded:
        span = analysis.span
        triton = self._triton()
        return MomentEmbedded(
            video_id=analysis.video_id,
            moment_id=moment_id(analysis.video_id, span.chunk_index),
            span=span,
            text=text,
            labels=labels,
            thumbnail_uri=analysis.keyframes[0].uri if analysis.keyframes else None,
            model=f"{EMBEDDING_MODEL}:{triton.model_version(EMBEDDING_MODEL)}",
            vector=tuple(round(float(v), 6) for v in vector),
            analysis_cache_hit=analysis.cache_hit,
            multimodal_vector=None
            if multimodal is None
            else tuple(round(float(v), 6) for v in multimodal),
            analysis=analysis,
        )

    def _conse(
        self, triton: TritonClient, analysis: ChunkAnalysed, words_vector: np.ndarray | None
    ) -> np.ndarray | None:
        tags, objects = visual_concepts(analysis)
        names = [*tags, *objects]
        vectors = self.labels.vectors(triton, names) if names else {}
        tag_part = conse_vector(tags, vectors) if tags else None
        object_part = conse_vector(objects, vectors) if objects else None
        seen = fuse([(TAG_SHARE, tag_part), (DETECTION_SHARE, object_part)])
        return fuse([(VISUAL_WEIGHT, seen), (TEXT_WEIGHT, words_vector)])

    def _joint(self, triton: TritonClient, images: list[bytes], words: str) -> np.ndarray | None:
        """The slot's image and text vectors fused like ConSE's; ``None`` (so ConSE is used)
        while the slot answers that it has no model."""
        reason = slot_status(triton, JOINT_MODEL)
        if reason is None and images:
            answers = triton.call_json(JOINT_MODEL, "IMAGE", images)
            if words:
                answers += triton.call_json(JOINT_MODEL, "TEXT", [words.encode("utf-8")])
            if all(a.get("available") for a in answers):
                vectors = [unit(np.asarray(a["embedding"], np.float64)) for a in answers]
                seen = unit(np.mean(vectors[: len(images)], axis=0))
                said = vectors[len(images)] if words else None
                return fuse([(VISUAL_WEIGHT, seen), (TEXT_WEIGHT, said)])
            reason = next(str(a.get("reason")) for a in answers if not a.get("available"))
        if reason is not None and reason not in self._warned:
            self._warned.add(reason)
            log.warning("multimodal vectors fall back to ConSE: %s: %s", JOINT_MODEL, reason)
        return None


def check_features_model(triton: TritonClient) -> None:
    """Fail early, with the reason, when the served image_tags predates its FEATURES output."""
    outputs = {o["name"] for o in triton.model_config(IMAGE_FEATURES_MODEL).get("output", [])}
    if "FEATURES" not in outputs:
        raise InferenceError(
            f"{IMAGE_FEATURES_MODEL} on {triton.url} has no FEATURES output (outputs: "
            f"{sorted(outputs)}); reload it from triton_models/"
        )
