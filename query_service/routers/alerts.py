"""Alert rules (/v1/alerts) and the stream of raised alerts (docs/alerts.md).

Rules live on the compacted ``alerts.rules`` topic; each replica reads them into its rule book,
and applies its own writes at once, so a rule it has just made is found at once here and a
moment later on the other replicas and in the worker.
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any
from urllib.parse import urlsplit

import orjson
from fastapi import APIRouter, HTTPException, Path, Query, Response
from fastapi.responses import StreamingResponse

from agents.alerts.exceptions import AlertsError
from agents.alerts.rules import (
    AlertRule,
    LabelCondition,
    SemanticCondition,
    TextCondition,
    encode_rule,
)
from agents.alerts.webhooks import loopback_allowed, url_problem
from agents.shared.triton_client import EMBEDDING_MODEL
from query_service.alerts.feed import AlertFeed
from query_service.alerts.schemas import (
    RULE_ID_PATTERN,
    AlertRuleCreate,
    AlertRuleCreated,
    AlertRulePublic,
    AlertRulesPublic,
    ConditionPublic,
    LabelRule,
    SemanticRule,
    TextRule,
)
from query_service.alerts.wiring import AlertsDep, AlertsService
from query_service.deps import StoresDep
from query_service.schemas import VIDEO_ID_PATTERN
from query_service.security import RequireApiKey, body_as

router = APIRouter(prefix="/v1/alerts", tags=["alerts"])
RuleId = Annotated[str, Path(pattern=RULE_ID_PATTERN, examples=["r0123456789abcdef01234567"])]
FeedFilter = Annotated[
    str | None, Query(pattern=VIDEO_ID_PATTERN, description="Only this feed's or video's")
]
HEARTBEAT_S = 15.0
FEED_START_S = 5.0
LOADING: dict[int | str, dict[str, Any]] = {
    503: {"description": "the rule book is still reading the alerts.rules topic"}
}


def _loaded(alerts: AlertsService) -> None:
    if not alerts.rules.loaded:
        detail = "the alert rules are still loading"
        if alerts.rules.last_error:
            detail += f" ({alerts.rules.last_error})"
        raise HTTPException(status_code=503, detail=detail, headers={"Retry-After": "1"})


def _shown_url(url: str | None) -> str | None:
    """Scheme and host only: webhook paths are often secrets themselves (Slack's are)."""
    if url is None:
        return None
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/…" if parts.path.strip("/") else url


def rule_public(rule: AlertRule) -> AlertRulePublic:
    condition = rule.condition
    if isinstance(condition, SemanticCondition):
        shown = condition.model_dump(exclude={"vector"})
    elif isinstance(condition, TextCondition):
        shown = {**condition.model_dump(), "sources": list(condition.sources)}
    else:
        shown = condition.model_dump()
    return AlertRulePublic(
        rule_id=rule.rule_id,
        name=rule.name,
        feed_id=rule.feed_id,
        condition=ConditionPublic.model_validate(shown),
        webhook_url=_shown_url(rule.webhook_url),
        created_at=rule.created_at,
    )


def _condition(
    wanted: LabelRule | TextRule | SemanticRule, stores: StoresDep
) -> LabelCondition | TextCondition | SemanticCondition:
    """Blocking for semantic rules (the query is embedded on Triton): call from a thread."""
    if isinstance(wanted, LabelRule):
        return LabelCondition(label=wanted.label, min_count=wanted.min_count)
    if isinstance(wanted, TextRule):
        return TextCondition(phrase=wanted.phrase.strip(), sources=tuple(wanted.sources))
    triton = stores.triton()
    [vector] = triton.embed_texts([wanted.query])
    return SemanticCondition(
        query=wanted.query,
        min_score=wanted.min_score,
        model=f"{EMBEDDING_MODEL}:{triton.model_version(EMBEDDING_MODEL)}",
        vector=tuple(round(float(v), 6) for v in vector),
    )


@router.post(
    "",
    status_code=201,
    response_model=AlertRuleCreated,
    dependencies=[RequireApiKey, body_as("application/json")],
    responses={
        422: {"description": "an invalid rule, or a webhook URL that must not be called"},
        503: {"description": "Kafka or Triton cannot be reached"},
    },
)
async def create_rule(
    request: AlertRuleCreate, alerts: AlertsDep, stores: StoresDep
) -> AlertRuleCreated:
    """Make a rule. The webhook secret (the caller's, or one made now) is in this answer
    only; keep it to check the ``X-VIP-Signature`` of each webhook."""
    if request.webhook_url is not None:
        problem = url_problem(request.webhook_url, loopback_allowed(stores.settings))
        if problem is not None:
            raise HTTPException(status_code=422, detail=f"webhook_url {problem}")
    condition = await asyncio.to_thread(_condition, request.condition, stores)
    secret = None
    if request.webhook_url is not None:
        secret = request.webhook_secret or secrets.token_urlsafe(32)
    rule = AlertRule(
        rule_id=f"r{uuid.uuid4().hex[:24]}",
        name=request.name.strip(),
        feed_id=request.feed_id,
        condition=condition,
        webhook_url=request.webhook_url,
        webhook_secret=secret,
    )
    await _publish(alerts, rule.rule_id, encode_rule(rule))
    alerts.rules.put(rule)
    return AlertRuleCreated(**rule_public(rule).model_dump(), webhook_secret=secret)


async def _publish(alerts: AlertsService, rule_id: str, value: bytes | None) -> None:
    try:
        await asyncio.to_thread(alerts.publisher.publish, rule_id, value)
    except AlertsError as exc:
        raise HTTPException(status_code=503, detail=str(exc), headers={"Retry-After": "5"}) from exc


@router.get("", response_model=AlertRulesPublic, responses=LOADING)
async def list_rules(
    alerts: AlertsDep,
    feed_id: FeedFilter = None,
    skip: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> AlertRulesPublic:
    """Oldest first. With ``feed_id``, the rules scoped to that feed or video (global rules
    apply to it too, and are listed without it)."""
    _loaded(alerts)
    rules = [r for r in alerts.rules.rules() if feed_id is None or r.feed_id == feed_id]
    return AlertRulesPublic(
        data=[rule_public(r) for r in rules[skip : skip + limit]], count=len(rules)
    )


@router.get(
    "/stream",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "``ready`` once subscribed, then one ``alert`` event (AlertPublic) "
            "per raised alert; a comment line every 15 s keeps the connection open",
        },
        503: {"description": "this replica cannot read the alerts topic yet"},
    },
)
async def stream_alerts(
    alerts: AlertsDep,
    feed_id: FeedFilter = None,
    rule_id: Annotated[str | None, Query(pattern=RULE_ID_PATTERN)] = None,
) -> StreamingResponse:
    """Alerts raised from now on, as server-sent events (``id`` is the alert id). Missed ones
    are not replayed: a webhook is the at-least-once channel."""
    feed = alerts.feed
    if not feed.ready and not await asyncio.to_thread(feed.wait_ready, FEED_START_S):
        detail = f"the alert feed is not reading Kafka yet ({feed.last_error or 'starting'})"
        raise HTTPException(status_code=503, detail=detail, headers={"Retry-After": "2"})
    return StreamingResponse(
        _events(feed, feed_id, rule_id),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _events(
    feed: AlertFeed, feed_id: str | None, rule_id: str | None
) -> AsyncIterator[bytes]:
    subscription = feed.subscribe(feed_id, rule_id)
    try:
        yield _event("ready", {"feed_id": feed_id, "rule_id": rule_id})
        while True:
            try:
                alert = await asyncio.wait_for(subscription.queue.get(), HEARTBEAT_S)
            except TimeoutError:
                yield b": keep-alive\n\n"
                continue
            yield _event("alert", alert, event_id=alert["alert_id"])
    finally:
        feed.unsubscribe(subscription)


def _event(name: str, data: object, event_id: str | None = None) -> bytes:
    head = f"id: {event_id}\n".encode() if event_id else b""
    return head + b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


@router.get(
    "/{rule_id}",
    response_model=AlertRulePublic,
    responses={404: {"description": "no such rule"}, **LOADING},
)
async def get_rule(rule_id: RuleId, alerts: AlertsDep) -> AlertRulePublic:
    rule = alerts.rules.get(rule_id)
    if rule is None:
        _loaded(alerts)
        raise HTTPException(status_code=404, detail=f"no alert rule {rule_id}")
    return rule_public(rule)


@router.delete(
    "/{rule_id}",
    status_code=204,
    response_class=Response,
    dependencies=[RequireApiKey],
    responses={404: {"description": "no such rule"}, **LOADING},
)
async def delete_rule(rule_id: RuleId, alerts: AlertsDep) -> Response:
    """The rule stops firing (its webhook gets no more alerts, even ones raised before)."""
    if alerts.rules.get(rule_id) is None:
        _loaded(alerts)
        raise HTTPException(status_code=404, detail=f"no alert rule {rule_id}")
    await _publish(alerts, rule_id, None)
    alerts.rules.remove(rule_id)
    return Response(status_code=204)
