"""Rule changes onto the compacted ``alerts.rules`` topic: a rule, or a tombstone."""

from __future__ import annotations

from agents.alerts.exceptions import AlertsError
from agents.shared.delivery import NotDelivered, deliver, keyed_producer
from streams import topics


class RulesNotSaved(AlertsError):
    """Kafka did not take a rule change."""


class RulePublisher:
    def __init__(self, bootstrap: str, topic: str = topics.ALERT_RULES, timeout_s: float = 10.0):
        self._topic = topic
        self._timeout_s = timeout_s
        # Keyed by rule id: one rule's changes stay in one partition.
        self._producer = keyed_producer(bootstrap, timeout_s)

    def publish(self, rule_id: str, value: bytes | None) -> None:
        """Send and wait until Kafka has it (blocking: call it from a thread)."""
        try:
            deliver(self._producer, self._topic, rule_id, value, self._timeout_s, grace_s=0.1)
        except NotDelivered as exc:
            raise RulesNotSaved(f"{self._topic} did not take rule {rule_id}: {exc}") from exc

    def close(self) -> None:
        self._producer.flush(self._timeout_s)
