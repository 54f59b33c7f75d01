"""Graceful shutdown's two limits, hit on real Kafka (issue 6): a stopped worker drains its event
in flight and commits within `shutdown_soft_s` (exit 0); an event still in flight at the soft
limit is abandoned and redelivered (exit 76); a worker whose handler blocks its event loop is
ended at `shutdown_hard_s` (exit 77) and its event redelivered. Input offsets are committed only
for finished events, so every event is finished exactly once over the workers' lives.

A probe stage stands in for a real one, so that its handler can be slow on purpose
(tests/integration/test_worker_shutdown_probe.py): each worker process runs it under the real
`agents.lifecycle.run_stage_app`, with its limits from `VIP_WORKER_BY_STAGE`, started and
stopped by the real `Supervisor`. It consumes a one-partition topic of the test's own, on a Kafka
of this module's own, and notes in a journal file when it starts and finishes each event.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from confluent_kafka import ConsumerGroupTopicPartitions, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from agents.lifecycle import EXIT_HARD_LIMIT, EXIT_SOFT_LIMIT, EXIT_STOPPED
from tests.integration import test_worker_shutdown_probe as probe_stage
from tests.integration.conftest import poll
from tests.integration.services import RunningService, make_settings, started
from tests.integration.test_worker_shutdown_probe import GROUP, STAGE, journal_entries
from vip import worker_supervisor
from vip.settings import Settings, StageWorkerOverride
from vip.stack.kafka_admin import ensure_topics
from vip.worker_supervisor import KILL_GRACE_S, Supervisor

pytestmark = [pytest.mark.stack, pytest.mark.timeout(120)]

SOFT_S = 3.0
HARD_S = 6.0
# Starting a worker (imports, joining the group) on a loaded two-core machine.
START_DEADLINE_S = 45.0


@pytest.fixture(scope="module")
def private(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Kafka on free ports, state in a temporary directory, the probe stage's limits."""
    return make_settings(tmp_path_factory.mktemp("worker-shutdown")).model_copy(
        update={
            "worker_metrics_port": 0,
            "worker_by_stage": {
                STAGE: StageWorkerOverride(shutdown_soft_s=SOFT_S, shutdown_hard_s=HARD_S)
            },
        }
    )


@pytest.fixture(scope="module")
def kafka(private: Settings) -> Iterator[RunningService]:
    from vip.stack.kafka import KafkaService

    running = started(KafkaService(private), private.state_dir / "kafka.log")
    try:
        yield running
    finally:
        running.stop()


