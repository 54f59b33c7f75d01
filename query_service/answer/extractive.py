"""Extractive, grounded answers (pure): the context's sentences most similar to the question,
each cited to the moment it came from, or an explicit "I don't know" when none is close enough.

Context preparation: retrieved moments are deduplicated, kept within a character budget (best
first), then put in time order per video; each moment's text is split into sentences.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np

from query_service.schemas import MomentPublic

DONT_KNOW: Final = "I don't know: the indexed videos do not say."
# Cosine (MiniLM) a sentence needs to answer the question; below it the answer is "don't know".
MIN_SENTENCE_SCORE: Final = 0.35
MAX_SENTENCES: Final = 3
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True)
class Passage:
    text: str
    moment: MomentPublic


@dataclass(frozen=True)
class Extracted:
    answer: str
    citations: list[MomentPublic]
    grounded: bool
    best_score: float


def prepare_context(moments: Sequence[MomentPublic], budget_chars: int) -> list[MomentPublic]:
    """Distinct moments, best first, until the budget is spent; then in time order."""
    kept: list[MomentPublic] = []
    seen: set[str] = set()
    used = 0
    for moment in sorted(moments, key=lambda m: -m.score):
        if moment.id in seen or used + len(moment.text) > budget_chars:
            continue
        seen.add(moment.id)
        kept.append(moment)
        used += len(moment.text)
    return sorted(kept, key=lambda m: (m.video_id, m.start))


def passages(moments: Sequence[MomentPublic]) -> list[Passage]:
    """Each moment's text split into sentences ("Speech: …" and "On-screen text: …" stay whole)."""
    found = []
    for moment in moments:
        for sentence in _SENTENCE_END.split(moment.text):
            if sentence.strip():
                found.append(Passage(sentence.strip(), moment))
    return found


def extract(
    question: np.ndarray,
    candidates: Sequence[Passage],
    vectors: np.ndarray,
    min_score: float = MIN_SENTENCE_SCORE,
    limit: int = MAX_SENTENCES,
) -> Extracted:
    """The best sentences (cosine with the question, vectors L2-normalised) at or above
    ``min_score``, in the order they occur, each citing its moment."""
    if not candidates:
        return Extracted(DONT_KNOW, [], False, 0.0)
    scores = np.asarray(vectors, np.float32) @ np.asarray(question, np.float32)
    order: list[int] = []
    said: set[str] = set()
    for i in (int(i) for i in np.argsort(-scores)):
        if len(order) == limit or scores[i] < min_score:
            break
        if candidates[i].text.lower() not in said:  # the same words from a copy of a video
            said.add(candidates[i].text.lower())
            order.append(i)
    best = float(scores.max())
    if not order:
        return Extracted(DONT_KNOW, [], False, best)
    chosen = sorted(order)  # context order: by video, then time
    citations: list[MomentPublic] = []
    for i in chosen:
        if candidates[i].moment.id not in {c.id for c in citations}:
            citations.append(candidates[i].moment)
    text = " ".join(
        f"{candidates[i].text} [{citations.index(candidates[i].moment) + 1}]" for i in chosen
    )
    return Extracted(text, citations, True, best)
