"""Burrow's consumer-lag rules (vip/lag_status.py) over windows of samples shaped like those
the lag reader takes from Kafka: one every 10 s, offsets and lag as a Faust worker leaves
them."""

from __future__ import annotations

import pytest

from vip.lag import GroupLag, LagSnapshot, PartitionLag
from vip.lag_status import (
    LagStatus,
    LagWindow,
    OffsetSample,
    group_status,
    partition_status,
)

T0 = 1_795_946_000.0
EVERY_S = 10.0
WINDOW_S = 60.0


def samples(
    committed: list[int | None], ends: list[int], owned: bool | list[bool] = True
) -> list[OffsetSample]:
    """One sample per EVERY_S from T0; lag is the end minus the committed offset."""
    owners = owned if isinstance(owned, list) else [owned] * len(committed)
    return [
        OffsetSample(
            at=T0 + i * EVERY_S,
            committed=done,
            lag=end - (done or 0),
            owned=owner,
        )
        for i, (done, end, owner) in enumerate(zip(committed, ends, owners, strict=True))
    ]


def now_after(history: list[OffsetSample]) -> float:
    return history[-1].at


def test_a_caught_up_consumer_is_ok() -> None:
    history = samples([341, 341, 345, 349], [341, 341, 345, 349])

    assert partition_status(history, now_after(history), WINDOW_S) is LagStatus.OK


def test_lag_that_was_zero_once_in_the_window_is_ok_even_if_it_grows_now() -> None:
    history = samples([341, 341, 341, 341], [341, 344, 350, 361], owned=False)

    assert partition_status(history, now_after(history), WINDOW_S) is LagStatus.OK


def test_a_zero_lag_older_than_the_window_no_longer_counts() -> None:
    # Caught up at T0, then nothing committed for 8 samples while messages keep coming.
    history = samples([341] * 9, [341, 344, 350, 361, 370, 380, 390, 400, 410])

    assert partition_status(history, now_after(history), WINDOW_S) is LagStatus.STALL


def test_an_offset_going_backwards_is_an_error() -> None:
    history = samples([300, 320, 290, 300], [350, 360, 370, 380])

    assert partition_status(history, now_after(history), WINDOW_S) is LagStatus.ERR


def test_no_owner_and_no_commit_for_longer_than_the_window_is_stopped() -> None:
    # The worker left at T0 + 10 s; its last commit was 341; messages keep arriving.
    history = samples(
        [300, 341, 341, 341, 341, 341, 341, 341, 341],
        [345, 350, 360, 370, 380, 390, 400, 410, 420],
        owned=[True, True] + [False] * 7,
    )

    status = partition_status(history, now_after(history), WINDOW_S)

    assert status is LagStatus.STOP
    # One window after the last commit is not yet longer than the window.
    assert partition_status(history[:-1], now_after(history[:-1]), WINDOW_S) is LagStatus.STALL


def test_a_live_owner_that_commits_nothing_is_stalled_not_stopped() -> None:
    # A consumer stuck on one message: it heartbeats (owns the partition) but never commits.
    history = samples([341] * 12, [350 + 5 * i for i in range(12)], owned=True)

    assert partition_status(history, now_after(history), WINDOW_S) is LagStatus.STALL


def test_watching_for_less_than_a_window_cannot_tell_stopped_from_stalled() -> None:
    history = samples([341, 341, 341], [350, 355, 360], owned=False)

    assert partition_status(history, now_after(history), WINDOW_S) is LagStatus.STALL


def test_offsets_advancing_while_lag_never_decreases_is_a_warning() -> None:
    history = samples([300, 310, 320, 330, 340], [340, 352, 364, 376, 388])

    assert partition_status(history, now_after(history), WINDOW_S) is LagStatus.WARN


def test_offsets_advancing_with_lag_decreasing_somewhere_is_ok() -> None:
    history = samples([300, 310, 330, 340, 350], [340, 352, 364, 376, 388])

    assert partition_status(history, now_after(history), WINDOW_S) is LagStatus.OK


def test_a_partition_never_committed_on_counts_its_first_commit_as_a_sign_of_life() -> None:
    history = samples([None] * 8 + [12], [20] * 9, owned=False)

    assert partition_status(history, now_after(history), WINDOW_S) is LagStatus.OK
    assert partition_status(history[:-1], now_after(history[:-1]), WINDOW_S) is LagStatus.STOP


def test_a_single_sample_with_lag_is_ok_until_there_is_a_window() -> None:
    history = samples([341], [350])

    assert partition_status(history, now_after(history), WINDOW_S) is LagStatus.OK


def test_a_group_is_its_worst_partition_and_an_unknown_group_is_an_error() -> None:
    assert group_status([LagStatus.OK, LagStatus.STOP, LagStatus.WARN], True) is LagStatus.STOP
    assert group_status([], True) is LagStatus.OK
    assert group_status([], False) is LagStatus.ERR
    assert [s.code for s in LagStatus] == [0, 1, 2, 3, 4]


def snapshot(at: float, committed: int, end: int, state: str = "STABLE") -> LagSnapshot:
    owned = state == "STABLE"
    partition = PartitionLag(
        "videos.uploaded", 0, committed, end, end - committed, 0.0 if end == committed else 42.5,
        owned,
    )  # fmt: skip
    return LagSnapshot(at, (GroupLag("vip-chunking", state, int(owned), (partition,)),))


def test_the_window_reports_the_latest_offsets_with_their_status_over_the_window() -> None:
    window = LagWindow(WINDOW_S)
    window.add(snapshot(T0, 10, 10))
    for i in range(1, 9):
        window.add(snapshot(T0 + i * EVERY_S, 10, 10 + i, state="EMPTY"))

    report = window.report()

    [group] = report.groups
    assert (group.group, group.state, group.members, group.status) == (
        "vip-chunking", "EMPTY", 0, LagStatus.STOP,
    )  # fmt: skip
    assert (group.lag, group.max_time_lag_s) == (8, 42.5)
    [partition] = group.partitions
    assert (partition.committed, partition.end, partition.lag, partition.owned) == (
        10,
        18,
        8,
        False,
    )
    assert report.sampled_at == T0 + 80
    assert report.samples == 7  # T0 + 20 s to T0 + 80 s
    assert report.error is None


def test_the_window_keeps_two_windows_of_snapshots() -> None:
    window = LagWindow(WINDOW_S)
    for i in range(40):
        window.add(snapshot(T0 + i * EVERY_S, 10, 10))

    assert len(window._snapshots) == 13  # 120 s back from the latest, both ends included


def test_an_unknown_group_is_reported_as_an_error() -> None:
    window = LagWindow(WINDOW_S)
    window.add(LagSnapshot(T0, (GroupLag("nobody", "DEAD", 0, ()),)))

    [group] = window.report().groups

    assert (group.status, group.partitions) == (LagStatus.ERR, [])


def test_a_window_must_have_a_length() -> None:
    with pytest.raises(ValueError, match="window_s must be positive"):
        LagWindow(0)
