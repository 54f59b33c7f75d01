import itertools

import pytest

from agents.chunking.core import PlannedChunk, plan_chunks, sample_times, video_id_for


def test_chunks_are_cut_on_the_first_keyframe_after_the_target_length():
    keyframes = [0.0, 4.8, 9.6, 14.4, 19.2, 24.0, 28.8]
    assert plan_chunks(keyframes, duration=30.16, target_s=10.0) == [
        PlannedChunk(0, 0.0, 14.4, True),
        PlannedChunk(1, 14.4, 30.16, True),
    ]


def test_dense_keyframes_give_chunks_of_the_target_length():
    keyframes = [float(t) for t in range(0, 40)]
    chunks = plan_chunks(keyframes, duration=39.5, target_s=10.0)
    assert [(c.start, c.end) for c in chunks] == [
        (0.0, 10.0),
        (10.0, 20.0),
        (20.0, 30.0),
        (30.0, 39.5),
    ]


def test_a_video_with_a_single_keyframe_is_cut_at_the_target_and_says_so():
    chunks = plan_chunks([0.0], duration=25.0, target_s=10.0)
    assert chunks == [
        PlannedChunk(0, 0.0, 10.0, True),
        PlannedChunk(1, 10.0, 20.0, False),
        PlannedChunk(2, 20.0, 25.0, False),
    ]


def test_a_short_video_is_one_chunk():
    assert plan_chunks([0.0], duration=3.41, target_s=10.0) == [PlannedChunk(0, 0.0, 3.41, True)]


def test_a_tiny_tail_is_merged_into_the_previous_chunk():
    chunks = plan_chunks([0.0, 10.0], duration=11.0, target_s=10.0)
    assert [(c.start, c.end) for c in chunks] == [(0.0, 11.0)]


def test_chunks_cover_the_whole_video_without_gaps():
    keyframes = [0.003, 0.378, 0.461, 5.795, 11.128, 11.795, 17.0, 22.5, 28.1]
    chunks = plan_chunks(keyframes, duration=30.003, target_s=5.0)
    assert chunks[0].start == 0.0 and chunks[-1].end == 30.003
    for before, after in itertools.pairwise(chunks):
        assert before.end == after.start
    assert [c.index for c in chunks] == list(range(len(chunks)))


@pytest.mark.parametrize(("duration", "target"), [(0.0, 10.0), (10.0, 0.0), (-1.0, 5.0)])
def test_planning_rejects_non_positive_lengths(duration, target):
    with pytest.raises(ValueError, match="must be positive"):
        plan_chunks([0.0], duration=duration, target_s=target)


def test_sample_times_start_at_the_chunk_and_step_evenly():
    assert sample_times(10.0, 15.0, 2.0) == [10.0, 12.0, 14.0]
    assert sample_times(0.0, 0.5, 2.0) == [0.0]


def test_stream_keyframes_are_sampled_and_displace_nearby_regular_samples():
    # bikes.mp4: its encoder put keyframes on the shot cuts.
    keys = [0.0, 1.2, 3.04, 5.48, 7.48, 9.68]
    assert sample_times(0.0, 10.0, 2.0, keys) == [0.0, 1.2, 3.04, 5.48, 7.48, 9.68]
    # 10.0 is dropped beside a keyframe at 9.8 (closer than every_s / 4).
    assert sample_times(8.0, 12.0, 2.0, [9.8]) == [8.0, 9.8]


def test_periodic_keyframes_do_not_multiply_the_samples():
    every_second = [float(t) for t in range(0, 10)]
    assert sample_times(0.0, 10.0, 2.0, every_second) == [0.0, 2.0, 4.0, 6.0, 8.0]


def test_video_ids_come_from_the_content_hash():
    assert video_id_for("ab" * 32) == "vabababababababab"
    with pytest.raises(ValueError, match="too short"):
        video_id_for("abc")
