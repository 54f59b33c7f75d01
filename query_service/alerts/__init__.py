"""Alert rules over the API: the rule book (alerts.rules), the publisher of rule changes and
the per-replica feed of raised alerts that the SSE stream serves (docs/alerts.md)."""

from query_service.alerts.feed import AlertFeed
from query_service.alerts.wiring import AlertsDep, AlertsService, start_alerts

__all__ = ["AlertFeed", "AlertsDep", "AlertsService", "start_alerts"]
