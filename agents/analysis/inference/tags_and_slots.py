"""ImageNet tags for keyframes, and whether the two model slots can answer.

``image_tags`` (EfficientNet-Lite0) always has weights. ``image_text_embedding`` and
``captioner`` are slots that a GPU deployment fills; without weights they answer every row
with ``{"available": false, "reason": ...}``. :func:`slot_status` asks once per client and
model, so the analysis stage can record the reason in ``ChunkAnalysed.unavailable`` instead of
calling an empty slot for every chunk.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from agents.shared.errors import InferenceError
from agents.shared.triton_client import TritonClient

__all__ = [
    "SLOT_MODELS",
    "TAG_MODEL",
    "ImageTag",
    "slot_status",
    "tag_images",
]

TAG_MODEL: Final = "image_tags"
SLOT_MODELS: Final = ("image_text_embedding", "captioner")

# The smallest valid PNG (1x1, grey): a slot that has a model must be able to answer it.
_PROBE_PNG: Final = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010800000000"
    "3a7e9b550000000a4944415478da6368000000820081da45083b0000000049454e44ae426082"
)
_PROBE_INPUTS: Final = {"image_text_embedding": "IMAGE", "captioner": "IMAGE"}

_status_cache: weakref.WeakKeyDictionary[TritonClient, dict[str, str | None]] = (
    weakref.WeakKeyDictionary()
)
_status_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class ImageTag:
    """One ImageNet-1k class: ``label`` is its first WordNet lemma, ``score`` its probability."""

    label: str
    synset: str
    score: float


def tag_images(
    client: TritonClient, images: Sequence[bytes], top_k: int = 5, min_score: float = 0.1
) -> list[list[ImageTag]]:
    """The ``top_k`` most likely classes scoring at least ``min_score``, for each encoded image
    (JPEG/PNG bytes), best first. Raises :class:`InferenceRejected` for undecodable bytes."""
    answers = client.call_json(
        TAG_MODEL, "IMAGE", images, scalars={"TOP_K": float(top_k), "MIN_SCORE": min_score}
    )
    return [_parse_tags(answer) for answer in answers]


def tag_images_with_features(
    client: TritonClient, images: Sequence[bytes], top_k: int = 5, min_score: float = 0.1
) -> tuple[list[list[ImageTag]], np.ndarray]:
    """:func:`tag_images` and, from the same inference, each image's pooled features (the
    visual embedding, n x 1280, L2-normalised), so the embedding stage need not run the
    network again."""
    answers, arrays = client.call_json_with(
        TAG_MODEL,
        "IMAGE",
        images,
        ("FEATURES",),
        scalars={"TOP_K": float(top_k), "MIN_SCORE": min_score},
    )
    return [_parse_tags(answer) for answer in answers], arrays["FEATURES"].astype(np.float32)


def slot_status(client: TritonClient, model: str) -> str | None:
    """``None`` when the slot ``model`` has a model behind it, else the reason it has none.

    The answer is cached per client: whether a slot is filled changes only when the server is
    redeployed. Transport errors (:class:`InferenceUnavailable`) propagate and are not cached.
    """
    if model not in _PROBE_INPUTS:
        raise ValueError(f"{model!r} is not a slot; slots are {SLOT_MODELS}")
    with _status_lock:
        known = _status_cache.get(client, {})
        if model in known:
            return known[model]
    [answer] = client.call_json(model, _PROBE_INPUTS[model], [_PROBE_PNG])
    status = _reason(model, answer)
    with _status_lock:
        _status_cache.setdefault(client, {})[model] = status
    return status


def _reason(model: str, answer: Any) -> str | None:
    if not isinstance(answer, dict) or not isinstance(answer.get("available"), bool):
        raise InferenceError(f"{model} answered {answer!r}, not an availability document")
    if answer["available"]:
        return None
    return str(answer.get("reason") or f"{model} is not available and gave no reason")


def _parse_tags(entries: list[dict[str, Any]]) -> list[ImageTag]:
    return [
        ImageTag(label=str(e["label"]), synset=str(e["synset"]), score=float(e["score"]))
        for e in entries
    ]
