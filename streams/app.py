"""The Faust app, built by a function so that importing this module connects to nothing."""

from __future__ import annotations

from dataclasses import dataclass

import faust

from streams import topics
from vip.settings import Settings

# Each stage runs in its own Faust app, so each has its own consumer group: a stopped or lagging
# stage shows up as its own group in `vip lag`, and one stage's rebalances do not pause the others.
APP_ID_PREFIX = "vip"
# The stages a worker can run (agents.worker.STAGES registers them; a unit test keeps the two
# in step): named here so the supervisor and the stack know them without loading the agents.
WORKER_STAGES: tuple[str, ...] = (
    "chunking",
    "analysis",
    "embedding",
    "graph",
    "jobs",
    "live",
    "alerts",
)
# The pipeline topics each stage's main agent consumes (its retry levels come on top): what "the
# stage has caught up" is measured on. The jobs stage follows every record and is left out.
STAGE_INPUTS: dict[str, tuple[str, ...]] = {
    "chunking": (topics.VIDEOS_UPLOADED,),
    "analysis": (topics.CHUNKS,),
    "embedding": (topics.ANALYSES,),
    "graph": (topics.EMBEDDINGS, topics.GRAPH_UPDATES),
    "live": (topics.LIVE_SEGMENTS,),
    "alerts": (topics.EMBEDDINGS,),
}


def app_id_for(stage: str) -> str:
    """The Faust app id, hence the consumer group, of the worker that runs ``stage``: the one
    place a stage's name becomes its group (``vip-analysis``). A process given several stages
    runs them in one app, named after them all (``vip-analysis-embedding``)."""
    return f"{APP_ID_PREFIX}-{stage}"


@dataclass(frozen=True)
class PipelineTopics:
    """Faust handles for the pipeline's topics. Values are raw bytes: records are decoded and
    validated inside each agent, so a malformed message becomes a dead letter, not a crash."""

    videos_uploaded: faust.TopicT
    chunks: faust.TopicT
    analyses: faust.TopicT
    embeddings: faust.TopicT
    graph_updates: faust.TopicT
    # Segments of live feeds (vip/live), cut into chunks by the live stage.
    live_segments: faust.TopicT

    def dead_letters(self, app: faust.App, topic: faust.TopicT) -> faust.TopicT:
        (name,) = topic.topics
        return raw_topic(app, topics.dead_letter_topic(name))


def raw_topic(app: faust.App, *names: str) -> faust.TopicT:
    """A topic (or several, read as one) of raw bytes: the agents decode and encode records
    themselves (streams.records), so a malformed one can be dead-lettered, not crash a stream."""
    return app.topic(
        *names,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        internal=False,
    )


def retry_topics(app: faust.App, topic: str, levels: int) -> tuple[faust.TopicT, ...]:
    """Handles for ``topic``'s retry levels 1..``levels``; values are ``RetryScheduled``."""
    return tuple(raw_topic(app, name) for name in topics.retry_topics(topic, levels))


def create_app(settings: Settings, app_id: str) -> faust.App:
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
        # Faust's local data (none with memory stores, but it makes the folders) goes with the
        # rest of the runtime state, not into the working directory.
        datadir=str(settings.state_dir / "faust" / "{conf.name}"),
    )


def pipeline_topics(app: faust.App) -> PipelineTopics:
    return PipelineTopics(
        videos_uploaded=raw_topic(app, topics.VIDEOS_UPLOADED),
        chunks=raw_topic(app, topics.CHUNKS),
        analyses=raw_topic(app, topics.ANALYSES),
        embeddings=raw_topic(app, topics.EMBEDDINGS),
        graph_updates=raw_topic(app, topics.GRAPH_UPDATES),
        live_segments=raw_topic(app, topics.LIVE_SEGMENTS),
    )
