"""The jobs stage's state between batches: what a batch changes, and which jobs expire."""

from __future__ import annotations

from datetime import timedelta

from agents.jobs.log import StoredJob
from agents.jobs.store import Delivered, JobStore
from streams import topics
from streams.records import encode
from tests.unit.test_jobs_core import VIDEO, at, run, whole_video


def delivered(steps: list, partition: int = 1) -> list[Delivered]:
    return [Delivered(t, partition, when.timestamp(), encode(record)) for t, record, when in steps]


def test_a_batch_publishes_each_changed_job_once_in_its_latest_state():
    store = JobStore(lambda: {})
    store.reload()
    steps = whole_video(count=2)

    changed = store.apply(delivered(steps))

    assert changed == [run(steps)]
    assert store.apply(delivered(steps[:3])) == []  # redelivered: nothing changes


def test_unreadable_and_unfollowed_messages_are_passed_over():
    store = JobStore(lambda: {})
    store.reload()
    messages = [
        Delivered(topics.CHUNKS, 0, at(1).timestamp(), b'{"type": "ChunkCut", "vers'),
        Delivered(topics.CHUNKS, 0, at(1).timestamp(), None),
        Delivered("some.other.topic", 0, at(1).timestamp(), b"{}"),
    ]

    assert store.apply(messages) == []
    assert store.get(VIDEO) is None


def test_finished_jobs_expire_only_on_partitions_this_worker_owns():
    finished = run(whole_video(count=1))  # finished at 31 s
    store = JobStore(lambda: {VIDEO: StoredJob(finished, 1), "v-other": StoredJob(finished, 0)})
    store.reload()

    assert store.expired(at(31) + timedelta(days=2), timedelta(days=1), {1}) == [VIDEO]
    assert store.expired(at(31) + timedelta(hours=2), timedelta(days=1), {0, 1}) == []
    store.forget(VIDEO)
    assert store.get(VIDEO) is None and store.get("v-other") == finished
