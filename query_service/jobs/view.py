"""The jobs view: every video's latest JobState, read from the compacted ``jobs`` topic.

A daemon thread reads every partition from its start and then follows it, keeping the newest
state per video in memory. Like the change feed (query_service/events) it joins no consumer
group: every API replica needs every job. Until it has read up to the end offsets the topic had
when it started, the view says it is loading rather than answer "no such job".
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, KafkaException, TopicPartition

from agents.jobs.log import read_job, unjoined_consumer
from streams import topics
from streams.records import JobState, JobStatus
from vip.settings import Settings

log = logging.getLogger(__name__)

BATCH = 500
POLL_S = 0.5
RETRY_S = 2.0
KAFKA_TIMEOUT_S = 5.0


class JobsView:
    def __init__(self, bootstrap: str, topic: str = topics.JOBS) -> None:
        self._bootstrap = bootstrap
        self._topic = topic
        self._jobs: dict[str, JobState] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._loaded = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None

    # Life cycle ------------------------------------------------------------------------------
    def start(self) -> None:
        """Start reading in a daemon thread; returns at once (Kafka may be down for now)."""
        if self._thread is not None:
            raise RuntimeError("the jobs view is already started")
        self._thread = threading.Thread(target=self._run, name="vip-jobs-view", daemon=True)
        self._thread.start()

    def close(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    @property
    def loaded(self) -> bool:
        """Whether everything the topic held when the view started has been read."""
        return self._loaded.is_set()

    def wait_loaded(self, timeout_s: float) -> bool:
        return self._loaded.wait(timeout_s)

    # Reads -----------------------------------------------------------------------------------
    def get(self, video_id: str) -> JobState | None:
        with self._lock:
            return self._jobs.get(video_id)

    def page(
        self, status: JobStatus | None = None, skip: int = 0, limit: int = 50
    ) -> tuple[list[JobState], int]:
        """Jobs with ``status`` (any when None), most recently uploaded first, and how many."""
        with self._lock:
            jobs = [j for j in self._jobs.values() if status is None or j.status == status]
        jobs.sort(
            key=lambda j: (
                j.upload.uploaded_at or j.upload.started_at or j.occurred_at,
                j.video_id,
            ),
            reverse=True,
        )
        return jobs[skip : skip + limit], len(jobs)

    # The thread ------------------------------------------------------------------------------
    def _run(self) -> None:
        consumer = unjoined_consumer(self._bootstrap, "jobs-view")
        try:
            ends: dict[int, int] | None = None
            while ends is None and not self._stop.is_set():
                ends = self._assign(consumer)
                if ends is None:
                    self._stop.wait(RETRY_S)
            positions: dict[int, int] = {}
            while not self._stop.is_set():
                try:
                    messages = consumer.consume(BATCH, timeout=POLL_S)
                except KafkaException as exc:
                    self._note(f"Kafka: {exc}")
                    self._stop.wait(1.0)
                    continue
                self._apply(messages, positions)
                if ends is not None and all(positions.get(p, 0) >= e for p, e in ends.items()):
                    self._loaded.set()
                    ends = None
        except Exception as exc:
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.exception("jobs view stopped")
        finally:
            consumer.close()

    def _assign(self, consumer: Any) -> dict[int, int] | None:
        """Assign every partition from its start; the end offsets to read up to first."""
        try:
            metadata = consumer.list_topics(self._topic, timeout=KAFKA_TIMEOUT_S)
            found = metadata.topics.get(self._topic)
            if found is None or found.error is not None or not found.partitions:
                self._note(f"topic {self._topic} is not available yet")
                return None
            ends = {}
            for partition in sorted(found.partitions):
                _, high = consumer.get_watermark_offsets(
                    TopicPartition(self._topic, partition), timeout=KAFKA_TIMEOUT_S
                )
                ends[partition] = int(high)
            consumer.assign(
                [TopicPartition(self._topic, p, OFFSET_BEGINNING) for p in sorted(ends)]
            )
        except KafkaException as exc:
            self._note(f"cannot reach Kafka: {exc}")
            return None
        log.info("jobs view: reading %d partitions of %s", len(ends), self._topic)
        return ends

    def _apply(self, messages: Sequence[Any], positions: dict[int, int]) -> None:
        with self._lock:
            for message in messages:
                if message.error() is not None:
                    self._note(f"Kafka: {message.error()}")
                    continue
                positions[message.partition()] = message.offset() + 1
                read = read_job(message.key(), message.value())
                if read is None:
                    continue
                video_id, state = read
                if state is None:
                    self._jobs.pop(video_id, None)
                else:
                    self._jobs[video_id] = state

    def _note(self, error: str) -> None:
        if error != self.last_error:
            log.warning("jobs view: %s", error)
        self.last_error = error


def _newest_first(job: JobState) -> tuple[float, str]:
    upload = job.upload
    return (-(upload.uploaded_at or upload.started_at or job.occurred_at).timestamp(), job.video_id)


def start_jobs_view(settings: Settings) -> JobsView:
    """A started view of the jobs topic; ``close()`` it when the app stops."""
    view = JobsView(settings.kafka_bootstrap)
    view.start()
    return view
