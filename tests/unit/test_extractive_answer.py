"""Extractive answers (query_service/answer/extractive.py) over hand-made unit vectors."""

from __future__ import annotations

import numpy as np

from query_service.answer.extractive import DONT_KNOW, extract, passages, prepare_context
from query_service.schemas import MomentPublic


def moment(mid: str, video: str, start: float, score: float, text: str) -> MomentPublic:
    return MomentPublic(
        id=mid, video_id=video, source=f"/m/{video}.mp4", start=start, end=start + 10,
        score=score, text=text, labels=[], matched_labels=[], entities=[], retrievers=["vector"],
        scores={}, thumbnail_url=None,
    )  # fmt: skip


def test_context_is_distinct_within_budget_and_in_time_order() -> None:
    a = moment("v1:1", "v1", 10, 0.9, "x" * 50)
    b = moment("v1:0", "v1", 0, 0.8, "y" * 50)
    c = moment("v2:0", "v2", 0, 0.7, "z" * 50)
    assert [m.id for m in prepare_context([a, b, a, c], budget_chars=100)] == ["v1:0", "v1:1"]


def test_the_closest_sentences_answer_with_citations_or_it_does_not_know() -> None:
    ctx = [
        moment("v1:0", "v1", 0, 0.9, "A scene showing a bicycle. Speech: ride on."),
        moment("v2:0", "v2", 0, 0.8, "A scene showing a bottle."),
    ]
    found = passages(ctx)
    assert [p.text for p in found] == [
        "A scene showing a bicycle.",
        "Speech: ride on.",
        "A scene showing a bottle.",
    ]
    vectors = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]], np.float32)
    result = extract(np.array([0.9, 0.0, 0.436], np.float32), found, vectors, min_score=0.35)
    assert result.grounded
    assert result.answer == "A scene showing a bicycle. [1] A scene showing a bottle. [2]"
    assert [c.id for c in result.citations] == ["v1:0", "v2:0"]
    unknown = extract(np.array([0.0, 0.3, 0.95], np.float32) * 0.3, found, vectors, 0.35)
    assert (unknown.answer, unknown.citations, unknown.grounded) == (DONT_KNOW, [], False)
