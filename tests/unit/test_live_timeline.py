"""The pure cores of live feeds: where segments are cut, where a reconnect resumes, and how
long it waits."""

from __future__ import annotations

import pytest

from vip.live.timeline import Backoff, Resume, SegmentPlanner, resume_after_drop

# bikes.mp4's keyframes (seconds) and duration, as its container gives them.
BIKES_KEYFRAMES = (0.0, 1.2, 3.04, 5.48, 7.48, 9.68)
BIKES_DURATION = 10.0


def cuts(planner: SegmentPlanner, keyframes: tuple[float, ...]) -> list[float]:
    start, found = keyframes[0], []
    for keyframe in keyframes[1:]:
        if planner.cuts_at(start, keyframe):
            found.append(keyframe)
            start = keyframe
    return found


def test_segments_end_at_the_first_keyframe_past_the_target_length():
    planner = SegmentPlanner(target_s=2.0, duration=BIKES_DURATION)

    assert cuts(planner, BIKES_KEYFRAMES) == [3.04, 5.48, 7.48]


def test_a_seekable_source_merges_a_short_tail_into_the_last_segment():
    # 9.68 is 2.2 s after 7.48, but would leave a 0.32 s tail (< 25 % of 2 s).
    planner = SegmentPlanner(target_s=2.0, duration=BIKES_DURATION)

    assert planner.cuts_at(7.48, 9.68) is False


def test_a_live_source_cuts_without_knowing_its_end():
    planner = SegmentPlanner(target_s=2.0)

    assert cuts(planner, BIKES_KEYFRAMES) == [3.04, 5.48, 7.48, 9.68]


def test_five_second_segments_of_bikes_are_two():
    planner = SegmentPlanner(target_s=5.0, duration=BIKES_DURATION)

    assert cuts(planner, BIKES_KEYFRAMES) == [5.48]


def test_a_keyframe_exactly_at_the_target_cuts():
    assert SegmentPlanner(target_s=2.0).cuts_at(1.0, 3.0) is True


@pytest.mark.parametrize(("target", "duration"), [(0.0, None), (-1.0, None), (2.0, 0.0)])
def test_planner_rejects_lengths_that_are_not_positive(target: float, duration: float | None):
    with pytest.raises(ValueError, match="must be positive"):
        SegmentPlanner(target_s=target, duration=duration)


def test_a_seekable_source_resumes_at_the_end_of_the_last_published_segment():
    resume = resume_after_drop(next_index=2, published_end=5.48, seekable=True, elapsed_wall_s=9.0)

    assert resume == Resume(segment_index=2, timeline_start=5.48, seek_to=5.48)


def test_a_live_source_continues_its_timeline_at_the_wall_clock():
    resume = resume_after_drop(
        next_index=3, published_end=7.5, seekable=False, elapsed_wall_s=12.25
    )

    assert resume == Resume(segment_index=3, timeline_start=12.25, seek_to=None)


def test_a_live_timeline_never_goes_back_before_what_was_published():
    resume = resume_after_drop(next_index=3, published_end=7.5, seekable=False, elapsed_wall_s=7.0)

    assert resume == Resume(segment_index=3, timeline_start=7.5, seek_to=None)


def test_a_fresh_feed_starts_at_zero_with_segment_zero():
    resume = resume_after_drop(next_index=0, published_end=0.0, seekable=True, elapsed_wall_s=0.0)

    assert resume == Resume(segment_index=0, timeline_start=0.0, seek_to=0.0)


def test_resume_rejects_a_negative_position():
    with pytest.raises(ValueError, match="must not be negative"):
        resume_after_drop(next_index=-1, published_end=0.0, seekable=True, elapsed_wall_s=0.0)


def test_backoff_doubles_between_half_and_all_of_its_ceiling():
    backoff = Backoff(base_s=0.5, max_s=30.0, max_tries=10)

    assert [backoff.delay_s(n, 0.0) for n in (1, 2, 3, 4)] == [0.25, 0.5, 1.0, 2.0]
    assert [backoff.delay_s(n, 0.5) for n in (1, 2, 3, 4)] == [0.375, 0.75, 1.5, 3.0]


def test_backoff_is_capped_at_its_maximum():
    backoff = Backoff(base_s=0.5, max_s=30.0, max_tries=100)

    assert backoff.delay_s(7, 0.0) == 15.0
    assert backoff.delay_s(99, 0.999) == pytest.approx(29.985)


def test_backoff_gives_up_after_its_tries():
    backoff = Backoff(max_tries=3)

    assert [backoff.gives_up_after(n) for n in (1, 2, 3)] == [False, False, True]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"base_s": 0.0}, "need 0 < base_s <= max_s, got 0.0 and 30.0"),
        ({"base_s": 5.0, "max_s": 1.0}, "need 0 < base_s <= max_s, got 5.0 and 1.0"),
        ({"max_tries": 0}, "max_tries must be at least 1, got 0"),
    ],
)
def test_backoff_rejects_bad_settings(kwargs: dict[str, float], message: str):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        Backoff(**kwargs)  # type: ignore[arg-type]


def test_backoff_rejects_attempts_before_the_first_and_randoms_out_of_range():
    backoff = Backoff()

    with pytest.raises(ValueError, match="attempts start at 1, got 0"):
        backoff.delay_s(0, 0.5)
    with pytest.raises(ValueError, match=r"unit_random must be in \[0, 1\), got 1.0"):
        backoff.delay_s(1, 1.0)
