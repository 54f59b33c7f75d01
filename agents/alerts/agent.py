"""Alerts agents: embeddings → rules evaluated → ``alerts``; ``alerts`` → webhooks.

Evaluation is pure and quick (agents/alerts/core.py), so the stage has no retry levels: the
embeddings topic's retry topics belong to the graph stage, which consumes it too, and a retry
here could only repeat a permanent failure. A moment it cannot read is dead-lettered (stage
"alerts") without failing the video's job. Webhooks are sent by a second agent that reads the
``alerts`` topic, so a slow receiver never holds up evaluation.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

import faust

from agents.alerts.core import evaluate
from agents.alerts.exceptions import AlertsError
from agents.alerts.public import alert_body
from agents.alerts.rulebook import RuleBook
from agents.alerts.webhooks import WebhookSender
from agents.wiring import Dependencies
from streams import topics
from streams.app import PipelineTopics, raw_topic
from streams.errors import EventError
from streams.records import AlertRaised, MomentEmbedded, decode, encode

STAGE = "alerts"
WEBHOOK_CONCURRENCY = 4
RULES_WAIT_S = 5.0

log = logging.getLogger(__name__)


def register(app: faust.App, pipeline: PipelineTopics, deps: Dependencies) -> None:
    settings = deps.settings
    rulebook = RuleBook(settings.kafka_bootstrap)
    alerts = raw_topic(app, topics.ALERTS)
    stage = deps.stage(STAGE, topics.EMBEDDINGS, app, pipeline, report_job_failure=False)
    senders: list[WebhookSender] = []

    async def rules_loaded() -> None:
        # A moment judged against half the rules would miss alerts for good: wait instead.
        while not rulebook.loaded and not await asyncio.to_thread(
            rulebook.wait_loaded, RULES_WAIT_S
        ):
            log.warning("alerts: waiting for the rules (%s)", rulebook.last_error or "loading")

    async def raise_alerts(key: bytes | None, value: bytes | None) -> None:
        await rules_loaded()
        rules = rulebook.rules()
        if not rules:
            return
        moment = await asyncio.to_thread(decode, value, MomentEmbedded)
        for alert in evaluate(rules, moment, datetime.now(UTC)):
            await alerts.send(key=alert.video_id.encode(), value=encode(alert))

    @app.task
    async def follow_rules() -> None:
        rulebook.start()

    @app.agent(pipeline.embeddings, name="vip.alerts")
    async def check_moments(stream: faust.StreamT) -> None:
        await stage.run(stream.events(), raise_alerts)

    @app.agent(alerts, name="vip.alerts_webhooks", concurrency=WEBHOOK_CONCURRENCY)
    async def send_webhooks(stream: faust.StreamT) -> None:
        sender = WebhookSender(settings)
        senders.append(sender)
        async for value in stream:
            await rules_loaded()
            await _deliver(sender, rulebook, value)

    @app.on_before_shutdown.connect
    async def stop_alerts(app: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        rulebook.close()
        for sender in senders:
            await sender.aclose()


async def _deliver(sender: WebhookSender, rulebook: RuleBook, value: bytes | None) -> None:
    """One alert to its rule's webhook, if it has one. Never raises: a failed delivery is
    logged and the alert stays on the topic (and on the SSE stream) all the same."""
    try:
        alert = decode(value, AlertRaised)
    except EventError as exc:
        log.warning("alerts: skipped an unreadable alert: %s", exc)
        return
    rule = rulebook.get(alert.rule_id)
    if rule is None or rule.webhook_url is None:
        return  # no webhook, or the rule was deleted since
    try:
        tries = await sender.deliver(
            rule.webhook_url, rule.webhook_secret, alert.alert_id, alert_body(alert)
        )
    except AlertsError as exc:
        log.warning("alerts: webhook of rule %s not delivered: %s", rule.rule_id, exc)
        return
    log.info(
        "alerts: %s delivered to rule %s's webhook (try %d)", alert.alert_id, rule.rule_id, tries
    )
