"""Spatial relations between two boxes in one image, for scene graphs.

Boxes are ``(x1, y1, x2, y2)`` as fractions of the image. Each pair gets at most one
directional relation, along the axis where the centres are further apart, and NEAR when the
boxes overlap or almost touch.
"""

from __future__ import annotations

from typing import Final, Literal

Box = tuple[float, float, float, float]
Relation = Literal["LEFT_OF", "ABOVE", "NEAR"]

# Centres closer than this (fraction of the image) have no direction between them.
MIN_OFFSET: Final = 0.05
# Boxes whose gap is at most this (fraction of the image) are near each other.
NEAR_GAP: Final = 0.05


def _centre(box: Box) -> tuple[float, float]:
    return (box[0] + box[2]) / 2, (box[1] + box[3]) / 2


def gap(a: Box, b: Box) -> float:
    """The shortest distance between the two boxes (0 when they overlap)."""
    dx = max(0.0, max(a[0], b[0]) - min(a[2], b[2]))
    dy = max(0.0, max(a[1], b[1]) - min(a[3], b[3]))
    return (dx * dx + dy * dy) ** 0.5


def relations(a: Box, b: Box) -> list[tuple[Relation, bool]]:
    """The relations between ``a`` and ``b``: (relation, True) means a → b, (relation, False)
    means b → a. NEAR is symmetric and always given as a → b."""
    (ax, ay), (bx, by) = _centre(a), _centre(b)
    dx, dy = bx - ax, by - ay
    found: list[tuple[Relation, bool]] = []
    if abs(dx) >= abs(dy) and abs(dx) > MIN_OFFSET:
        found.append(("LEFT_OF", dx > 0))
    elif abs(dy) > MIN_OFFSET:
        found.append(("ABOVE", dy > 0))
    if gap(a, b) <= NEAR_GAP:
        found.append(("NEAR", True))
    return found
