"""Scoring detected shot boundaries against ground truth (precision, recall, F1).

A ground-truth boundary is a point or an interval ``(first, last)``: a gradual transition
such as a fade through black has no single right frame, so any prediction inside it counts.
A prediction matches a boundary when it lies within ``tolerance`` of it; each boundary takes
at most one prediction and each prediction matches at most one boundary.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["CutScore", "cut_f1", "score_cuts"]

Boundary = float | tuple[float, float]


@dataclass(frozen=True, slots=True)
class CutScore:
    true_positives: int
    false_positives: int
    false_negatives: int

    @property
    def precision(self) -> float:
        found = self.true_positives + self.false_positives
        return self.true_positives / found if found else 1.0

    @property
    def recall(self) -> float:
        wanted = self.true_positives + self.false_negatives
        return self.true_positives / wanted if wanted else 1.0

    @property
    def f1(self) -> float:
        """Harmonic mean of precision and recall; 1.0 when nothing was expected or found."""
        if self.false_positives == 0 and self.false_negatives == 0:
            return 1.0
        return (
            2
            * self.true_positives
            / (2 * self.true_positives + self.false_positives + self.false_negatives)
        )


def score_cuts(predicted: Sequence[float], truth: Sequence[Boundary], tolerance: float) -> CutScore:
    """Match ``predicted`` boundaries to ``truth`` (points or ``(first, last)`` intervals,
    in the same unit, e.g. frames) within ``tolerance`` and count the outcome."""
    if tolerance < 0:
        raise ValueError(f"tolerance must not be negative, got {tolerance}")
    windows = sorted((_window(boundary, tolerance) for boundary in truth), key=lambda w: w[::-1])
    unmatched = sorted(predicted)
    matched = 0
    # Windows in order of their ends, each taking the earliest free prediction inside it: the
    # greedy rule that gives a maximum matching of points to intervals.
    for low, high in windows:
        for position, value in enumerate(unmatched):
            if low <= value <= high:
                del unmatched[position]
                matched += 1
                break
    return CutScore(
        true_positives=matched,
        false_positives=len(predicted) - matched,
        false_negatives=len(truth) - matched,
    )


def cut_f1(predicted: Sequence[float], truth: Sequence[Boundary], tolerance: float) -> float:
    """F1 of ``predicted`` boundaries against ``truth``; see :func:`score_cuts`."""
    return score_cuts(predicted, truth, tolerance).f1


def _window(boundary: Boundary, tolerance: float) -> tuple[float, float]:
    first, last = boundary if isinstance(boundary, tuple) else (boundary, boundary)
    if last < first:
        raise ValueError(f"boundary interval ({first}, {last}) ends before it starts")
    return first - tolerance, last + tolerance
