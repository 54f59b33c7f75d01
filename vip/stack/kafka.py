"""Apache Kafka as one KRaft node (broker and controller in one JVM), run from Maven jars."""

from __future__ import annotations

import base64
import contextlib
import socket
import uuid
from pathlib import Path

from confluent_kafka.admin import AdminClient

from vip.settings import REPO_ROOT, Settings
from vip.stack.kafka_admin import TopicPartitionsMismatch, TopicSetupFailed, ensure_topics
from vip.stack.maven import classpath, ensure_jars, java_tool
from vip.stack.service import Launch
from vip.stack.steps import run_step

__all__ = [
    "KafkaService",
    "TopicPartitionsMismatch",
    "TopicSetupFailed",
    "ensure_topics",
    "new_cluster_id",
]

POM = REPO_ROOT / "vip" / "stack" / "java" / "kafka" / "pom.xml"
FORMAT_TIMEOUT_S = 120.0

# Kafka logs every thread start, config dump and metadata change at INFO; keep only warnings
# and the lifecycle milestones someone reading the log after a failed start wants to see.
QUIET_LOGGERS = ("kafka", "org.apache.kafka", "state.change.logger")
MILESTONE_LOGGERS = (
    "kafka.server.KafkaRaftServer",  # "Kafka Server started"
    "kafka.server.BrokerServer",  # STARTING -> STARTED -> SHUTTING_DOWN
    "kafka.server.BrokerLifecycleManager",
    "kafka.network.DataPlaneAcceptor",  # "Awaiting socket connections on host:port"
    "org.apache.kafka.common.utils.LoggingSignalHandler",  # which signal stopped it
)


def new_cluster_id() -> str:
    """A Kafka cluster id: a random UUID as 22 characters of unpadded base64url."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode("ascii").rstrip("=")
        if not text.startswith("-"):  # Kafka's own generator avoids these: they read as flags
            return text


def server_properties(settings: Settings, log_dir: Path) -> str:
    host = settings.host
    lines = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@{host}:{settings.kafka_controller_port}",
        "listeners": (
            f"PLAINTEXT://{host}:{settings.kafka_port},"
            f"CONTROLLER://{host}:{settings.kafka_controller_port}"
        ),
        "advertised.listeners": f"PLAINTEXT://{host}:{settings.kafka_port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(log_dir),
        "num.partitions": str(settings.kafka_partitions),
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        # One node: every internal topic must fit on one replica. Their default of 50
        # partitions each only slows the first consumer group and transaction on 2 cores.
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "4",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "4",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "share.coordinator.state.topic.num.partitions": "4",
        "group.initial.rebalance.delay.ms": "0",
        # Topics are created explicitly with their partition counts (Faust refuses mismatches).
        "auto.create.topics.enable": "false",
        "log.retention.hours": "168",
        "num.network.threads": "2",
        "num.io.threads": "4",
        "num.recovery.threads.per.data.dir": "1",
    }
    header = "# Written by vip stack (vip/stack/kafka.py); edits are overwritten.\n"
    return header + "".join(f"{key}={value}\n" for key, value in lines.items())


def log4j2_xml() -> str:
    levels = [(name, "warn") for name in QUIET_LOGGERS]
    levels += [(name, "info") for name in MILESTONE_LOGGERS]
    loggers = "".join(f'    <Logger name="{name}" level="{level}"/>\n' for name, level in levels)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        "<!-- Written by vip stack: everything to stdout, which the stack manager captures. -->\n"
        '<Configuration status="warn">\n'
        "  <Appenders>\n"
        '    <Console name="stdout" target="SYSTEM_OUT">\n'
        '      <PatternLayout pattern="[%d] %p %m (%c)%n"/>\n'
        "    </Console>\n"
        "  </Appenders>\n"
        "  <Loggers>\n"
        '    <Root level="info"><AppenderRef ref="stdout"/></Root>\n'
        f"{loggers}"
        "  </Loggers>\n"
        "</Configuration>\n"
    )


def _read_property(path: Path, key: str) -> str | None:
    with contextlib.suppress(OSError):
        for line in path.read_text().splitlines():
            name, sep, value = line.partition("=")
            if sep and name.strip() == key:
                return value.strip()
    return None


def _write_if_changed(path: Path, text: str) -> None:
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


class KafkaService:
    name = "kafka"
    start_timeout_s = 90.0

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.port = settings.kafka_port
        self.jars_dir = settings.jars_dir / "kafka"
        self.config_dir = settings.state_dir / "kafka"
        self.log_dir = settings.data_dir / "kafka"

    @property
    def properties_path(self) -> Path:
        return self.config_dir / "server.properties"

    @property
    def log4j_path(self) -> Path:
        return self.config_dir / "log4j2.xml"

    @property
    def bootstrap(self) -> str:
        return f"{self._settings.host}:{self.port}"

    def cluster_id(self) -> str:
        """The id the log dir was formatted with, else the one saved here, else a new one."""
        formatted = _read_property(self.log_dir / "meta.properties", "cluster.id")
        if formatted:
            return formatted
        saved = self.config_dir / "cluster.id"
        if saved.is_file() and saved.read_text().strip():
            return saved.read_text().strip()
        created = new_cluster_id()
        saved.write_text(created + "\n")
        return created

    def prepare(self) -> None:
        ensure_jars(POM, self.jars_dir)
        self.config_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        _write_if_changed(self.properties_path, server_properties(self._settings, self.log_dir))
        _write_if_changed(self.log4j_path, log4j2_xml())
        if not (self.log_dir / "meta.properties").exists():
            self._format_storage()

    def _java(self, main_class: str, *args: str, heap: str, initial_heap: str) -> list[str]:
        return [
            java_tool(),
            f"-Xmx{heap}",
            f"-Xms{initial_heap}",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-XX:InitiatingHeapOccupancyPercent=35",
            "-XX:+ExplicitGCInvokesConcurrent",
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.log4j_path}",
            "-cp",
            classpath(self.jars_dir / "*"),
            main_class,
            *args,
        ]

    def _format_storage(self) -> None:
        command = self._java(
            "kafka.tools.StorageTool",
            "format",
            "-t",
            self.cluster_id(),
            "-c",
            str(self.properties_path),
            "--ignore-formatted",
            heap="256m",
            initial_heap="32m",
        )
        run_step(
            command,
            f"formatting Kafka storage in {self.log_dir}",
            FORMAT_TIMEOUT_S,
            cwd=self.config_dir,
        )

    def launch(self) -> Launch:
        argv = self._java(
            "kafka.Kafka",
            str(self.properties_path),
            heap=self._settings.kafka_heap,
            initial_heap="128m",
        )
        return Launch(argv=argv, cwd=self.config_dir)

    def is_ready(self) -> bool:
        try:
            with socket.create_connection((self._settings.host, self.port), timeout=0.5):
                pass
        except OSError:
            return False
        try:
            # log_level 0: a broker still starting is expected, not worth librdkafka's stderr lines.
            admin = AdminClient({"bootstrap.servers": self.bootstrap, "log_level": 0})
            metadata = admin.list_topics(timeout=1.5)
        except Exception:
            return False
        return bool(metadata.brokers)

    def version(self) -> str:
        jars = sorted(self.jars_dir.glob("kafka_2.13-*.jar"))
        if not jars:
            return "?"
        return jars[-1].name.removeprefix("kafka_2.13-").removesuffix(".jar")
