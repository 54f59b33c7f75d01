"""Servers started in a test the way the stack manager starts them: their own process group,
free loopback ports, state in a temporary directory."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psutil
import pytest

from agents.shared.graph_store import Neo4jGraph
from tests.ports import free_port
from vip.settings import Settings
from vip.stack.service import Service

POLL_INTERVAL_S = 0.25
STOP_TIMEOUT_S = 30.0


def make_settings(state_dir: Path) -> Settings:
    return Settings(
        state_dir=state_dir,
        kafka_port=free_port(),
        kafka_controller_port=free_port(),
        neo4j_port=free_port(),
    )


class RunningService:
    """One service process started the way the stack manager starts it."""

    def __init__(self, service: Service, log_path: Path) -> None:
        self.service = service
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        launch = self.service.launch()
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                launch.argv,
                env={**os.environ, **launch.env},
                cwd=launch.cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + self.service.start_timeout_s
        while not self.service.is_ready():
            if self.process.poll() is not None:
                pytest.fail(
                    f"{self.service.name} exited with {self.process.returncode}:\n{self.log()}"
                )
            if time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"{self.service.name} not ready in time:\n{self.log()}")
            time.sleep(POLL_INTERVAL_S)

    def stop(self) -> int | None:
        """SIGTERM the process group; returns the exit code (None if it had to be killed)."""
        if self.process is None:
            return None
        process, self.process = self.process, None
        if process.poll() is not None:
            return process.returncode
        os.killpg(process.pid, signal.SIGTERM)
        try:
            return process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
            return None

    def listening_addresses(self) -> set[tuple[str, int]]:
        assert self.process is not None
        root = psutil.Process(self.process.pid)
        addresses = set()
        for member in [root, *root.children(recursive=True)]:
            for connection in member.net_connections(kind="inet"):
                if connection.status == psutil.CONN_LISTEN:
                    # Java binds IPv6 sockets; IPv4 loopback then reads ::ffff:127.0.0.1.
                    ip = connection.laddr.ip.removeprefix("::ffff:")
                    addresses.add((ip, connection.laddr.port))
        return addresses

    def log(self) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-60:])


def started(service: Service, log_path: Path) -> RunningService:
    service.prepare()
    running = RunningService(service, log_path)
    running.start()
    return running


def end_offsets(settings: Settings, topic: str) -> dict[int, int]:
    """Each partition of ``topic`` and the offset its next record will get."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(
        {"bootstrap.servers": settings.kafka_bootstrap, "group.id": f"test-{uuid.uuid4().hex}"}
    )
    try:
        metadata = consumer.list_topics(topic, timeout=10).topics[topic]
        return {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in metadata.partitions
        }
    finally:
        consumer.close()


@contextmanager
def empty_neo4j(state_dir: Path) -> Iterator[Neo4jGraph]:
    """Another real Neo4j, empty, on a free loopback port with its data in ``state_dir``, with
    the project's schema; stopped after the block."""
    from vip.stack.neo4j import Neo4jService

    settings = Settings(state_dir=state_dir, neo4j_port=free_port())
    server = started(Neo4jService(settings), state_dir / "neo4j.log")
    store = Neo4jGraph(settings.neo4j_uri)
    try:
        store.ensure_schema()
        yield store
    finally:
        store.close()
        server.stop()


@contextmanager
def keyed_api(settings: Settings, api_key: str, log_path: Path) -> Iterator[httpx.Client]:
    """An API process of its own with ``api_key`` (the dev stack's API has none, and writes
    such as alert rules need one), on the stack's Kafka, Triton and stores; a client that
    sends the key. Its lag sampler and change feed are off."""
    from query_service.security import API_KEY_HEADER
    from vip.stack.apps import ApiService

    port = free_port()
    env = {
        "VIP_API_PORT": str(port),
        "VIP_API_KEY": api_key,
        "VIP_LAG_SAMPLER_ENABLED": "false",
        "VIP_QUERY_EVENTS_ENABLED": "false",
    }
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)  # the service's process inherits them
    try:
        service = started(ApiService(settings.model_copy(update={"api_port": port})), log_path)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    try:
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}", headers={API_KEY_HEADER: api_key}, timeout=30
        ) as client:
            yield client
    finally:
        service.stop()


@contextmanager
def private_stores(settings: Settings) -> Iterator[Settings]:
    """A Neo4j and a Milvus Lite of the test's own, on free loopback ports under
    ``settings.state_dir``, started as `vip stack up` starts them. A test whose worker reads
    a Kafka of its own writes here, not into the shared stores: the shared Neo4j must stay a
    replay of the shared graph.updates (tests/integration/test_knowledge_graph.py)."""
    from vip.stack.manager import StackManager
    from vip.stack.milvus import MilvusService
    from vip.stack.neo4j import Neo4jService

    own = settings.model_copy(
        update={
            "neo4j_port": free_port(),
            "neo4j_url": None,
            "milvus_port": free_port(),
            "milvus_url": None,
        }
    )
    services = [Neo4jService(own), MilvusService(own)]
    manager = StackManager(services, own.run_dir, own.logs_dir, host=own.host, echo=print)
    try:
        manager.up()
        yield own
    finally:
        manager.down()


@contextmanager
def bootstrapped_kafka(settings: Settings) -> Iterator[RunningService]:
    """A private Kafka holding the pipeline's topics, as `vip stack up` bootstraps them."""
    from vip.stack import stack
    from vip.stack.kafka import KafkaService

    running = started(KafkaService(settings), settings.state_dir / "kafka.log")
    try:
        stack.bootstrap(settings)
        yield running
    finally:
        running.stop()
