"""Pure chunk planning: no I/O, testable with plain numbers."""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

# A chunk may stretch this far past its target to reach the next keyframe; past that we cut at
# the target (a GOP longer than the chunk length cannot be honoured without re-encoding anyway).
MAX_STRETCH = 1.5
# A trailing chunk shorter than this fraction of the target is merged into its predecessor.
MIN_TAIL_FRACTION = 0.25


@dataclass(frozen=True)
class PlannedChunk:
    index: int
    start: float
    end: float
    keyframe_aligned: bool


def plan_chunks(
    keyframe_times: Sequence[float], duration: float, target_s: float
) -> list[PlannedChunk]:
    """Cut [0, duration) into chunks of about ``target_s`` seconds whose boundaries lie on
    keyframes wherever a keyframe falls within ``MAX_STRETCH * target_s`` of the chunk start."""
    if target_s <= 0:
        raise ValueError(f"target_s must be positive, got {target_s}")
    if duration <= 0:
        raise ValueError(f"duration must be positive, got {duration}")
    keys = sorted(t for t in set(keyframe_times) if 0 < t < duration)
    cuts: list[tuple[float, bool]] = []
    start = 0.0
    while duration - start > target_s * (1 + MIN_TAIL_FRACTION):
        i = bisect.bisect_left(keys, start + target_s - 1e-6)
        if i < len(keys) and keys[i] - start <= target_s * MAX_STRETCH:
            cut, aligned = keys[i], True
        else:
            cut, aligned = start + target_s, False
        if duration - cut < target_s * MIN_TAIL_FRACTION:
            break
        cuts.append((cut, aligned))
        start = cut
    bounds = [0.0, *(cut for cut, _ in cuts), duration]
    aligned_flags = [True, *(aligned for _, aligned in cuts)]
    return [
        PlannedChunk(
            index=i,
            start=round(bounds[i], 6),
            end=round(bounds[i + 1], 6),
            keyframe_aligned=aligned_flags[i],
        )
        for i in range(len(bounds) - 1)
    ]


def sample_times(
    start: float, end: float, every_s: float, keyframe_times: Sequence[float] = ()
) -> list[float]:
    """Times inside [start, end) at which a chunk's keyframe images are taken.

    The chunk's first frame, then every ``every_s`` seconds, plus the stream's own keyframes
    (encoders place them at scene changes, so each one often opens a new shot). A regular
    sample closer than ``every_s / 4`` to a stream keyframe gives way to it, and no two
    samples are ``every_s / 2`` or less apart (periodic keyframes must not multiply the work)."""
    if every_s <= 0:
        raise ValueError(f"every_s must be positive, got {every_s}")
    regular = []
    t = start
    while t < end - 1e-6:
        regular.append(t)
        t += every_s
    keys = [k for k in keyframe_times if start <= k < end - 1e-6]
    near = every_s / 4
    kept = [t for t in regular if t == start or all(abs(t - k) >= near for k in keys)]
    times: list[float] = []
    for candidate in sorted({round(t, 6) for t in [*kept, *keys]}):
        if not times or candidate - times[-1] > every_s / 2 + 1e-9:
            times.append(candidate)
    return times or [round(start, 6)]


def video_id_for(content_hash: str) -> str:
    """Videos are identified by their content, so re-uploading the same bytes is idempotent."""
    if len(content_hash) < 16:
        raise ValueError("content hash too short")
    return f"v{content_hash[:16]}"
