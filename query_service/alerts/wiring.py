"""The API's alert rules and alert feed, built from Settings and kept on ``app.state.alerts``
(started and stopped by the app's lifespan)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from agents.alerts.rulebook import RuleBook
from query_service.alerts.feed import AlertFeed
from query_service.alerts.publisher import RulePublisher
from vip.settings import Settings


@dataclass
class AlertsService:
    rules: RuleBook
    publisher: RulePublisher
    feed: AlertFeed

    def close(self) -> None:
        self.feed.close()
        self.rules.close()
        self.publisher.close()


def start_alerts(settings: Settings) -> AlertsService:
    service = AlertsService(
        RuleBook(settings.kafka_bootstrap),
        RulePublisher(settings.kafka_bootstrap),
        AlertFeed(settings.kafka_bootstrap),
    )
    service.rules.start()
    service.feed.start()
    return service


def get_alerts(request: Request) -> AlertsService:
    service: AlertsService = request.app.state.alerts
    return service


AlertsDep = Annotated[AlertsService, Depends(get_alerts)]
