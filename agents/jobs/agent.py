"""Jobs agent: the pipeline's topics and dead letters → the latest JobState per video on the
compacted ``jobs`` topic (docs/operations.md, "Jobs").

Events are taken in small batches and each changed job is published once per batch, so a
video's state is written at most every ``jobs_publish_interval_s`` however many chunks it has.
Folding runs in a thread: decoding the embeddings' vectors must not hold up the event loop.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import faust

from agents.jobs.core import RECORDS
from agents.jobs.log import read_jobs
from agents.jobs.store import Delivered, JobStore
from agents.shared.blob_retention import sweep
from agents.wiring import Dependencies
from streams import topics
from streams.app import PipelineTopics, raw_topic
from streams.records import encode

STAGE = "jobs"
BATCH = 500
RETENTION_CHECK_S = 600.0

log = logging.getLogger(__name__)


def register(app: faust.App, pipeline: PipelineTopics, deps: Dependencies) -> None:
    settings = deps.settings
    sources = raw_topic(app, *RECORDS)
    jobs = raw_topic(app, topics.JOBS)
    store = JobStore(lambda: read_jobs(settings.kafka_bootstrap))
    retention = timedelta(days=settings.job_retention_days)

    @app.on_partitions_assigned.connect
    async def reload_jobs(app: Any, /, *args: Any, **kwargs: Any) -> None:
        store.stale = True  # read before the next batch: partitions may have moved here

    @app.agent(sources, name="vip.jobs")
    async def materialise_jobs(stream: faust.StreamT) -> None:
        # take_events is on faust's Stream, not on its StreamT interface.
        batches = stream.take_events(BATCH, within=settings.jobs_publish_interval_s)  # type: ignore[attr-defined]
        async for events in batches:
            if store.stale:
                await asyncio.to_thread(store.reload)
            messages = [
                Delivered(e.message.topic, e.message.partition, e.message.timestamp, e.value)
                for e in events
            ]
            changed = await asyncio.to_thread(store.apply, messages)
            for video_id in store.take_deleted():  # `vip delete`: compaction drops the job
                await jobs.send(key=video_id.encode(), value=None)
            for state in changed:
                await jobs.send(key=state.video_id.encode(), value=encode(state))

    @app.timer(interval=RETENTION_CHECK_S)
    async def forget_expired_jobs() -> None:
        """Finished jobs past their retention get a tombstone (compaction then drops them)."""
        if store.stale:
            return
        assigned = app.consumer.assignment()
        owned = {tp.partition for tp in assigned if tp.topic == topics.VIDEOS_UPLOADED}
        expired = store.expired(datetime.now(UTC), retention, owned)
        for video_id in expired:
            await jobs.send(key=video_id.encode(), value=None)
            store.forget(video_id)
        if expired:
            log.info("jobs: forgot %d jobs finished over %s ago", len(expired), retention)

    @app.timer(interval=settings.blob_sweep_interval_s)
    async def sweep_blobs() -> None:
        """Blob retention (Settings.blob_retention_days); idempotent, so any jobs worker may."""
        swept = await asyncio.to_thread(
            sweep, deps.blobs(), settings.blob_retention_days.items(), datetime.now(UTC)
        )
        if any(swept.values()):
            log.info("blobs: retention deleted %s", swept)
