"""Pure cores of a live feed: where segments are cut, where a reconnect resumes, and how long
to wait before reconnecting. No I/O; times are seconds.

A feed's timeline starts at 0 at its first frame. Segment ``n`` covers ``[start, end)`` on it
and is identified by ``(feed_id, n)`` alone, so a segment published twice (a reconnect, a
Kafka redelivery) lands on the same moment id downstream (``{feed_id}:{n:05d}``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from streams.records import LiveSegmentRecorded

__all__ = [
    "MIN_TAIL_FRACTION",
    "Backoff",
    "Resume",
    "SegmentPlanner",
    "restart_after",
    "resume_after_drop",
]

# A seekable source's last segment shorter than this fraction of the target is merged into
# its predecessor (as the chunker's plan does), so a 10.3 s file does not end in a 0.3 s moment.
MIN_TAIL_FRACTION = 0.25
# Cut times are rounded so that a segment's end and the next one's start compare equal.
_DIGITS = 6


@dataclass(frozen=True)
class SegmentPlanner:
    """Decides, keyframe by keyframe, where the current segment ends: at the first keyframe
    at least ``target_s`` past its start (stream copy cannot cut between keyframes). With
    ``duration`` (a seekable source), a cut that would leave a tail shorter than
    ``MIN_TAIL_FRACTION * target_s`` is skipped. The same keyframes give the same cuts, which
    is what makes a resumed file feed re-cut its lost segment exactly as before."""

    target_s: float
    duration: float | None = None

    def __post_init__(self) -> None:
        if self.target_s <= 0:
            raise ValueError(f"segment length must be positive, got {self.target_s}")
        if self.duration is not None and self.duration <= 0:
            raise ValueError(f"duration must be positive, got {self.duration}")

    def cuts_at(self, segment_start: float, keyframe_time: float) -> bool:
        """Whether the segment that began at ``segment_start`` ends at this keyframe."""
        if keyframe_time - segment_start < self.target_s - 1e-6:
            return False
        if self.duration is None:
            return True
        return self.duration - keyframe_time >= self.target_s * MIN_TAIL_FRACTION


@dataclass(frozen=True)
class Resume:
    """Where a (re)connected source continues: the next segment's index, its start on the
    feed's timeline, and, for a seekable source, the position in the source to seek to
    (None: read the source from wherever it is now)."""

    segment_index: int
    timeline_start: float
    seek_to: float | None


def resume_after_drop(
    next_index: int, published_end: float, seekable: bool, elapsed_wall_s: float
) -> Resume:
    """Where to continue after a drop, given the next segment index and the end of the last
    published segment on the timeline. A seekable source (a file, a VOD) seeks back to that
    end: what was cut after it was never published and is read again. A live source cannot be
    rewound; its timeline keeps pace with the wall clock, so the time it was away is a gap on
    the timeline rather than a shift of everything after it."""
    if next_index < 0 or published_end < 0:
        raise ValueError("segment index and timeline position must not be negative")
    published_end = round(published_end, _DIGITS)
    if seekable:
        return Resume(next_index, published_end, seek_to=published_end)
    start = round(max(published_end, elapsed_wall_s), _DIGITS)
    return Resume(next_index, start, seek_to=None)


def restart_after(
    last: LiveSegmentRecorded | None, source: str, seekable: bool, now: datetime
) -> Resume:
    """Where a feed started again (a new `vip live`, another runner) continues, given the last
    segment an earlier run of the same feed id published (``live.segments``).

    * A live source continues the feed's timeline at the next index; the time the feed was
      away (from that segment's publication to ``now``) is a gap on the timeline, as after a
      reconnect, so nothing published before is overwritten.
    * A seekable source whose earlier run of the same source stopped before its end (no
      final segment) seeks to that segment's end and goes on from the next index, as a
      reconnect does: no duplicate, no gap. A seekable source's timeline is its own clock.
    * Otherwise (no earlier run, a finished file, another file) the source starts afresh at
      segment 0, whose moments the same file's segments overwrite with themselves."""
    if last is None:
        return Resume(0, 0.0, seek_to=None)
    end = round(last.end, _DIGITS)
    if seekable:
        if last.source == source and not last.final:
            return Resume(last.segment_index + 1, end, seek_to=end)
        return Resume(0, 0.0, seek_to=None)
    away = max(0.0, (now - last.occurred_at).total_seconds())
    return Resume(last.segment_index + 1, round(end + away, _DIGITS), seek_to=None)


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with jitter for reconnects: try ``n`` (1-based) waits between half
    and all of ``min(max_s, base_s * 2 ** (n - 1))`` ("equal jitter"), so feeds that dropped
    together do not reconnect together. ``max_tries`` consecutive failures end the feed."""

    base_s: float = 0.5
    max_s: float = 30.0
    max_tries: int = 10

    def __post_init__(self) -> None:
        if self.base_s <= 0 or self.max_s < self.base_s:
            raise ValueError(f"need 0 < base_s <= max_s, got {self.base_s} and {self.max_s}")
        if self.max_tries < 1:
            raise ValueError(f"max_tries must be at least 1, got {self.max_tries}")

    def delay_s(self, attempt: int, unit_random: float) -> float:
        """The wait before reconnect ``attempt``; ``unit_random`` is uniform in [0, 1)."""
        if attempt < 1:
            raise ValueError(f"attempts start at 1, got {attempt}")
        if not 0 <= unit_random < 1:
            raise ValueError(f"unit_random must be in [0, 1), got {unit_random}")
        ceiling = min(self.max_s, self.base_s * 2 ** min(attempt - 1, 62))
        return ceiling / 2 + ceiling / 2 * unit_random

    def gives_up_after(self, failures: int) -> bool:
        return failures >= self.max_tries
