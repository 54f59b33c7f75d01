"""The Faust app, built by a function so that importing this module connects to nothing."""

from __future__ import annotations

from dataclasses import dataclass

import faust

from streams import topics
from vip.settings import Settings

APP_ID = "vip"


@dataclass(frozen=True)
class PipelineTopics:
    """Faust handles for the pipeline's topics. Values are raw bytes: records are decoded and
    validated inside each agent, so a malformed message becomes a dead letter, not a crash."""

    videos_uploaded: faust.TopicT
    chunks: faust.TopicT
    analyses: faust.TopicT
    embeddings: faust.TopicT
    graph_updates: faust.TopicT

    def dead_letters(self, app: faust.App, topic: faust.TopicT) -> faust.TopicT:
        (name,) = topic.topics
        return _raw_topic(app, topics.dead_letter_topic(name))


def _raw_topic(app: faust.App, name: str) -> faust.TopicT:
    return app.topic(
        name,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        internal=False,
    )


def create_app(settings: Settings, app_id: str = APP_ID) -> faust.App:
    return faust.App(
        app_id,
        broker=f"kafka://{settings.kafka_bootstrap}",
        store="memory://",
        autodiscover=False,
        topic_partitions=settings.kafka_partitions,
        # Topics are created by `vip stack up` with explicit partition counts; Faust must not
        # declare them (a mismatch would stop the worker with PartitionsMismatch).
        topic_allow_declare=False,
        topic_disable_leader=True,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=10.0,
        broker_heartbeat_interval=1.0,
        broker_rebalance_timeout=10.0,
        web_enabled=False,
        producer_acks=-1,
    )


def pipeline_topics(app: faust.App) -> PipelineTopics:
    return PipelineTopics(
        videos_uploaded=_raw_topic(app, topics.VIDEOS_UPLOADED),
        chunks=_raw_topic(app, topics.CHUNKS),
        analyses=_raw_topic(app, topics.ANALYSES),
        embeddings=_raw_topic(app, topics.EMBEDDINGS),
        graph_updates=_raw_topic(app, topics.GRAPH_UPDATES),
    )
