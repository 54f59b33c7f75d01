"""The jobs stage's state: the latest JobState per video, in memory, rebuilt from the compacted
``jobs`` topic whenever the worker is given partitions (at start, and on every rebalance, so a
partition that moved here brings the state its last owner published)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from agents.jobs.core import RECORDS, fold
from agents.jobs.log import StoredJob
from streams.errors import EventError
from streams.records import GraphUpdated, JobState, decode

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Delivered:
    """One message of a source topic, as the stage read it."""

    topic: str
    partition: int
    timestamp_s: float
    value: bytes | None


class JobStore:
    def __init__(self, load: Callable[[], dict[str, StoredJob]]) -> None:
        self._load = load
        self._jobs: dict[str, StoredJob] = {}
        self._deleted: set[str] = set()
        self._lock = threading.Lock()
        self.stale = True

    def reload(self) -> int:
        """Replace the state with the topic's; returns how many jobs it holds."""
        jobs = self._load()
        with self._lock:
            self._jobs = jobs
            self.stale = False
        log.info("jobs: %d jobs loaded from the jobs topic", len(jobs))
        return len(jobs)

    def get(self, video_id: str) -> JobState | None:
        with self._lock:
            stored = self._jobs.get(video_id)
        return stored.state if stored else None

    def apply(self, messages: Iterable[Delivered]) -> list[JobState]:
        """Fold the messages in; the jobs that changed, each once, in their latest state."""
        changed: dict[str, JobState] = {}
        with self._lock:
            for message in messages:
                record_type = RECORDS.get(message.topic)
                if record_type is None:
                    continue
                try:
                    record = decode(message.value, record_type)
                except EventError:
                    continue  # the stage that consumes the topic dead-letters it
                if isinstance(record, GraphUpdated) and record.removed:
                    self._jobs.pop(record.video_id, None)  # `vip delete`: forget the job
                    changed.pop(record.video_id, None)
                    self._deleted.add(record.video_id)
                    continue
                self._deleted.discard(record.video_id)
                at = datetime.fromtimestamp(message.timestamp_s, UTC)
                stored = self._jobs.get(record.video_id)
                before = stored.state if stored else None
                after = fold(before, message.topic, record, at)
                if after is not None and after != before:
                    self._jobs[record.video_id] = StoredJob(after, message.partition)
                    changed[record.video_id] = after
        return list(changed.values())

    def expired(self, now: datetime, retention: timedelta, partitions: set[int]) -> list[str]:
        """Finished jobs older than ``retention`` among the videos of ``partitions`` (those
        this worker owns: the others' states here may be out of date)."""
        cutoff = now - retention
        with self._lock:
            return [
                video_id
                for video_id, stored in self._jobs.items()
                if stored.partition in partitions
                and stored.state.finished_at is not None
                and stored.state.finished_at < cutoff
            ]

    def take_deleted(self) -> list[str]:
        """Videos deleted since the last call, whose jobs get a tombstone."""
        with self._lock:
            deleted, self._deleted = sorted(self._deleted), set()
        return deleted

    def forget(self, video_id: str) -> None:
        with self._lock:
            self._jobs.pop(video_id, None)
