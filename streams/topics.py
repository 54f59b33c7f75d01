"""Topic names of the ingestion pipeline, in the order events flow through them."""

from __future__ import annotations

from typing import Final

VIDEOS_UPLOADED: Final = "videos.uploaded"
CHUNKS: Final = "chunks"
ANALYSES: Final = "analyses"
EMBEDDINGS: Final = "embeddings"
GRAPH_UPDATES: Final = "graph.updates"

PIPELINE: Final = (VIDEOS_UPLOADED, CHUNKS, ANALYSES, EMBEDDINGS, GRAPH_UPDATES)
DLQ_SUFFIX: Final = ".dlq"


def dead_letter_topic(topic: str) -> str:
    return f"{topic}{DLQ_SUFFIX}"


def all_topics() -> tuple[str, ...]:
    return PIPELINE + tuple(dead_letter_topic(topic) for topic in PIPELINE)


def topic_configs() -> dict[str, dict[str, str]]:
    """Per-topic Kafka configs. graph.updates keeps every delta forever: Neo4j is a
    materialised view of it and must be rebuildable from it (`vip graph replay`)."""
    return {GRAPH_UPDATES: {"retention.ms": "-1", "retention.bytes": "-1"}}
