"""Rule changes onto the compacted ``alerts.rules`` topic: a rule, or a tombstone."""

from __future__ import annotations

import threading
from typing import Any

from confluent_kafka import KafkaException, Producer

from agents.alerts.exceptions import AlertsError
from streams import topics


class RulesNotSaved(AlertsError):
    """Kafka did not take a rule change."""


class RulePublisher:
    def __init__(self, bootstrap: str, topic: str = topics.ALERT_RULES, timeout_s: float = 10.0):
        self._topic = topic
        self._timeout_s = timeout_s
        self._producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "acks": "all",
                # murmur2 as Faust and Java hash keys: one rule's changes stay in one partition.
                "partitioner": "murmur2_random",
                "enable.idempotence": False,
                "message.timeout.ms": int(timeout_s * 1000),
                "socket.connection.setup.timeout.ms": 3000,
                "log_level": 3,
            }
        )

    def publish(self, rule_id: str, value: bytes | None) -> None:
        """Send and wait until Kafka has it (blocking: call it from a thread)."""
        done = threading.Event()
        failures: list[str] = []

        def delivered(err: Any, msg: Any) -> None:
            if err is not None:
                failures.append(str(err))
            done.set()

        try:
            self._producer.produce(
                self._topic, key=rule_id.encode(), value=value, on_delivery=delivered
            )
        except (KafkaException, BufferError) as exc:
            raise RulesNotSaved(f"cannot send to {self._topic}: {exc}") from exc
        self._producer.flush(self._timeout_s)
        if not done.wait(0.1) or failures:
            reason = failures[0] if failures else f"no answer in {self._timeout_s:.0f}s"
            raise RulesNotSaved(f"{self._topic} did not take rule {rule_id}: {reason}")

    def close(self) -> None:
        self._producer.flush(self._timeout_s)
