"""The feed runner's pure core: which feeds run, when a crashed one starts again, and what
status each one has. No threads, no Kafka, no clock: the runner (vip/feeds/runner.py) hands in
what happened with the time it happened and carries out the commands it gets back.

A feed's life in one runner: registered (its partition is ours) -> running -> the run ends:
the source ended (stopped), the source was refused (failed), or it crashed (reconnecting, and
after a backoff running again; failed after too many crashes in a row). A deletion stops the
run and says "stopped" once the run has ended. A partition taken away by a rebalance stops its
feeds silently: the runner that gets it next says what they do.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from streams.records import FeedRegistered, FeedState, FeedStatusChanged
from vip.live.timeline import Backoff

__all__ = [
    "Command",
    "FeedSupervisor",
    "PublishStatus",
    "RunEnded",
    "StartRun",
    "StopRun",
]

Phase = Literal["running", "waiting", "deleting", "revoked", "shutting_down", "done"]
SOURCE_ENDED = "the source ended"
DELETED = "the feed was deleted"
SHUT_DOWN = "the feed runner shut down"


@dataclass(frozen=True)
class StartRun:
    feed_id: str
    registration: FeedRegistered
    generation: int


@dataclass(frozen=True)
class StopRun:
    feed_id: str
    generation: int


@dataclass(frozen=True)
class PublishStatus:
    status: FeedStatusChanged


Command = StartRun | StopRun | PublishStatus


@dataclass(frozen=True)
class RunEnded:
    """A run of a feed returned (``error`` None) or raised; ``permanent`` when starting it
    again cannot help (its source is refused)."""

    feed_id: str
    generation: int
    error: str | None = None
    permanent: bool = False


@dataclass
class _Feed:
    registration: FeedRegistered
    partition: int
    generation: int = 0
    phase: Phase = "running"
    started_at: datetime | None = None
    restart_at: datetime | None = None
    crashes_in_a_row: int = 0
    restarts: int = 0
    segments: int = 0
    highest_index: int = -1
    last_segment_at: datetime | None = None
    last_error: str | None = None


class FeedSupervisor:
    """The feeds one runner owns and what to do about each event; every method returns the
    commands to carry out, in order."""

    def __init__(self, runner: str, backoff: Backoff, unit_random: Callable[[], float]) -> None:
        self.runner = runner
        self._backoff = backoff
        self._random = unit_random
        self._feeds: dict[str, _Feed] = {}

    # Reads ---------------------------------------------------------------------------------
    def phase(self, feed_id: str) -> Phase | None:
        feed = self._feeds.get(feed_id)
        return feed.phase if feed is not None else None

    def active(self) -> list[str]:
        """Feeds with a run in progress (being stopped included)."""
        return sorted(f for f, feed in self._feeds.items() if feed.phase not in ("waiting", "done"))

    def next_restart(self) -> datetime | None:
        due = [f.restart_at for f in self._feeds.values() if f.restart_at is not None]
        return min(due) if due else None

    # Events --------------------------------------------------------------------------------
    def registered(self, record: FeedRegistered, partition: int, now: datetime) -> list[Command]:
        """The registry holds ``record`` for its feed (new, changed or read again)."""
        feed_id = record.video_id
        current = self._feeds.get(feed_id)
        same = current is not None and current.registration.event_id == record.event_id
        if same and current is not None and current.phase != "revoked":
            return []  # read again: a duplicate, or a partition given back and read anew
        commands: list[Command] = []
        generation = 0
        if current is not None:
            generation = current.generation + 1
            if current.phase == "running":
                commands.append(StopRun(feed_id, current.generation))
        feed = _Feed(record, partition, generation=generation)
        self._feeds[feed_id] = feed
        return commands + self._start(feed_id, feed, now)

    def deregistered(self, feed_id: str, now: datetime) -> list[Command]:
        """The feed was deleted (a tombstone in the registry)."""
        feed = self._feeds.get(feed_id)
        if feed is None:
            return []
        if feed.phase in ("waiting", "done"):
            del self._feeds[feed_id]
            return [self._status(feed_id, feed, "stopped", now, detail=DELETED)]
        feed.phase = "deleting"
        return [StopRun(feed_id, feed.generation)]

    def revoked(self, partitions: Iterable[int], now: datetime) -> list[Command]:
        """The registry's ``partitions`` went to another runner: stop their feeds, say nothing."""
        lost = set(partitions)
        commands: list[Command] = []
        for feed_id, feed in list(self._feeds.items()):
            if feed.partition not in lost:
                continue
            if feed.phase in ("waiting", "done"):
                del self._feeds[feed_id]
            else:
                feed.phase = "revoked"
                commands.append(StopRun(feed_id, feed.generation))
        return commands

    def run_ended(self, ended: RunEnded, now: datetime) -> list[Command]:
        feed = self._feeds.get(ended.feed_id)
        if feed is None or feed.generation != ended.generation:
            return []  # a run replaced or forgotten before it returned
        feed_id = ended.feed_id
        if feed.phase in ("deleting", "revoked", "shutting_down"):
            del self._feeds[feed_id]
            if feed.phase == "revoked":
                return []
            detail = DELETED if feed.phase == "deleting" else SHUT_DOWN
            return [self._status(feed_id, feed, "stopped", now, detail=detail)]
        if ended.error is None:
            feed.phase = "done"
            return [self._status(feed_id, feed, "stopped", now, detail=SOURCE_ENDED)]
        feed.last_error = ended.error
        if ended.permanent:
            feed.phase = "done"
            return [self._status(feed_id, feed, "failed", now, detail="the source was refused")]
        ran_for = now - (feed.started_at or now)
        if ran_for >= timedelta(seconds=self._backoff.max_s):
            feed.crashes_in_a_row = 0
        feed.crashes_in_a_row += 1
        if self._backoff.gives_up_after(feed.crashes_in_a_row):
            feed.phase = "done"
            detail = f"crashed {feed.crashes_in_a_row} times in a row; not started again"
            return [self._status(feed_id, feed, "failed", now, detail=detail)]
        delay = self._backoff.delay_s(feed.crashes_in_a_row, self._random())
        feed.phase = "waiting"
        feed.restart_at = now + timedelta(seconds=delay)
        detail = f"crashed; starting again in {delay:.1f} s"
        return [self._status(feed_id, feed, "reconnecting", now, detail=detail)]

    def tick(self, now: datetime) -> list[Command]:
        """Start the crashed feeds whose backoff is over."""
        commands: list[Command] = []
        for feed_id, feed in sorted(self._feeds.items()):
            if feed.phase == "waiting" and feed.restart_at is not None and feed.restart_at <= now:
                feed.generation += 1
                feed.restarts += 1
                commands += self._start(feed_id, feed, now)
        return commands

    def segment_published(
        self, feed_id: str, generation: int, segment_index: int, started_at: datetime, now: datetime
    ) -> list[Command]:
        """A run of the feed stored a segment on the segments topic. A run's segment indexes
        start at 0; one already seen in this run (sent again after a reconnect) counts once."""
        feed = self._feeds.get(feed_id)
        if feed is None or feed.generation != generation or feed.phase in ("waiting", "done"):
            return []
        if segment_index <= feed.highest_index:
            return []
        feed.highest_index = segment_index
        feed.segments += 1
        feed.last_segment_at = max(started_at, feed.last_segment_at or started_at)
        if feed.phase != "running":
            return []  # the last segment of a run being stopped: its "stopped" will count it
        return [self._status(feed_id, feed, "running", now)]

    def shutdown(self, now: datetime) -> list[Command]:
        """Stop every run; a feed waiting to start again is stopped at once."""
        commands: list[Command] = []
        for feed_id, feed in sorted(self._feeds.items()):
            if feed.phase == "running":
                feed.phase = "shutting_down"
                commands.append(StopRun(feed_id, feed.generation))
            elif feed.phase == "waiting":
                del self._feeds[feed_id]
                commands.append(self._status(feed_id, feed, "stopped", now, detail=SHUT_DOWN))
        return commands

    # Helpers -------------------------------------------------------------------------------
    def _start(self, feed_id: str, feed: _Feed, now: datetime) -> list[Command]:
        feed.phase = "running"
        feed.started_at = now
        feed.restart_at = None
        feed.highest_index = -1
        return [
            StartRun(feed_id, feed.registration, feed.generation),
            self._status(feed_id, feed, "running", now),
        ]

    def _status(
        self, feed_id: str, feed: _Feed, state: FeedState, now: datetime, detail: str | None = None
    ) -> PublishStatus:
        return PublishStatus(
            FeedStatusChanged(
                video_id=feed_id,
                occurred_at=now,
                registration_id=feed.registration.event_id,
                state=state,
                detail=detail,
                segments_published=feed.segments,
                last_segment_at=feed.last_segment_at,
                last_error=feed.last_error,
                restarts=feed.restarts,
                runner=self.runner,
            )
        )
