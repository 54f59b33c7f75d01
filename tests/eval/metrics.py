"""Ranking metrics over the rank of the first relevant result (None: not in the results)."""

from __future__ import annotations

from collections.abc import Sequence


def recall_at(ranks: Sequence[int | None], k: int) -> float:
    """The share of queries with a relevant result among the first k."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if not ranks:
        return 0.0
    return sum(1 for rank in ranks if rank is not None and rank <= k) / len(ranks)


def mean_reciprocal_rank(ranks: Sequence[int | None]) -> float:
    if not ranks:
        return 0.0
    return sum(1 / rank for rank in ranks if rank is not None) / len(ranks)


def overlaps(start: float, end: float, expected_start: float, expected_end: float) -> bool:
    return start <= expected_end and end >= expected_start


def first_relevant(
    results: Sequence[tuple[str, float, float]], video_id: str, start: float, end: float
) -> int | None:
    """1-based rank of the first (video id, start, end) result in the expected video that
    overlaps the expected time range."""
    for rank, (found, found_start, found_end) in enumerate(results, start=1):
        if found == video_id and overlaps(found_start, found_end, start, end):
            return rank
    return None