class Probe:
    """The probe stage under a real supervisor, on a fresh one-partition topic."""

    def __init__(self, settings: Settings, tmp_path: Path) -> None:
        self.settings = settings
        self.topic = f"shutdown-probe-{uuid.uuid4().hex[:12]}"
        self.journal = tmp_path / "journal.txt"
        self.log_path = tmp_path / "probe.log"
        self.supervisor: Supervisor | None = None
        ensure_topics(settings, {self.topic: 1})

    def produce(self, *events: str) -> None:
        producer = Producer({"bootstrap.servers": self.settings.kafka_bootstrap})
        for event in events:
            producer.produce(self.topic, value=event.encode())
        assert producer.flush(10) == 0

    def _spawn(self, stage: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
        child_env = {
            **os.environ,
            **env,
            "PYTHONUNBUFFERED": "1",
            "VIP_KAFKA_SERVERS": self.settings.kafka_bootstrap,
            "VIP_STATE_DIR": str(self.settings.state_dir),
            "VIP_WORKER_BY_STAGE": orjson.dumps(
                {
                    s: o.model_dump(exclude_none=True)
                    for s, o in self.settings.worker_by_stage.items()
                }
            ).decode(),
        }
        with self.log_path.open("ab") as log:
            return subprocess.Popen(
                [sys.executable, "-m", probe_stage.__name__, self.topic, str(self.journal)],
                env=child_env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def start(self) -> Supervisor:
        self.supervisor = Supervisor(self.settings, [STAGE], spawn=self._spawn)
        self.supervisor.start()
        return self.supervisor

    def pid(self) -> int:
        assert self.supervisor is not None
        pid = self.supervisor.states[STAGE].pid
        assert pid is not None
        return pid

    def wait_started(self, event: str, times: int = 1) -> None:
        """Poll (and let the supervisor restart its child) until ``event`` started ``times``."""

        def started_often_enough() -> bool:
            if self.supervisor is not None and not self.supervisor.stopping:
                self.supervisor.poll()
            return self.started().count(event) >= times

        poll(started_often_enough, START_DEADLINE_S, f"{event} started {times}x", 0.05)

    def wait_finished(self, event: str) -> None:
        def finished() -> bool:
            if self.supervisor is not None:
                self.supervisor.poll()
            return event in self.finished()

        poll(finished, START_DEADLINE_S, f"{event} finished", 0.1)

    def started(self) -> list[str]:
        return journal_entries(self.journal, "started")

    def finished(self) -> list[str]:
        return journal_entries(self.journal, "finished")

    def committed(self) -> int | None:
        """The group's committed offset on the topic's one partition (None: never committed)."""
        admin = AdminClient({"bootstrap.servers": self.settings.kafka_bootstrap})
        request = [ConsumerGroupTopicPartitions(GROUP, [TopicPartition(self.topic, 0)])]
        result = admin.list_consumer_group_offsets(request, request_timeout=10)[GROUP].result()
        offsets = [tp.offset for tp in result.topic_partitions or [] if tp.offset >= 0]
        return offsets[0] if offsets else None

    def stop(self) -> float:
        """Stop the whole supervisor as SIGTERM would; returns how long it took."""
        assert self.supervisor is not None
        began = time.monotonic()
        self.supervisor.stop()
        return time.monotonic() - began

    def exited(self) -> bool:
        """Whether the supervisor has seen its child exit (it restarts it when due)."""
        assert self.supervisor is not None
        self.supervisor.poll()
        return self.last_exit() is not None

    def last_exit(self) -> int | None:
        assert self.supervisor is not None
        return self.supervisor.states[STAGE].last_exit

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def close(self) -> None:
        """Whatever a failed test left running is killed."""
        if self.supervisor is not None and self.supervisor.children:
            for child in self.supervisor.children.values():
                child.kill()


@pytest.fixture
def probe(kafka: RunningService, private: Settings, tmp_path: Path) -> Iterator[Probe]:
    running = Probe(private, tmp_path)
    try:
        yield running
    finally:
        running.close()
        print(f"--- probe.log (tail) ---\n{running.log()[-5000:]}")


def supervisor_messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == worker_supervisor.__name__]


def test_a_stopped_worker_drains_its_event_in_flight_and_commits_within_the_soft_limit(
    probe: Probe, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    probe.produce("first", "slow-1", "after")
    probe.start()
    probe.wait_started("slow-1")

    took = probe.stop()

    # Exit 0, not 76: the drain and commit beat the soft limit (its timer stops once they are
    # done); leaving the group and closing the loop take the process a second or two more.
    assert probe.last_exit() == EXIT_STOPPED
    assert took < HARD_S, f"stopped in {took:.1f}s"
    assert probe.finished() == ["first", "slow-1"]
    assert probe.committed() == 2  # "after" was never started: it is the next worker's
    assert f"supervisor: {STAGE} worker stopped (exit 0)" in supervisor_messages(caplog)

    probe.start()
    probe.wait_finished("after")
    probe.stop()
    assert probe.last_exit() == EXIT_STOPPED
    assert probe.committed() == 3
    assert probe.started() == ["first", "slow-1", "after"]  # each once: nothing lost or redone


def test_an_event_in_flight_at_the_soft_limit_is_abandoned_and_redelivered(
    probe: Probe, caplog: pytest.LogCaptureFixture
) -> None:
    probe.produce("first", "stuck-1", "after")
    supervisor = probe.start()
    probe.wait_started("stuck-1")
    worker = probe.pid()

    os.kill(worker, signal.SIGTERM)  # as `kill` or the worker's own recycle does
    began = time.monotonic()
    poll(probe.exited, HARD_S + 5, "the worker to exit", 0.05)
    took = time.monotonic() - began

    assert probe.last_exit() == EXIT_SOFT_LIMIT
    assert SOFT_S <= took < HARD_S, f"exited after {took:.1f}s"
    assert probe.finished() == ["first"]
    assert probe.committed() == 1  # up to "stuck-1": the next worker starts there
    assert (
        f"supervisor: {STAGE} worker exited with 76 (at its soft limit: events in flight "
        "abandoned, redelivered); starting again in 1s"
    ) in supervisor_messages(caplog)

    # The supervisor starts a fresh worker after a second of backoff; it gets "stuck-1" again.
    probe.wait_started("stuck-1", times=2)
    probe.wait_finished("after")
    probe.stop()
    assert probe.last_exit() == EXIT_STOPPED
    assert probe.committed() == 3
    assert supervisor.states[STAGE].starts == 2
    assert probe.finished() == ["first", "stuck-1", "after"]


def test_a_worker_blocking_its_event_loop_is_ended_at_the_hard_limit_and_its_event_redelivered(
    probe: Probe, caplog: pytest.LogCaptureFixture
) -> None:
    probe.produce("first")
    probe.start()
    poll(lambda: probe.committed() == 1, START_DEADLINE_S, "'first' committed")
    probe.produce("blocking-1", "after")
    probe.wait_started("blocking-1")

    took = probe.stop()

    assert probe.last_exit() == EXIT_HARD_LIMIT  # its own hard limit, not the supervisor's kill
    assert HARD_S <= took < HARD_S + KILL_GRACE_S, f"stopped in {took:.1f}s"
    assert probe.finished() == ["first"]
    assert probe.committed() == 1
    assert (
        f"supervisor: {STAGE} worker stopped (exit 77) at its hard limit: ended mid-event, "
        "uncommitted events redelivered"
    ) in supervisor_messages(caplog)

    probe.start()
    probe.wait_started("blocking-1", times=2)
    probe.wait_finished("after")
    assert probe.stop() < HARD_S
    assert probe.last_exit() == EXIT_STOPPED
    assert probe.committed() == 3
    assert probe.finished() == ["first", "blocking-1", "after"]
