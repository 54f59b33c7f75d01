"""The feed runner's pure core: starts, stops, restarts with backoff, and the statuses it says."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from streams.records import FeedRegistered
from vip.feeds.core import (
    DELETED,
    SHUT_DOWN,
    SOURCE_ENDED,
    Command,
    FeedSupervisor,
    PublishStatus,
    RunEnded,
    StartRun,
    StopRun,
)
from vip.live.timeline import Backoff

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
RUNNER = "host-a:4242"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def registration(feed_id: str = "cam-1", event_id: str = "reg-1") -> FeedRegistered:
    return FeedRegistered(
        video_id=feed_id,
        event_id=event_id,
        occurred_at=T0,
        source="rtsp://camera.example.com/s",
        segment_seconds=5.0,
    )


def supervisor(max_tries: int = 3) -> FeedSupervisor:
    # unit_random 0: each backoff is half its ceiling, 1 s * 2**(n-1), capped at 8 s.
    return FeedSupervisor(RUNNER, Backoff(base_s=1.0, max_s=8.0, max_tries=max_tries), lambda: 0.0)


def states(commands: list[Command]) -> list[tuple[str, str, str | None]]:
    return [
        (c.status.video_id, c.status.state, c.status.detail)
        for c in commands
        if isinstance(c, PublishStatus)
    ]


def started(core: FeedSupervisor, feed_id: str = "cam-1") -> FeedSupervisor:
    core.registered(registration(feed_id), partition=0, now=at(0))
    return core


def test_a_registered_feed_is_started_and_said_to_run():
    core = supervisor()
    record = registration()

    commands = core.registered(record, partition=1, now=at(0))

    assert commands[0] == StartRun("cam-1", record, 0)
    assert states(commands) == [("cam-1", "running", None)]
    status = commands[1].status  # type: ignore[union-attr]
    assert (status.registration_id, status.runner, status.occurred_at) == ("reg-1", RUNNER, at(0))


def test_a_registration_read_again_changes_nothing():
    core = started(supervisor())

    assert core.registered(registration(), partition=0, now=at(5)) == []


def test_a_changed_registration_replaces_the_run():
    core = started(supervisor())
    changed = registration(event_id="reg-2")

    commands = core.registered(changed, partition=0, now=at(5))

    assert commands[:2] == [StopRun("cam-1", 0), StartRun("cam-1", changed, 1)]
    assert core.run_ended(RunEnded("cam-1", 0, error="stopped"), at(6)) == []


def test_a_deleted_feed_is_stopped_and_said_stopped_once_its_run_has_ended():
    core = started(supervisor())

    assert core.deregistered("cam-1", at(3)) == [StopRun("cam-1", 0)]
    ended = core.run_ended(RunEnded("cam-1", 0), at(4))

    assert states(ended) == [("cam-1", "stopped", DELETED)]
    assert core.phase("cam-1") is None


def test_a_feed_whose_source_ends_is_stopped_and_not_started_again():
    core = started(supervisor())

    ended = core.run_ended(RunEnded("cam-1", 0), at(10))

    assert states(ended) == [("cam-1", "stopped", SOURCE_ENDED)]
    assert core.tick(at(1000)) == []


def test_a_crashed_feed_reconnects_after_its_backoff():
    core = started(supervisor())

    crashed = core.run_ended(RunEnded("cam-1", 0, error="SourceDropped: gone"), at(2))
    early = core.tick(at(2.4))
    due = core.tick(at(2.5))

    assert states(crashed) == [("cam-1", "reconnecting", "crashed; starting again in 0.5 s")]
    assert crashed[0].status.last_error == "SourceDropped: gone"  # type: ignore[union-attr]
    assert early == []
    assert due[0] == StartRun("cam-1", registration(), 1)
    assert due[1].status.restarts == 1  # type: ignore[union-attr]
    assert states(due) == [("cam-1", "running", None)]


def test_the_backoff_doubles_with_each_crash_in_a_row():
    core = started(supervisor(max_tries=10))
    delays = []
    now = 0.0
    for generation in range(4):
        now += 1
        crashed = core.run_ended(RunEnded("cam-1", generation, error="boom"), at(now))
        delays.append(states(crashed)[0][2])
        now += 10
        core.tick(at(now))

    assert delays == [f"crashed; starting again in {d} s" for d in ("0.5", "1.0", "2.0", "4.0")]


def test_a_feed_that_keeps_crashing_fails():
    core = started(supervisor(max_tries=3))
    core.run_ended(RunEnded("cam-1", 0, error="boom"), at(1))
    core.tick(at(5))
    core.run_ended(RunEnded("cam-1", 1, error="boom"), at(6))
    core.tick(at(10))

    failed = core.run_ended(RunEnded("cam-1", 2, error="boom 3"), at(11))

    assert states(failed) == [("cam-1", "failed", "crashed 3 times in a row; not started again")]
    assert failed[0].status.last_error == "boom 3"  # type: ignore[union-attr]
    assert core.tick(at(1000)) == []


def test_a_run_as_long_as_the_longest_backoff_forgives_earlier_crashes():
    core = started(supervisor(max_tries=2))
    core.run_ended(RunEnded("cam-1", 0, error="boom"), at(1))
    core.tick(at(2))

    crashed = core.run_ended(RunEnded("cam-1", 1, error="boom"), at(2 + 8))

    assert states(crashed) == [("cam-1", "reconnecting", "crashed; starting again in 0.5 s")]


def test_a_refused_source_fails_the_feed_at_once():
    core = started(supervisor())
    refused = RunEnded("cam-1", 0, error="10.0.0.1 is private", permanent=True)

    failed = core.run_ended(refused, at(1))

    assert states(failed) == [("cam-1", "failed", "the source was refused")]
    assert core.tick(at(1000)) == []


def test_segments_are_counted_once_per_index_of_a_run():
    core = started(supervisor())

    first = core.segment_published("cam-1", 0, 0, at(0.1), at(5))
    again = core.segment_published("cam-1", 0, 0, at(0.1), at(6))
    second = core.segment_published("cam-1", 0, 1, at(5.1), at(10))
    other = core.segment_published("cam-9", 0, 0, at(0.1), at(10))
    replaced_run = core.segment_published("cam-1", 7, 2, at(10.1), at(15))

    assert again == other == replaced_run == []
    assert [c.status.segments_published for c in first + second] == [1, 2]  # type: ignore[union-attr]
    assert second[0].status.last_segment_at == at(5.1)  # type: ignore[union-attr]


def test_a_restarted_run_counts_on_from_where_the_feed_was():
    core = started(supervisor())
    core.segment_published("cam-1", 0, 0, at(0.1), at(5))
    core.run_ended(RunEnded("cam-1", 0, error="boom"), at(6))
    core.tick(at(7))

    counted = core.segment_published("cam-1", 1, 0, at(7.1), at(12))

    assert counted[0].status.segments_published == 2  # type: ignore[union-attr]


def test_the_last_segment_of_a_deleted_feed_is_counted_in_its_stopped_status():
    core = started(supervisor())
    core.segment_published("cam-1", 0, 0, at(0.1), at(5))
    core.deregistered("cam-1", at(6))

    final = core.segment_published("cam-1", 0, 1, at(5.1), at(6.5))
    ended = core.run_ended(RunEnded("cam-1", 0), at(7))

    assert final == []
    assert ended[0].status.segments_published == 2  # type: ignore[union-attr]


def test_feeds_of_a_revoked_partition_stop_without_a_word():
    core = FeedSupervisor(RUNNER, Backoff(1.0, 8.0, 3), lambda: 0.0)
    core.registered(registration("cam-1"), partition=0, now=at(0))
    core.registered(registration("cam-2", event_id="reg-9"), partition=1, now=at(0))

    revoked = core.revoked([1], at(3))
    ended = core.run_ended(RunEnded("cam-2", 0), at(4))

    assert revoked == [StopRun("cam-2", 0)]
    assert ended == []
    assert core.active() == ["cam-1"]


def test_a_partition_given_back_before_its_runs_ended_starts_them_again():
    core = started(supervisor())
    core.revoked([0], at(3))

    again = core.registered(registration(), partition=0, now=at(4))

    assert again[0] == StartRun("cam-1", registration(), 1)


def test_on_shutdown_runs_are_stopped_and_said_stopped_and_waiting_feeds_at_once():
    core = started(supervisor())
    core.registered(registration("cam-2", event_id="reg-2"), partition=0, now=at(0))
    core.run_ended(RunEnded("cam-2", 0, error="boom"), at(1))

    stopping = core.shutdown(at(2))
    ended = core.run_ended(RunEnded("cam-1", 0, error="interrupted"), at(3))

    assert stopping[0] == StopRun("cam-1", 0)
    assert states(stopping) == [("cam-2", "stopped", SHUT_DOWN)]
    assert states(ended) == [("cam-1", "stopped", SHUT_DOWN)]
    assert core.active() == []
