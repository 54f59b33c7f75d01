"""Topic names of the ingestion pipeline, in the order events flow through them, with each
topic's retry levels and dead letters (docs/operations.md, "Retries and dead letters")."""

from __future__ import annotations

from typing import Final

VIDEOS_UPLOADED: Final = "videos.uploaded"
CHUNKS: Final = "chunks"
ANALYSES: Final = "analyses"
EMBEDDINGS: Final = "embeddings"
GRAPH_UPDATES: Final = "graph.updates"

PIPELINE: Final = (VIDEOS_UPLOADED, CHUNKS, ANALYSES, EMBEDDINGS, GRAPH_UPDATES)
DLQ_SUFFIX: Final = ".dlq"
RETRY_INFIX: Final = ".retry."
# What `vip dlq replay` sent back, one record per dead letter: a second replay skips those.
DLQ_REPLAYS: Final = "dlq.replays"
# The latest state of every video's job (agents/jobs): compacted, one record per video.
JOBS: Final = "jobs"
# Segments of live feeds (vip/live), keyed by feed id; agents/live cuts them into chunks.
LIVE_SEGMENTS: Final = "live.segments"
# Alert rules (agents/alerts), compacted and keyed by rule id (a tombstone deletes a rule), and
# the alerts they raise, keyed by video or feed id.
ALERT_RULES: Final = "alerts.rules"
ALERTS: Final = "alerts"
# Live feeds (vip/feeds): registrations keyed by feed id (a tombstone deletes a feed), and what
# the feed runners say of each; both compacted, one record per feed.
FEEDS: Final = "feeds"
FEED_STATUS: Final = "feeds.status"


def dead_letter_topic(topic: str) -> str:
    return f"{topic}{DLQ_SUFFIX}"


def dead_letter_topics() -> tuple[str, ...]:
    return tuple(dead_letter_topic(topic) for topic in PIPELINE)


def retry_topic(topic: str, level: int) -> str:
    """Where an event of ``topic`` waits after its ``level``-th failure: one topic per level,
    so every event in a topic waits about as long and arrival order is due order."""
    if level < 1:
        raise ValueError(f"retry levels start at 1, got {level}")
    return f"{topic}{RETRY_INFIX}{level}"


def retry_topics(topic: str, levels: int) -> tuple[str, ...]:
    return tuple(retry_topic(topic, level) for level in range(1, levels + 1))


def all_topics(retry_levels: int) -> tuple[str, ...]:
    """Every topic the platform uses; ``retry_levels`` is the most retries any stage makes
    (``agents.shared.retries.retry_levels(settings)``)."""
    retries = tuple(name for topic in PIPELINE for name in retry_topics(topic, retry_levels))
    live = (
        LIVE_SEGMENTS,
        *retry_topics(LIVE_SEGMENTS, retry_levels),
        dead_letter_topic(LIVE_SEGMENTS),
    )
    alerts = (ALERT_RULES, ALERTS)
    feeds = (FEEDS, FEED_STATUS)
    return PIPELINE + retries + dead_letter_topics() + (DLQ_REPLAYS, JOBS) + live + alerts + feeds


def topic_configs() -> dict[str, dict[str, str]]:
    """Per-topic Kafka configs. graph.updates keeps every delta forever: Neo4j is a
    materialised view of it and must be rebuildable from it (`vip graph replay`). The replay
    log is kept forever too, so it always outlives the dead letters it marks as replayed."""
    forever = {"retention.ms": "-1", "retention.bytes": "-1"}
    # Compaction keeps the latest state per video; a short segment lets it run hourly.
    jobs = {"cleanup.policy": "compact", "segment.ms": str(3600 * 1000)}
    # Rules are never expired, only replaced or deleted: compaction keeps each one's latest.
    rules = {"cleanup.policy": "compact", "segment.ms": str(3600 * 1000)}
    return {
        GRAPH_UPDATES: dict(forever),
        DLQ_REPLAYS: dict(forever),
        JOBS: jobs,
        ALERT_RULES: rules,
        FEEDS: dict(rules),
        FEED_STATUS: dict(jobs),
    }
