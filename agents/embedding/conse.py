"""ConSE: what was seen in a moment, as a vector in the text-embedding space.

Norouzi et al., "Zero-Shot Learning by Convex Combination of Semantic Embeddings" (ICLR 2014):
an image's vector is the probability-weighted mix of the embeddings of its top-T class names,
``f(x) = 1/Z * sum_t p(y_t | x) * s(y_t)`` with ``Z = sum_t p(y_t | x)``. Here the classes are
the ImageNet tags and the COCO detections of the moment's keyframes, and ``s`` is the MiniLM
embedding of the class name, so a text query ("bicycle") finds a moment nobody spoke about.

Everything here is pure: class names' vectors come in as a mapping.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping

import numpy as np

from streams.records import ChunkAnalysed

__all__ = [
    "DETECTION_SHARE",
    "TAG_SHARE",
    "TEXT_WEIGHT",
    "TOP_CONCEPTS",
    "VISUAL_WEIGHT",
    "concept_weights",
    "conse_vector",
    "fuse",
    "unit",
    "visual_concepts",
]

# ConSE's T: the paper found T = 10 best on ImageNet; beyond it the tail is noise.
TOP_CONCEPTS = 10
# The two visual sources get equal shares: COCO detections name what a query names (person,
# bicycle, car) but cover 80 classes; ImageNet tags cover 1000 (mountain bike, water bottle)
# and also describe scenes without objects.
DETECTION_SHARE = 0.5
TAG_SHARE = 0.5
# The moment's own words (OCR and speech) join the visual vector with less weight: this
# collection exists to find what was seen, and the text collection already matches words.
# With 0.6 / 0.4 an image-only concept still dominates when the words are about something
# else, while a moment with on-screen text or speech is still found by those words.
VISUAL_WEIGHT = 0.6
TEXT_WEIGHT = 0.4


def unit(vector: np.ndarray) -> np.ndarray:
    """``vector`` scaled to length 1 (a zero vector stays zero)."""
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


def concept_weights(
    scored: Iterable[tuple[float, str, float]], frames: int, top: int = TOP_CONCEPTS
) -> dict[str, float]:
    """From ``(time, label, score)`` observations over ``frames`` keyframes: each label's mean
    per-frame score (its best score in a frame; a frame without it counts 0), the ``top``
    labels kept and normalised to sum 1 (ConSE's Z). Ties go by label, so it is deterministic."""
    if frames <= 0:
        raise ValueError(f"frames must be positive, got {frames}")
    best: dict[str, dict[float, float]] = defaultdict(dict)
    for time, label, score in scored:
        best[label][time] = max(best[label].get(time, 0.0), score)
    mean = {label: sum(per_frame.values()) / frames for label, per_frame in best.items()}
    kept = sorted(mean.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    total = sum(weight for _, weight in kept)
    if total <= 0:
        return {}
    return {label: weight / total for label, weight in kept}


def visual_concepts(
    analysis: ChunkAnalysed, top: int = TOP_CONCEPTS
) -> tuple[dict[str, float], dict[str, float]]:
    """(ImageNet tag weights, COCO detection weights) of the moment's keyframes."""
    frames = max(
        1,
        len({k.time for k in analysis.keyframes}
            | {t.time for t in analysis.tags}
            | {o.time for o in analysis.objects}),
    )  # fmt: skip
    tags = concept_weights(((t.time, t.label, t.score) for t in analysis.tags), frames, top)
    objects = concept_weights(((o.time, o.label, o.score) for o in analysis.objects), frames, top)
    return tags, objects


def conse_vector(
    weights: Mapping[str, float], label_vectors: Mapping[str, np.ndarray]
) -> np.ndarray:
    """The weighted mix of the labels' vectors, unit length. Raises KeyError for a label
    without a vector."""
    if not weights:
        raise ValueError("no concepts to mix")
    mixed = sum(
        weight * np.asarray(label_vectors[label], np.float64) for label, weight in weights.items()
    )
    return unit(np.asarray(mixed, np.float64))


def fuse(parts: Iterable[tuple[float, np.ndarray | None]]) -> np.ndarray | None:
    """The unit-length weighted sum of the unit-length parts that are present; the weights of
    missing parts are not redistributed but drop out with the final normalisation. ``None``
    when no part is present."""
    present = [(weight, unit(np.asarray(v, np.float64))) for weight, v in parts if v is not None]
    if not present:
        return None
    return unit(sum(weight * vector for weight, vector in present))  # type: ignore[arg-type]
