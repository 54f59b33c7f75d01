"""Every alert rule, in memory, materialised from the compacted ``alerts.rules`` topic.

The worker and each API replica keep their own rule book, read from the topic's start and then
followed. The API also applies what it has just published, so a replica reads its own writes
at once; the others see them as soon as Kafka delivers them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

from agents.alerts.exceptions import MalformedRule
from agents.alerts.rules import AlertRule, decode_rule
from agents.shared.topic_follower import TopicFollower
from streams import topics

log = logging.getLogger(__name__)


class RuleBook:
    def __init__(self, bootstrap: str, topic: str = topics.ALERT_RULES) -> None:
        self._rules: dict[str, AlertRule] = {}
        self._lock = threading.Lock()
        self._follower = TopicFollower(bootstrap, topic, self._read, "beginning", "alert-rules")

    # Life cycle ------------------------------------------------------------------------------
    def start(self) -> None:
        self._follower.start()

    def close(self) -> None:
        self._follower.close()

    @property
    def loaded(self) -> bool:
        return self._follower.caught_up

    def wait_loaded(self, timeout_s: float) -> bool:
        return self._follower.wait_caught_up(timeout_s)

    @property
    def last_error(self) -> str | None:
        return self._follower.last_error

    # Reads and writes ------------------------------------------------------------------------
    def rules(self) -> list[AlertRule]:
        """Oldest first, so alerts of one moment come in the order the rules were made."""
        with self._lock:
            rules = list(self._rules.values())
        return sorted(rules, key=lambda r: (r.created_at, r.rule_id))

    def get(self, rule_id: str) -> AlertRule | None:
        with self._lock:
            return self._rules.get(rule_id)

    def put(self, rule: AlertRule) -> None:
        with self._lock:
            self._rules[rule.rule_id] = rule

    def remove(self, rule_id: str) -> None:
        with self._lock:
            self._rules.pop(rule_id, None)

    def _read(self, messages: Sequence[Any]) -> None:
        for message in messages:
            key = message.key()
            if not key:
                continue
            rule_id = key.decode("utf-8", errors="replace")
            value = message.value()
            if value is None:
                self.remove(rule_id)
                continue
            try:
                rule = decode_rule(value)
            except MalformedRule as exc:
                log.warning("alert rules: skipped rule %s: %s", rule_id, exc)
                continue
            self.put(rule)
