"""The local stack: which services, in which order, and the one-off bootstrap between them."""

from __future__ import annotations

from collections.abc import Callable

from streams.topics import all_topics, topic_configs
from vip.settings import Settings
from vip.stack.apps import ApiService, FeedsService, WorkerService
from vip.stack.manager import StackManager
from vip.stack.milvus import MilvusService
from vip.stack.service import Service

INFRA = ("kafka", "neo4j", "milvus", "triton")
# feeds: the live feed runner (`vip feeds run`); idle, and cheap, while no feed is registered.
APPS = ("worker", "api", "feeds")
# Started when named (`vip stack up llm`) or when the settings need it
# (VIP_ANSWER_GENERATOR=local); the default, extractive answers, needs none of them.
OPTIONAL = ("llm",)


def services(settings: Settings) -> list[Service]:
    from vip.stack.kafka import KafkaService
    from vip.stack.llm import LlmService
    from vip.stack.neo4j import Neo4jService
    from vip.stack.triton import TritonService

    return [
        KafkaService(settings),
        Neo4jService(settings),
        MilvusService(settings),
        TritonService(settings),
        WorkerService(settings),
        ApiService(settings),
        FeedsService(settings),
        LlmService(settings),
    ]


def default_names(settings: Settings) -> list[str]:
    """What plain `vip stack up` starts: the optional LLM only when answers need it."""
    return [*INFRA, *APPS, *(["llm"] if settings.answer_generator == "local" else [])]


def manager(settings: Settings, echo: Callable[[str], None] = print) -> StackManager:
    return StackManager(
        services(settings), settings.run_dir, settings.logs_dir, host=settings.host, echo=echo
    )


def bootstrap(settings: Settings) -> None:
    """Create what the agents expect to exist: topics (explicit partition counts), the Milvus
    collections (text, visual, multimodal) and the Neo4j constraints. Idempotent."""
    from agents.shared.graph_store import Neo4jGraph
    from agents.shared.milvus_store import moment_collections
    from agents.shared.retries import retry_levels
    from vip.stack.kafka_admin import ensure_topics

    ensure_topics(
        settings,
        dict.fromkeys(all_topics(retry_levels(settings)), settings.kafka_partitions),
        configs=topic_configs(),
    )
    moments = moment_collections(settings)
    try:
        moments.ensure_collections()
    finally:
        moments.close()
    graph = Neo4jGraph(settings.neo4j_uri, auth=settings.neo4j_auth)
    try:
        graph.ensure_schema()
    finally:
        graph.close()


def up(
    settings: Settings, names: list[str] | None = None, echo: Callable[[str], None] = print
) -> None:
    stack = manager(settings, echo)
    wanted = names or default_names(settings)
    infra = [name for name in INFRA + OPTIONAL if name in wanted]
    apps = [name for name in APPS if name in wanted]
    if infra:
        stack.up(infra)
    if apps:
        bootstrap(settings)
        stack.up(apps)
